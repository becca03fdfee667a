//! The web console: a services list at `/console` and a detail page per service at
//! `/console/services/{access_name}`. Plain HTML, CSS and JavaScript embedded in the binary; the
//! pages call the same `/v1` API as any client, with the key the visitor enters.

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use modelservice::Error;

use crate::error::ApiError;
use crate::AppState;

/// The console's routes, merged into the application by `app()`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(list_page))
        .route("/console/", get(list_page))
        // The whole rest of the path is the access name: access names contain `/`.
        .route("/console/services/{*access_name}", get(detail_page))
        .route("/console/assets/{file}", get(asset))
}

const LIST_PAGE: &str = include_str!("../static/console/index.html");
const DETAIL_PAGE: &str = include_str!("../static/console/service.html");

/// Every file under `/console/assets/`, with its content type.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../static/console/console.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/console/common.js"),
    ),
    (
        "list.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/console/list.js"),
    ),
    (
        "service.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/console/service.js"),
    ),
];

/// Scripts and styles come from this server only (nothing outside the machine is reachable, and
/// no inline script can run if a service's name ever slipped into the markup).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

fn page(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        // The binary is the source: a restarted, newer server must not meet a stale copy.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    (headers, body).into_response()
}

/// `GET /console`: the services list, deploy, scale and delete.
async fn list_page() -> Response {
    page("text/html; charset=utf-8", LIST_PAGE)
}

/// `GET /console/services/{access_name}`: one service's page. The script reads the access name
/// from the address, so any name gets the page, and an unknown one is reported on it in words.
async fn detail_page(Path(_access_name): Path<String>) -> Response {
    page("text/html; charset=utf-8", DETAIL_PAGE)
}

/// `GET /console/assets/{file}`.
async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => page(content_type, body),
        None => ApiError::with_status(
            StatusCode::NOT_FOUND,
            Error::InvalidRequest {
                message: format!(
                    "Unknown request URL: {} /console/assets/{file}.",
                    Method::GET
                ),
                param: None,
            },
        )
        .into_response(),
    }
}
