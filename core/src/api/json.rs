//! Parsing JSON bodies into the wire types, with the failing field's path as the error's `param`.

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Parses `json` as a `T`; `what` names the body in messages ("request body", "service spec").
///
/// Every surface (Rust, Python, Node, C, HTTP) parses through here, so a bad field is reported
/// with the same `param` path and message everywhere.
pub fn from_json<T: DeserializeOwned>(json: &str, what: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // The path is "." at the root and "?" where the JSON itself is broken.
        let at_root = path == "." || path == "?";
        // A missing field is named by the message, not by the path (which ends at its parent);
        // an unknown field's path already ends with its name.
        let message = inner.to_string();
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned);
        let param = match (at_root, missing) {
            (true, missing) => missing,
            (false, Some(field)) => Some(format!("{path}.{field}")),
            (false, None) => Some(path),
        };
        let message = match &param {
            Some(p) => format!("Invalid value for `{p}`: {inner}"),
            None => format!("Invalid {what}: {inner}"),
        };
        Error::InvalidRequest { message, param }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ServiceSpec;

    fn param_of(json: &str) -> Option<String> {
        match from_json::<ServiceSpec>(json, "service spec") {
            Err(Error::InvalidRequest { param, .. }) => param,
            other => panic!("expected an invalid-request error, got {other:?}"),
        }
    }

    #[test]
    fn names_the_failing_field() {
        let spec = r#"{"name": "t", "access_name": "u/t", "model": "/m.gguf", "instances": "two"}"#;
        assert_eq!(param_of(spec).as_deref(), Some("instances"));
    }

    #[test]
    fn names_a_missing_field() {
        assert_eq!(
            param_of(r#"{"name": "t", "model": "/m.gguf"}"#).as_deref(),
            Some("access_name")
        );
    }

    #[test]
    fn names_an_unknown_field() {
        let spec = r#"{"name": "t", "access_name": "u/t", "model": "/m.gguf", "slotz": 2}"#;
        assert_eq!(param_of(spec).as_deref(), Some("slotz"));
    }

    #[test]
    fn broken_json_has_no_param() {
        assert_eq!(param_of("not json"), None);
    }
}
