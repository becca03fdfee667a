//! The HTTP surface: each handler parses, calls one `Registry` method, and serializes the core's
//! own types. No engine logic lives here.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use modelservice::{
    ChatCompletionRequest, ChatCompletionStream, Error, ServiceInfo, ServiceList, ServiceSpec,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{join_error, ApiError};
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

/// The body as JSON text: valid UTF-8 and well-formed JSON, else a 400 without `param` (a syntax
/// error belongs to no field).
fn json_text(bytes: &Bytes) -> ApiResult<&str> {
    let malformed = |detail: String| -> ApiError {
        Error::InvalidRequest {
            message: format!(
                "We could not parse the JSON body of your request ({detail}). The body must be a JSON object."
            ),
            param: None,
        }
        .into()
    };
    let text = std::str::from_utf8(bytes).map_err(|e| malformed(e.to_string()))?;
    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| malformed(e.to_string()))?;
    Ok(text)
}

/// Parses a JSON body into a core type; the core names the failing field as `param`.
fn parse_json<T: DeserializeOwned>(bytes: &Bytes) -> ApiResult<T> {
    Ok(modelservice::from_json(json_text(bytes)?, "request body")?)
}

/// `GET /health`: public liveness.
pub async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "services": state.registry.list().data.len()}))
}

/// `GET /`: the trial page.
pub async fn playground() -> Html<&'static str> {
    Html(include_str!("../static/index.html"))
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    // The core parses, so field names and `param` paths are the same on every surface.
    let request = ChatCompletionRequest::from_json(json_text(&bytes)?)?;
    let streamed = request.is_stream();
    let registry = state.registry.clone();
    // Rendering the template and tokenizing is CPU work: keep it off the async workers.
    let stream = tokio::task::spawn_blocking(move || registry.chat_stream(request))
        .await
        .map_err(join_error)??;
    if streamed {
        Ok(sse(stream).into_response())
    } else {
        // A client that hangs up drops this future, and with it the stream: generation stops.
        Ok(Json(stream.collect().await?).into_response())
    }
}

/// Server-Sent Events as the `openai` clients read them: one `data: {chunk}` per chunk, then
/// `data: [DONE]`. A failure mid-stream is sent as `data: {"error": {...}}` and ends it.
fn sse(
    stream: ChatCompletionStream,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    enum State {
        Streaming(Box<ChatCompletionStream>),
        Finished,
    }
    let events = futures_util::stream::unfold(State::Streaming(Box::new(stream)), |state| async {
        let State::Streaming(mut stream) = state else {
            return None;
        };
        match stream.next_chunk().await {
            Some(Ok(chunk)) => {
                let json = serde_json::to_string(&chunk).expect("chunks serialize");
                Some((Event::default().data(json), State::Streaming(stream)))
            }
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

/// `GET /v1/models`.
pub async fn list_models(State(state): State<AppState>) -> Json<modelservice::ModelList> {
    Json(state.registry.models())
}

/// `GET /v1/models/{model}`; access names contain `/`, so the rest of the path is the name.
pub async fn get_model(
    State(state): State<AppState>,
    Path(model): Path<String>,
) -> ApiResult<Json<modelservice::Model>> {
    Ok(Json(state.registry.model(&model)?))
}

/// `GET /v1/services`.
pub async fn list_services(State(state): State<AppState>) -> Json<ServiceList> {
    Json(state.registry.list())
}

/// `POST /v1/services`: deploy a `ServiceSpec` (loads the model; answers once it runs).
pub async fn deploy_service(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<ServiceInfo>)> {
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let spec: ServiceSpec = parse_json(&bytes)?;
    let registry = state.registry.clone();
    let info = tokio::task::spawn_blocking(move || registry.deploy(spec))
        .await
        .map_err(join_error)??;
    Ok((StatusCode::CREATED, Json(info)))
}

/// `GET /v1/services/{access_name}`.
pub async fn get_service(
    State(state): State<AppState>,
    Path(access_name): Path<String>,
) -> ApiResult<Json<ServiceInfo>> {
    Ok(Json(state.registry.retrieve(&access_name)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleBody {
    instances: usize,
}

/// `PATCH /v1/services/{access_name}` with `{"instances": n}`.
pub async fn patch_service(
    State(state): State<AppState>,
    Path(access_name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ServiceInfo>> {
    scale(state, access_name, headers, body).await
}

/// `POST /v1/services/{access_name}/scale` with `{"instances": n}`.
pub async fn post_service_action(
    State(state): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ServiceInfo>> {
    match rest.strip_suffix("/scale") {
        Some(access_name) => scale(state, access_name.to_owned(), headers, body).await,
        None => Err(not_found_route(
            &Method::POST,
            &format!("/v1/services/{rest}"),
        )),
    }
}

async fn scale(
    state: AppState,
    access_name: String,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ServiceInfo>> {
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let ScaleBody { instances } = parse_json(&bytes)?;
    let registry = state.registry.clone();
    // Scaling down drains instances, which can take a while.
    let info = tokio::task::spawn_blocking(move || registry.scale(&access_name, instances))
        .await
        .map_err(join_error)??;
    Ok(Json(info))
}

#[derive(Debug, Default, Deserialize)]
pub struct Confirm {
    pub confirm: Option<String>,
}

/// `DELETE /v1/services/{access_name}?confirm=<name>` (or `{"confirm": "<name>"}` as the body).
/// Waits for the service's in-flight requests to finish.
pub async fn delete_service(
    State(state): State<AppState>,
    Path(access_name): Path<String>,
    query: Result<Query<Confirm>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ServiceInfo>> {
    let mut confirm = query
        .map_err(|e| Error::invalid("confirm", format!("Invalid query string: {e}")))?
        .0
        .confirm;
    if confirm.is_none() {
        let bytes = read_body(&headers, body, state.max_body_bytes).await?;
        if !bytes.is_empty() {
            confirm = parse_json::<Confirm>(&bytes)?.confirm;
        }
    }
    let Some(confirm) = confirm else {
        return Err(Error::invalid(
            "confirm",
            "Deleting a service needs its name as confirmation: `?confirm=<name>` or `{\"confirm\": \"<name>\"}`.",
        )
        .into());
    };
    let registry = state.registry.clone();
    let info = tokio::task::spawn_blocking(move || registry.delete(&access_name, &confirm))
        .await
        .map_err(join_error)??;
    Ok(Json(info))
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
