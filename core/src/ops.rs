//! One way in: every operation the engine serves, by name, with JSON in and JSON out.
//!
//! Python, Node, C, the HTTP server (and Ray Serve through Python) reach the engine only
//! through [`Registry::call`] (unary: the whole answer) and [`Registry::stream`] (the chunks of
//! a streamed answer). An operation added here is reachable from every surface at once; only
//! the SDK-shaped method in the Python and JS layers and an HTTP route line name it.
//! Parsing, validation and error naming stay in the wire types (`crate::api`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::{
    from_json, ChatCompletionRequest, CompletionRequest, EmbeddingRequest, ModelRetrieveRequest,
    NoParams, ServiceDeleteRequest, ServiceMetricsRequest, ServiceRetrieveRequest,
    ServiceScaleRequest, ServiceSpec,
};
use crate::completion_stream::CompletionStream;
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::stream::ChatCompletionStream;

/// An operation, named by its OpenAI SDK resource path (`client.chat.completions.create`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `ChatCompletionRequest` → `ChatCompletion` (or `ChatCompletionChunk`s).
    ChatCompletionsCreate,
    /// `CompletionRequest` → `Completion` (or `Completion` chunks): legacy text completions.
    CompletionsCreate,
    /// `EmbeddingRequest` → `EmbeddingResponse`.
    EmbeddingsCreate,
    /// `{}` → `ModelList`.
    ModelsList,
    /// `ModelRetrieveRequest` → `Model`.
    ModelsRetrieve,
    /// `ServiceSpec` → `ServiceInfo`, once the service runs.
    ServicesDeploy,
    /// `{}` → `ServiceList`.
    ServicesList,
    /// `ServiceRetrieveRequest` → `ServiceInfo`.
    ServicesRetrieve,
    /// `ServiceScaleRequest` → `ServiceInfo`.
    ServicesScale,
    /// `ServiceDeleteRequest` → the deleted `ServiceInfo`, once its requests have finished.
    ServicesDelete,
    /// `ServiceMetricsRequest` → `ServiceMetricsList`: requests, tokens, queue, histograms.
    ServicesMetrics,
}

impl Operation {
    /// Every operation, in the order the documentation lists them.
    pub const ALL: &'static [Operation] = &[
        Operation::ChatCompletionsCreate,
        Operation::CompletionsCreate,
        Operation::EmbeddingsCreate,
        Operation::ModelsList,
        Operation::ModelsRetrieve,
        Operation::ServicesDeploy,
        Operation::ServicesList,
        Operation::ServicesRetrieve,
        Operation::ServicesScale,
        Operation::ServicesDelete,
        Operation::ServicesMetrics,
    ];

    /// The operation's name: its SDK resource path, e.g. `chat.completions.create`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::ChatCompletionsCreate => "chat.completions.create",
            Operation::CompletionsCreate => "completions.create",
            Operation::EmbeddingsCreate => "embeddings.create",
            Operation::ModelsList => "models.list",
            Operation::ModelsRetrieve => "models.retrieve",
            Operation::ServicesDeploy => "services.deploy",
            Operation::ServicesList => "services.list",
            Operation::ServicesRetrieve => "services.retrieve",
            Operation::ServicesScale => "services.scale",
            Operation::ServicesDelete => "services.delete",
            Operation::ServicesMetrics => "services.metrics",
        }
    }

    /// Whether the operation can answer as a stream of chunks (`"stream": true`).
    pub fn can_stream(self) -> bool {
        matches!(
            self,
            Operation::ChatCompletionsCreate | Operation::CompletionsCreate
        )
    }

    /// The wire types of the operation's request body, answer and (when it streams) chunks,
    /// by their names in the JSON Schema (`crate::api::wire_schema`).
    pub fn wire_types(self) -> (&'static str, &'static str, Option<&'static str>) {
        match self {
            Operation::ChatCompletionsCreate => (
                "ChatCompletionRequest",
                "ChatCompletion",
                Some("ChatCompletionChunk"),
            ),
            Operation::CompletionsCreate => ("CompletionRequest", "Completion", Some("Completion")),
            Operation::EmbeddingsCreate => ("EmbeddingRequest", "EmbeddingResponse", None),
            Operation::ModelsList => ("NoParams", "ModelList", None),
            Operation::ModelsRetrieve => ("ModelRetrieveRequest", "Model", None),
            Operation::ServicesDeploy => ("ServiceSpec", "ServiceInfo", None),
            Operation::ServicesList => ("NoParams", "ServiceList", None),
            Operation::ServicesRetrieve => ("ServiceRetrieveRequest", "ServiceInfo", None),
            Operation::ServicesScale => ("ServiceScaleRequest", "ServiceInfo", None),
            Operation::ServicesDelete => ("ServiceDeleteRequest", "ServiceInfo", None),
            Operation::ServicesMetrics => ("ServiceMetricsRequest", "ServiceMetricsList", None),
        }
    }

    /// The names of every operation.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|op| op.name()).collect()
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Operation {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|op| op.name() == name)
            .ok_or_else(|| Error::InvalidRequest {
                message: format!(
                    "Unknown operation `{name}`; the operations are: {}.",
                    Self::names().join(", ")
                ),
                param: None,
            })
    }
}

/// Whether `body` asks operation `op` for a stream (`"stream": true`), so a surface that has
/// both entries (HTTP) knows which to take. A malformed body says no: [`Registry::call`] then
/// reports what is wrong with it.
pub fn wants_stream(op: &str, body: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct StreamFlag {
        #[serde(default)]
        stream: Option<bool>,
    }
    op.parse::<Operation>().is_ok_and(Operation::can_stream)
        && serde_json::from_str::<StreamFlag>(body).is_ok_and(|b| b.stream == Some(true))
}

/// A body that is empty or `null` means "no parameters".
fn or_empty(body: &str) -> &str {
    match body.trim() {
        "" | "null" => "{}",
        _ => body,
    }
}

fn parse<T: DeserializeOwned>(body: &str) -> Result<T> {
    from_json(or_empty(body), "request body")
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(Error::internal)
}

impl Registry {
    /// Serves operation `op` (e.g. `"chat.completions.create"`) with the JSON `body`, and
    /// answers with the whole result as JSON. A streamable operation is gathered into its
    /// whole answer here whatever its `stream` flag; [`Registry::stream`] streams it.
    ///
    /// The future needs no async runtime: loading, scaling and deleting run on a thread of
    /// their own, and generation on the service's workers, which wake the caller.
    pub async fn call(self: &Arc<Self>, op: &str, body: &str) -> Result<String> {
        match op.parse::<Operation>()? {
            Operation::ChatCompletionsCreate => {
                let request = ChatCompletionRequest::from_json(or_empty(body))?;
                to_json(&self.chat_stream(request)?.collect().await?)
            }
            Operation::CompletionsCreate => {
                let request = CompletionRequest::from_json(or_empty(body))?;
                to_json(&self.completion_stream(request)?.collect().await?)
            }
            Operation::EmbeddingsCreate => {
                let request: EmbeddingRequest = parse(body)?;
                to_json(&self.embeddings_pending(&request)?.response().await?)
            }
            Operation::ModelsList => {
                parse::<NoParams>(body)?;
                to_json(&self.models())
            }
            Operation::ModelsRetrieve => {
                let ModelRetrieveRequest { model } = parse(body)?;
                to_json(&self.model(&model)?)
            }
            Operation::ServicesDeploy => {
                let spec = ServiceSpec::from_json(or_empty(body))?;
                let registry = self.clone();
                to_json(&off_thread(move || registry.deploy(spec)).await?)
            }
            Operation::ServicesList => {
                parse::<NoParams>(body)?;
                to_json(&self.list())
            }
            Operation::ServicesRetrieve => {
                let ServiceRetrieveRequest { access_name } = parse(body)?;
                to_json(&self.retrieve(&access_name)?)
            }
            Operation::ServicesScale => {
                let ServiceScaleRequest {
                    access_name,
                    instances,
                } = parse(body)?;
                let registry = self.clone();
                to_json(&off_thread(move || registry.scale(&access_name, instances)).await?)
            }
            Operation::ServicesDelete => {
                let ServiceDeleteRequest {
                    access_name,
                    confirm,
                } = parse(body)?;
                let registry = self.clone();
                to_json(&off_thread(move || registry.delete(&access_name, &confirm)).await?)
            }
            Operation::ServicesMetrics => {
                let ServiceMetricsRequest { access_name } = parse(body)?;
                to_json(&self.metrics_list(access_name.as_deref())?)
            }
        }
    }

    /// [`Registry::call`], blocking the calling thread (not for use inside an async runtime).
    pub fn call_blocking(self: &Arc<Self>, op: &str, body: &str) -> Result<String> {
        crate::wait::block_on(self.call(op, body))
    }

    /// Starts streamable operation `op` with the JSON `body` and returns the stream of its
    /// chunks as JSON. The request is parsed, validated, rendered and queued before this
    /// returns, so request errors come from here, not from the stream. The body's `stream`
    /// flag may be left out: this entry always streams.
    pub fn stream(&self, op: &str, body: &str) -> Result<ResponseStream> {
        match op.parse::<Operation>()? {
            Operation::ChatCompletionsCreate => {
                let mut request = ChatCompletionRequest::from_json(or_empty(body))?;
                request.stream = Some(true);
                Ok(ResponseStream::new(self.chat_stream(request)?))
            }
            Operation::CompletionsCreate => {
                let mut request = CompletionRequest::from_json(or_empty(body))?;
                request.stream = Some(true);
                Ok(ResponseStream::new(self.completion_stream(request)?))
            }
            other => Err(Error::invalid(
                "stream",
                format!("The operation `{other}` does not stream; call it without streaming."),
            )),
        }
    }
}

/// Runs blocking work (a model load, a drain) on its own thread and awaits its result, with no
/// runtime required.
pub(crate) async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("modelservice-manage".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| Error::internal(format!("cannot start a thread: {e}")))?;
    rx.await
        .map_err(|_| Error::internal("the management thread panicked"))?
}

/// Chunks that know how to become JSON: one implementation per streamable operation.
trait JsonChunks: Send {
    fn id(&self) -> &str;
    fn poll_next_json(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<String>>>;
}

impl JsonChunks for ChatCompletionStream {
    fn id(&self) -> &str {
        ChatCompletionStream::id(self)
    }

    fn poll_next_json(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<String>>> {
        self.poll_next_chunk(cx)
            .map(|next| next.map(|chunk| chunk.and_then(|c| to_json(&c))))
    }
}

impl JsonChunks for CompletionStream {
    fn id(&self) -> &str {
        CompletionStream::id(self)
    }

    fn poll_next_json(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<String>>> {
        self.poll_next_chunk(cx)
            .map(|next| next.map(|chunk| chunk.and_then(|c| to_json(&c))))
    }
}

/// The chunks of a streamed operation, each as its JSON text (`chat.completion.chunk` ...).
/// Dropping it cancels the generation within one decode step.
pub struct ResponseStream {
    chunks: Box<dyn JsonChunks>,
}

impl fmt::Debug for ResponseStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseStream")
            .field("id", &self.id())
            .finish()
    }
}

impl ResponseStream {
    fn new(chunks: impl JsonChunks + 'static) -> Self {
        ResponseStream {
            chunks: Box::new(chunks),
        }
    }

    /// The response's ID, shared by all its chunks.
    pub fn id(&self) -> &str {
        self.chunks.id()
    }

    /// Polls for the next chunk; `None` after the last one.
    pub fn poll_next_json(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<String>>> {
        self.chunks.poll_next_json(cx)
    }

    /// The next chunk, waiting as long as needed.
    pub async fn next_json(&mut self) -> Option<Result<String>> {
        std::future::poll_fn(|cx| self.poll_next_json(cx)).await
    }

    /// The next chunk, blocking the calling thread (not for use inside an async runtime).
    pub fn next_blocking(&mut self) -> Option<Result<String>> {
        crate::wait::block_on(self.next_json())
    }

    /// Like [`next_blocking`](Self::next_blocking), but gives up after `timeout` with
    /// `Poll::Pending`, so a binding can look for signals (Ctrl-C) while it waits.
    pub fn next_timeout(&mut self, timeout: Duration) -> Poll<Option<Result<String>>> {
        crate::wait::poll_for(|cx| self.poll_next_json(cx), Some(timeout))
    }
}

impl futures_core::Stream for ResponseStream {
    type Item = Result<String>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_json(cx)
    }
}

/// A boxed [`Registry::call`] future that owns its inputs, for surfaces that hold it across
/// calls (a pending completion in Python, a task in Node).
pub type CallFuture = Pin<Box<dyn Future<Output = Result<String>> + Send>>;

impl Registry {
    /// [`Registry::call`] as an owned future.
    pub fn call_owned(self: &Arc<Self>, op: String, body: String) -> CallFuture {
        let registry = self.clone();
        Box::pin(async move { registry.call(&op, &body).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for op in Operation::ALL {
            assert_eq!(op.name().parse::<Operation>().unwrap(), *op);
        }
        let err = "chat.complete".parse::<Operation>().unwrap_err();
        assert!(err.to_string().contains("models.list"), "{err}");
    }

    #[test]
    fn stream_flag() {
        assert!(wants_stream(
            "chat.completions.create",
            r#"{"stream": true}"#
        ));
        assert!(!wants_stream(
            "chat.completions.create",
            r#"{"stream": false}"#
        ));
        assert!(!wants_stream("chat.completions.create", "{not json"));
        assert!(!wants_stream("models.list", r#"{"stream": true}"#));
        assert!(wants_stream("completions.create", r#"{"stream": true}"#));
    }

    #[test]
    fn unary_operations_without_a_model() {
        let registry = Arc::new(Registry::new());
        let list = registry.call_blocking("services.list", "").unwrap();
        assert_eq!(list, r#"{"object":"list","data":[]}"#);
        let models = registry.call_blocking("models.list", "{}").unwrap();
        assert_eq!(models, r#"{"object":"list","data":[]}"#);
        let err = registry
            .call_blocking("models.list", r#"{"limit": 3}"#)
            .unwrap_err();
        assert_eq!(err.param(), Some("limit"));
        let err = registry
            .call_blocking("services.retrieve", r#"{"access_name": "x"}"#)
            .unwrap_err();
        assert_eq!(err.code(), Some("model_not_found"));
        let err = registry
            .call_blocking("services.scale", r#"{"access_name": "x"}"#)
            .unwrap_err();
        assert_eq!(err.param(), Some("instances"));
        let metrics = registry.call_blocking("services.metrics", "").unwrap();
        assert_eq!(metrics, r#"{"object":"list","data":[]}"#);
        let err = registry
            .call_blocking("services.metrics", r#"{"access_name": "x"}"#)
            .unwrap_err();
        assert_eq!(err.code(), Some("model_not_found"));
        let err = registry.stream("services.list", "{}").unwrap_err();
        assert_eq!(err.param(), Some("stream"));
    }
}
