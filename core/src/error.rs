//! The one error type of the engine. Every variant knows its OpenAI error envelope
//! (`{"error": {"message", "type", "param", "code"}}`) and its HTTP status, so every
//! surface (Rust, Python, Node, C, HTTP) reports the same failure the same way.

use serde::{Deserialize, Serialize};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The message a caught panic carried (`panic!` payloads are a `&str` or a `String`); every
/// surface that catches panics reports them with it.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_owned())
}

/// Everything that can go wrong in a request or a management call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request was malformed or a parameter had an invalid value.
    #[error("{message}")]
    InvalidRequest {
        message: String,
        /// The parameter at fault, as a JSON path (`temperature`, `messages[0].role`).
        param: Option<String>,
    },
    /// No service is deployed under this access name.
    #[error("The model `{model}` does not exist or you do not have access to it.")]
    ModelNotFound { model: String },
    /// The prompt (plus the requested completion) does not fit the service's context.
    #[error(
        "This model's maximum context length is {context_length} tokens. However, you requested \
         {requested} tokens ({prompt_tokens} in the messages, {completion_tokens} in the completion). \
         Please reduce the length of the messages or completion."
    )]
    ContextLengthExceeded {
        context_length: u32,
        requested: u32,
        prompt_tokens: u32,
        completion_tokens: u32,
        param: &'static str,
    },
    /// The service's queue is full; retry later.
    #[error("The service `{model}` is overloaded: its queue of {queue_size} waiting requests is full. Retry later or scale the service up.")]
    Overloaded { model: String, queue_size: usize },
    /// The service exists but cannot serve (loading, deleting, failed).
    #[error("The service `{model}` is not running (status: {status}).")]
    ServiceUnavailable { model: String, status: String },
    /// A service with this access name already exists.
    #[error("A service with access name `{access_name}` already exists.")]
    ServiceExists { access_name: String },
    /// The model file could not be loaded.
    #[error("Failed to load model file `{path}`: {reason}")]
    ModelLoad { path: String, reason: String },
    /// Missing or wrong API key (used by the HTTP server).
    #[error("{message}")]
    Authentication { message: String },
    /// A request body larger than the server accepts (used by the HTTP server).
    #[error("The request body is larger than the limit of {limit} bytes.")]
    PayloadTooLarge { limit: usize },
    /// The request was cancelled before it finished.
    #[error("The request was cancelled.")]
    Cancelled,
    /// A failure inside the engine.
    #[error("{message}")]
    Internal { message: String },
}

/// The body of an OpenAI error response: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// The inner object of an OpenAI error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorBody {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl Error {
    /// An [`Error::InvalidRequest`] naming the parameter at fault.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// An [`Error::Internal`] from anything displayable.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Error::Internal {
            message: message.to_string(),
        }
    }

    /// The HTTP status an OpenAI-compatible server answers with.
    pub fn status(&self) -> u16 {
        match self {
            Error::InvalidRequest { .. } | Error::ContextLengthExceeded { .. } => 400,
            Error::ModelLoad { .. } => 400,
            Error::Authentication { .. } => 401,
            Error::ModelNotFound { .. } => 404,
            Error::ServiceExists { .. } => 409,
            Error::PayloadTooLarge { .. } => 413,
            Error::Overloaded { .. } => 429,
            Error::Cancelled => 499,
            Error::Internal { .. } => 500,
            Error::ServiceUnavailable { .. } => 503,
        }
    }

    /// The OpenAI error `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidRequest { .. }
            | Error::ContextLengthExceeded { .. }
            | Error::ModelNotFound { .. }
            | Error::ServiceExists { .. }
            | Error::ModelLoad { .. }
            | Error::PayloadTooLarge { .. }
            | Error::Cancelled => "invalid_request_error",
            Error::Authentication { .. } => "authentication_error",
            Error::Overloaded { .. } => "rate_limit_error",
            Error::ServiceUnavailable { .. } => "service_unavailable_error",
            Error::Internal { .. } => "server_error",
        }
    }

    /// The OpenAI error `code`.
    pub fn code(&self) -> Option<&'static str> {
        Some(match self {
            Error::InvalidRequest { .. } => "invalid_value",
            Error::ModelNotFound { .. } => "model_not_found",
            Error::ContextLengthExceeded { .. } => "context_length_exceeded",
            Error::Overloaded { .. } => "queue_full",
            Error::ServiceUnavailable { .. } => "service_not_running",
            Error::ServiceExists { .. } => "service_exists",
            Error::ModelLoad { .. } => "model_load_failed",
            Error::Authentication { .. } => "invalid_api_key",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::Cancelled => "cancelled",
            Error::Internal { .. } => return None,
        })
    }

    /// The OpenAI error `param`: the request field at fault, if any.
    pub fn param(&self) -> Option<&str> {
        match self {
            Error::InvalidRequest { param, .. } => param.as_deref(),
            Error::ModelNotFound { .. }
            | Error::ServiceUnavailable { .. }
            | Error::Overloaded { .. } => Some("model"),
            Error::ContextLengthExceeded { param, .. } => Some(param),
            Error::ServiceExists { .. } => Some("access_name"),
            Error::ModelLoad { .. } => Some("model"),
            _ => None,
        }
    }

    /// The OpenAI error body for this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            message: self.to_string(),
            kind: self.kind().to_owned(),
            param: self.param().map(str::to_owned),
            code: self.code().map(str::to_owned),
        }
    }

    /// The full OpenAI error envelope, `{"error": {...}}`.
    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope { error: self.body() }
    }

    /// The envelope as a JSON string.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.envelope()).expect("error envelope serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_names_type_code_and_param() {
        let e = Error::invalid("temperature", "temperature must be between 0 and 2");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "temperature");
        assert_eq!(v["error"]["code"], "invalid_value");
        assert_eq!(e.status(), 400);
        let nf = Error::ModelNotFound { model: "x".into() };
        assert_eq!(nf.status(), 404);
        assert_eq!(nf.code(), Some("model_not_found"));
    }
}
