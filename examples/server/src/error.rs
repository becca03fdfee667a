//! The one place where failures become HTTP responses: every error is a `modelservice::Error`,
//! answered with its status and its OpenAI envelope (`{"error": {...}}`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use modelservice::Error;

/// A `modelservice::Error` as a response. `status` overrides the error's own status only where
/// HTTP itself has a better one (an unknown route is 404, a wrong method 405).
#[derive(Debug)]
pub struct ApiError {
    pub error: Error,
    pub status: Option<StatusCode>,
}

impl ApiError {
    pub fn with_status(status: StatusCode, error: Error) -> Self {
        ApiError {
            error,
            status: Some(status),
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError {
            error,
            status: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.error.to_json(),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Error::Overloaded { .. } = self.error {
            // The `openai` clients honour Retry-After when they retry a 429.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// An answer of the HTTP layer itself (a timeout, the connection cap), for which the core has no
/// error: the same OpenAI envelope, with the `type` and `code` given here.
pub fn http_error(status: StatusCode, kind: &str, code: &str, message: String) -> Response {
    let envelope = modelservice::ErrorEnvelope {
        error: modelservice::ErrorBody {
            message,
            kind: kind.to_owned(),
            param: None,
            code: Some(code.to_owned()),
        },
    };
    let body = serde_json::to_string(&envelope).expect("error envelope serializes");
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A failed blocking task (it panicked) as an internal error.
pub fn join_error(e: tokio::task::JoinError) -> Error {
    Error::internal(format!("a worker task failed: {e}"))
}
