//! A tiny OpenAI-compatible HTTP server over `modelservice::Registry`:
//! `/v1/chat/completions` (JSON or SSE), `/v1/models`, `/v1/services` (deploy, list, retrieve,
//! scale, delete), all routed by one table (`route_table.rs`) into `Registry::call`, Bearer API
//! keys, Prometheus `/metrics`, a public `/health`, and a trial page at `/`. Requests are
//! bounded in size and time, and connections in number and idleness (`serve.rs`).

mod auth;
mod config;
mod console;
mod error;
mod metrics;
mod route_table;
mod routes;
mod serve;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use clap::Parser;
use modelservice::Registry;
use tower::ServiceBuilder;

use crate::auth::Keys;
use crate::config::{Args, Config};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub keys: Arc<Keys>,
    pub max_body_bytes: usize,
    /// Longest time until a request's answer starts (its body, a whole unstreamed answer).
    pub request_timeout: Duration,
}

/// The whole application: public routes, then every operation of the route table behind API
/// keys (the table says which routes need an admin key).
pub fn app(state: AppState) -> Router {
    let api = routes::operations()
        .route("/metrics", get(metrics::metrics))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ));
    let timeout = state.request_timeout;
    Router::new()
        .route("/", get(routes::playground))
        .route("/health", get(routes::health))
        .merge(console::routes())
        .merge(api)
        .fallback(routes::fallback)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            routes::limit_declared_body,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(
                    move |_: tower::BoxError| async move { request_timed_out(timeout) },
                ))
                .timeout(timeout),
        )
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// The answer to a request whose answer had not started within the request timeout; its work
/// (a body still arriving, a generation) was dropped with it.
fn request_timed_out(timeout: Duration) -> Response {
    error::http_error(
        StatusCode::REQUEST_TIMEOUT,
        "invalid_request_error",
        "request_timeout",
        format!(
            "The request did not complete within the server's limit of {} s; stream long answers \
             (`\"stream\": true`) or lower `max_tokens`.",
            timeout.as_secs()
        ),
    )
}

/// One log line per request: method, path, status, time. Headers (and so keys) are never logged.
async fn log_request(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let start = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        ms = start.elapsed().as_millis() as u64,
        "request"
    );
    response
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: no new connections, finishing requests in flight");
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,llama-cpp-2=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("modelservice-server: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let config = Config::load(args)?;
    let registry = Arc::new(Registry::new());
    for spec in config.services {
        let access_name = spec.access_name.clone();
        let info = registry
            .deploy(spec)
            .map_err(|e| format!("cannot deploy `{access_name}`: {e}"))?;
        tracing::info!(
            access_name = %info.access_name,
            base_model = %info.base_model.name,
            instances = info.instances,
            slots = info.slots_per_instance,
            "serving"
        );
    }
    let state = AppState {
        registry: registry.clone(),
        keys: Arc::new(Keys::new(config.api_keys, config.admin_keys)),
        max_body_bytes: config.max_body_bytes,
        request_timeout: config.request_timeout,
    };
    let limits = serve::ConnectionLimits {
        idle_timeout: config.idle_timeout,
        max_connections: config.max_connections,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        // On stdout, one line, so scripts (and the tests) learn the port when it was 0.
        println!("listening on http://{local}");
        serve::serve(listener, app(state), limits, shutdown_signal()).await;
        Ok::<(), String>(())
    })?;
    // Every connection has closed: stop the services' workers before exiting.
    for info in registry.list().data {
        let _ = registry.delete(&info.access_name, &info.name);
    }
    Ok(())
}
