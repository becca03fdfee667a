//! The connection loop: hyper's HTTP/1 server with its header-read timer (a client that sends
//! its request head too slowly, or keeps an idle connection open, is cut after the idle
//! timeout), a cap on open connections (one over the cap is answered 503 and closed), and a
//! graceful shutdown that lets requests in flight finish. `axum::serve` offers neither timer
//! nor cap, so the server runs hyper itself, as axum's own `serve` does inside.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::error::http_error;

/// Longest wait for the request head of a connection over the cap.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long connections may take and how many may be open.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest wait for a request head, on a new connection or between keep-alive requests.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits for open connections to
/// finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout);
    // Connections over the cap get one answer, and little time to ask for it.
    let mut refusing = http1::Builder::new();
    refusing
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout.min(REFUSAL_TIMEOUT))
        .keep_alive(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, mostly: wait for some to close instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let service = TowerToHyperService::new(app.clone());
                let connection = graceful.watch(builder.serve_connection(io, service));
                tokio::spawn(async move {
                    let _ = connection.await;
                    drop(permit);
                });
            }
            Err(_) => {
                let max = limits.max_connections;
                let refuse = hyper::service::service_fn(move |_: Request<Incoming>| async move {
                    Ok::<_, Infallible>(over_capacity(max))
                });
                let connection = graceful.watch(refusing.serve_connection(io, refuse));
                tokio::spawn(connection);
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The answer on a connection over the cap: 503 in the OpenAI envelope, and the connection
/// closes after it.
fn over_capacity(max_connections: usize) -> Response<Body> {
    let mut response = http_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable_error",
        "server_busy",
        format!("The server has {max_connections} connections open, its limit; retry shortly."),
    );
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
