//! The HTTP surface: one generic handler serves every route of the route table
//! (`route_table::ROUTES`): it reads the body, adds the URL's fields, and hands the JSON to
//! `Registry::call` (a JSON answer) or `Registry::stream` (Server-Sent Events). No engine logic
//! and no per-operation code live here.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Query, RawPathParams, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use axum::{Json, Router};
use futures_util::StreamExt;
use modelservice::{Error, Registry, ResponseStream};
use serde_json::{Map, Value};

use crate::error::{join_error, ApiError};
use crate::route_table::{Needs, Route, ROUTES};
use crate::AppState;

type ApiResult<T> = Result<T, ApiError>;
/// Bytes of an oversized body that are still read (and dropped) before answering 413, so the
/// client is done sending and reads the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 16 << 20;

/// Reads a request body of at most `limit` bytes.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> ApiResult<Bytes> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut seen: usize = 0;
    let too_large = declared.is_some_and(|n| n > limit as u64);
    while let Some(frame) = stream.next().await {
        let frame = frame
            .map_err(|e| Error::invalid("body", format!("Cannot read the request body: {e}")))?;
        seen = seen.saturating_add(frame.len());
        if too_large || seen > limit {
            if seen > DRAIN_LIMIT {
                break;
            }
            continue;
        }
        buf.extend_from_slice(&frame);
    }
    if too_large || seen > limit {
        return Err(Error::PayloadTooLarge { limit }.into());
    }
    Ok(Bytes::from(buf))
}

/// Middleware for every route: a body declared larger than the limit is answered 413 before
/// any handler runs (bodies sent without a length are counted as they are read, by
/// [`read_body`]; the routes outside the route table never read theirs).
pub async fn limit_declared_body(
    State(state): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_body_bytes as u64) {
        let (parts, body) = request.into_parts();
        return match read_body(&parts.headers, body, state.max_body_bytes).await {
            Ok(_) => unreachable!("a body declared too large is refused"),
            Err(error) => error.into_response(),
        };
    }
    next.run(request).await
}

/// The body as JSON text: valid UTF-8 and well-formed JSON (or empty: no parameters), else a 400
/// without `param` (a syntax error belongs to no field).
fn json_text(bytes: &[u8]) -> ApiResult<&str> {
    let text = std::str::from_utf8(bytes).map_err(|e| malformed(e.to_string()))?;
    if !text.trim().is_empty() {
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map_err(|e| malformed(e.to_string()))?;
    }
    Ok(text)
}

fn malformed(detail: String) -> ApiError {
    Error::InvalidRequest {
        message: format!(
            "We could not parse the JSON body of your request ({detail}). The body must be a JSON object."
        ),
        param: None,
    }
    .into()
}

/// The operation's JSON body: the request body with the URL's fields (path parameters, query
/// string) added as strings. A body with no URL fields to add goes on as it came.
fn operation_body(bytes: &[u8], url_fields: Vec<(String, String)>) -> ApiResult<String> {
    let text = json_text(bytes)?;
    if url_fields.is_empty() {
        return Ok(text.to_owned());
    }
    let mut object = match serde_json::from_str::<Value>(text) {
        _ if text.trim().is_empty() => Map::new(),
        Ok(Value::Object(object)) => object,
        Ok(Value::Null) => Map::new(),
        _ => return Err(malformed("not an object".into())),
    };
    for (name, value) in url_fields {
        if object.contains_key(&name) {
            return Err(Error::invalid(
                name.clone(),
                format!("`{name}` is given twice: give it once, in the URL or in the body."),
            )
            .into());
        }
        object.insert(name, Value::String(value));
    }
    Ok(Value::Object(object).to_string())
}

/// The routes of the route table, each served by [`serve`]. Routes whose paths differ only after
/// a `{*name}` capture share a router path; the handler picks the one whose suffix matches.
pub fn operations() -> Router<AppState> {
    let mut paths: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for (i, route) in ROUTES.iter().enumerate() {
        let path = route.router_path().0;
        // One handler per router path and method; it tries each route that shares them.
        if ROUTES[..i]
            .iter()
            .any(|r| r.router_path().0 == path && r.method == route.method)
        {
            continue;
        }
        let candidates = Route::candidates(path, route.method);
        let method = Method::from_bytes(route.method.as_bytes()).expect("an HTTP method");
        let filter = MethodFilter::try_from(method).expect("a routable method");
        let handler = move |State(state): State<AppState>, request: Request| {
            let candidates = candidates.clone();
            async move { serve(state, &candidates, request).await }
        };
        match paths.iter_mut().find(|(p, _)| *p == path) {
            Some((_, methods)) => *methods = std::mem::take(methods).on(filter, handler),
            None => paths.push((path, axum::routing::on(filter, handler))),
        }
    }
    paths
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        })
}

/// The one handler: the route whose suffix matches, its key check, the body, then the core.
async fn serve(state: AppState, candidates: &[&'static Route], request: Request) -> Response {
    match answer(state, candidates, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn answer(
    state: AppState,
    candidates: &[&'static Route],
    request: Request,
) -> ApiResult<Response> {
    let (mut parts, body) = request.into_parts();
    let captures = RawPathParams::from_request_parts(&mut parts, &state)
        .await
        .ok();
    let captures: Vec<(&str, &str)> = captures.iter().flat_map(|c| c.iter()).collect();
    let Some((route, mut url_fields)) = candidates
        .iter()
        .find_map(|route| Some((*route, route.fields(captures.iter().copied())?)))
    else {
        return Err(not_found_route(&parts.method, parts.uri.path()));
    };
    if route.needs == Needs::AdminKey {
        crate::auth::require_admin(&parts.extensions)?;
    }
    let Query(query) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).map_err(|e| {
        Error::InvalidRequest {
            message: format!("Invalid query string: {e}"),
            param: None,
        }
    })?;
    url_fields.extend(query);
    let bytes = read_body(&parts.headers, body, state.max_body_bytes).await?;
    let json = operation_body(&bytes, url_fields)?;
    let registry = state.registry.clone();
    if modelservice::wants_stream(route.op, &json) {
        // Parsing, rendering the prompt and tokenizing is CPU work: off the async workers.
        let stream = tokio::task::spawn_blocking(move || registry.stream(route.op, &json))
            .await
            .map_err(join_error)??;
        return Ok(sse(stream).into_response());
    }
    let answer = call(registry, route.op, json).await?;
    let status = StatusCode::from_u16(route.status).expect("a valid status");
    Ok((status, [(header::CONTENT_TYPE, "application/json")], answer).into_response())
}

/// `Registry::call`, whose first poll parses, renders the prompt and tokenizes (CPU work), so
/// that poll may block this worker while the runtime moves its other tasks elsewhere. A client
/// that hangs up drops this future, and with it the generation.
async fn call(registry: Arc<Registry>, op: &str, body: String) -> modelservice::Result<String> {
    let mut call = registry.call_owned(op.to_owned(), body);
    let mut first = true;
    std::future::poll_fn(|cx| {
        if std::mem::take(&mut first) {
            tokio::task::block_in_place(|| call.as_mut().poll(cx))
        } else {
            call.as_mut().poll(cx)
        }
    })
    .await
}

/// Server-Sent Events as the `openai` clients read them: one `data: {chunk}` per chunk, then
/// `data: [DONE]`. A failure mid-stream is sent as `data: {"error": {...}}` and ends it.
fn sse(stream: ResponseStream) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    enum State {
        Streaming(Box<ResponseStream>),
        Finished,
    }
    let events = futures_util::stream::unfold(State::Streaming(Box::new(stream)), |state| async {
        let State::Streaming(mut stream) = state else {
            return None;
        };
        match stream.next_json().await {
            Some(Ok(chunk)) => Some((Event::default().data(chunk), State::Streaming(stream))),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "stream failed");
                Some((Event::default().data(e.to_json()), State::Finished))
            }
            None => Some((Event::default().data("[DONE]"), State::Finished)),
        }
    });
    // Dropping `events` (the client hung up) drops the stream, which cancels the generation.
    Sse::new(events.map(Ok)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// `GET /health`: public liveness.
pub async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "services": state.registry.list().data.len()}))
}

/// `GET /`: the trial page.
pub async fn playground() -> Html<&'static str> {
    Html(include_str!("../static/index.html"))
}

fn not_found_route(method: &Method, path: &str) -> ApiError {
    ApiError::with_status(
        StatusCode::NOT_FOUND,
        Error::InvalidRequest {
            message: format!("Unknown request URL: {method} {path}."),
            param: None,
        },
    )
}

/// Any route that does not exist.
pub async fn fallback(method: Method, uri: Uri) -> ApiError {
    not_found_route(&method, uri.path())
}

/// A known route with a method it does not take.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::with_status(
        StatusCode::METHOD_NOT_ALLOWED,
        Error::InvalidRequest {
            message: format!("Method {method} is not allowed on {}.", uri.path()),
            param: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_core_operation_is_routed() {
        for name in modelservice::Operation::names() {
            assert!(
                ROUTES.iter().any(|r| r.op == name),
                "operation `{name}` has no route"
            );
        }
        for route in ROUTES {
            assert!(
                route.op.parse::<modelservice::Operation>().is_ok(),
                "{route:?} names no operation"
            );
        }
    }

    #[test]
    fn suffixed_captures_are_tried_first() {
        let scale = Route::of("services.scale").unwrap();
        assert_eq!(scale.method, "PATCH");
        let post = Route::candidates("/v1/services/{*access_name}", "POST");
        assert_eq!(post.len(), 1);
        assert_eq!(
            post[0].router_path(),
            ("/v1/services/{*access_name}", "/scale")
        );
        assert_eq!(
            post[0].fields([("access_name", "u-1/a/scale")]),
            Some(vec![("access_name".into(), "u-1/a".into())])
        );
        assert_eq!(post[0].fields([("access_name", "u-1/a")]), None);
        assert_eq!(post[0].fields([("access_name", "/scale")]), None);
        let get = Route::candidates("/v1/services/{*access_name}", "GET");
        assert_eq!(
            get[0].fields([("access_name", "u-1/a/scale")]),
            Some(vec![("access_name".into(), "u-1/a/scale".into())])
        );
    }

    #[test]
    fn paths_are_rebuilt_from_bodies() {
        let body = serde_json::json!({"access_name": "u 1/a", "instances": 2});
        let route = Route::candidates("/v1/services/{*access_name}", "POST")[0];
        let (path, rest) = route.path_for(body.as_object().unwrap());
        assert_eq!(path, "/v1/services/u%201/a/scale");
        assert_eq!(
            serde_json::Value::Object(rest),
            serde_json::json!({"instances": 2})
        );
    }

    fn body(bytes: &str, fields: &[(&str, &str)]) -> ApiResult<String> {
        let fields = fields.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        operation_body(bytes.as_bytes(), fields.collect())
    }

    fn param_of(result: ApiResult<String>) -> Option<String> {
        result.unwrap_err().error.param().map(str::to_owned)
    }

    #[test]
    fn url_fields_join_the_body() {
        // Without URL fields the body goes on untouched, empty or not.
        assert_eq!(body(" {\"a\": 1} ", &[]).unwrap(), " {\"a\": 1} ");
        assert_eq!(body("", &[]).unwrap(), "");
        let joined = body("{\"instances\": 2}", &[("access_name", "u-1/a")]).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&joined).unwrap(),
            json!({"instances": 2, "access_name": "u-1/a"})
        );
        let empty = body("", &[("model", "u-1/a")]).unwrap();
        assert_eq!(empty, r#"{"model":"u-1/a"}"#);
        // A field in the URL and the body is refused by name; broken or non-object bodies
        // have no param.
        assert_eq!(
            param_of(body("{\"model\": \"x\"}", &[("model", "y")])).as_deref(),
            Some("model")
        );
        assert_eq!(
            param_of(body("", &[("confirm", "a"), ("confirm", "b")])).as_deref(),
            Some("confirm")
        );
        assert_eq!(param_of(body("[1]", &[("model", "y")])), None);
        assert_eq!(param_of(body("{bad", &[])), None);
        assert_eq!(param_of(body("{bad", &[("model", "y")])), None);
    }
}
