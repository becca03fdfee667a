//! The one route table: which HTTP method and path serve which core operation.
//!
//! A path parameter `{name}` (or `{*name}`, the rest of the path: access names contain `/`)
//! becomes the body field `name`, and so does each query-string field (`?confirm=...`), so the
//! core receives one JSON body and names a bad field as `param` whatever its place in the URL.
//! Adding a unary endpoint is one line here. Plain data, also read by `tests/http.rs`.

/// The key a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Any API key.
    ApiKey,
    /// An admin key, when admin keys are configured.
    AdminKey,
}

/// One route: `method path` serves operation `op`, answering `status` when it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub op: &'static str,
    pub needs: Needs,
    pub status: u16,
}

impl Route {
    const fn user(method: &'static str, path: &'static str, op: &'static str) -> Route {
        Route {
            method,
            path,
            op,
            needs: Needs::ApiKey,
            status: 200,
        }
    }

    const fn admin(method: &'static str, path: &'static str, op: &'static str) -> Route {
        Route {
            needs: Needs::AdminKey,
            ..Route::user(method, path, op)
        }
    }

    /// The same route answering `status` (201 for a creation).
    const fn answers(self, status: u16) -> Route {
        Route { status, ..self }
    }
}

/// Every operation the server serves. The first route of an operation is its main one.
pub const ROUTES: &[Route] = &[
    Route::user("POST", "/v1/chat/completions", "chat.completions.create"),
    Route::user("POST", "/v1/completions", "completions.create"),
    Route::user("POST", "/v1/embeddings", "embeddings.create"),
    Route::user("GET", "/v1/models", "models.list"),
    Route::user("GET", "/v1/models/{*model}", "models.retrieve"),
    Route::admin("POST", "/v1/services", "services.deploy").answers(201),
    Route::admin("GET", "/v1/services", "services.list"),
    Route::admin("GET", "/v1/services/{*access_name}", "services.retrieve"),
    Route::admin("PATCH", "/v1/services/{*access_name}", "services.scale"),
    Route::admin(
        "POST",
        "/v1/services/{*access_name}/scale",
        "services.scale",
    ),
    Route::admin("DELETE", "/v1/services/{*access_name}", "services.delete"),
    // The same figures as the Prometheus `/metrics`, as JSON, readable with the same key.
    Route::user("GET", "/v1/metrics", "services.metrics"),
];

impl Route {
    /// The path as the router takes it, and what must follow a `{*name}` capture: the router
    /// allows a wildcard only at the end, so `/v1/services/{*access_name}/scale` is routed as
    /// `/v1/services/{*access_name}` whose capture must end with `/scale`.
    pub fn router_path(&self) -> (&'static str, &'static str) {
        match self.path.find("{*") {
            Some(start) => {
                let end = start + self.path[start..].find('}').expect("a closed capture") + 1;
                (&self.path[..end], &self.path[end..])
            }
            None => (self.path, ""),
        }
    }

    /// The routes served by one router path and method, those with a suffix first, so
    /// `.../scale` is tried before the bare capture.
    pub fn candidates(router_path: &str, method: &str) -> Vec<&'static Route> {
        let mut routes: Vec<&'static Route> = ROUTES
            .iter()
            .filter(|r| r.method == method && r.router_path().0 == router_path)
            .collect();
        routes.sort_by_key(|r| r.router_path().1.is_empty());
        routes
    }

    /// The path parameters as body fields, given the router's captures; `None` when the
    /// captured rest of the path lacks this route's suffix.
    pub fn fields<'a>(
        &self,
        captures: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Option<Vec<(String, String)>> {
        let (router_path, suffix) = self.router_path();
        let mut fields = Vec::new();
        for (name, value) in captures {
            let is_rest = router_path.ends_with(&format!("{{*{name}}}"));
            let value = match value.strip_suffix(suffix) {
                Some(v) if is_rest && !v.is_empty() => v,
                _ if is_rest => return None,
                _ => value,
            };
            fields.push((name.to_owned(), value.to_owned()));
        }
        Some(fields)
    }
}

#[cfg(test)]
impl Route {
    /// The first route of operation `op`.
    pub fn of(op: &str) -> Option<&'static Route> {
        ROUTES.iter().find(|r| r.op == op)
    }

    /// The inverse of the route: the path (parameters taken from `body`, percent-encoded but
    /// for `/`) and what is left of the body.
    pub fn path_for(
        &self,
        body: &serde_json::Map<String, serde_json::Value>,
    ) -> (String, serde_json::Map<String, serde_json::Value>) {
        let mut rest = body.clone();
        let mut path = String::new();
        let mut pattern = self.path;
        while let Some(start) = pattern.find('{') {
            let end = start + pattern[start..].find('}').expect("a closed capture");
            let name = pattern[start + 1..end].trim_start_matches('*');
            let value = match rest.remove(name) {
                Some(serde_json::Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => String::new(),
            };
            path.push_str(&pattern[..start]);
            for byte in value.bytes() {
                match byte {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                        path.push(byte as char)
                    }
                    _ => path.push_str(&format!("%{byte:02X}")),
                }
            }
            pattern = &pattern[end + 1..];
        }
        path.push_str(pattern);
        (path, rest)
    }
}
