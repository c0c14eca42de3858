//! The API's connections: how many, how long a client may take to ask, and
//! how long a request may run.
//!
//! A server without limits can be starved by clients that connect and say
//! nothing: each idle connection holds a file descriptor and a task, and
//! once the process runs out of descriptors no dashboard request gets in.
//! So every connection is served by hyper with three limits:
//!
//! - at most `max_connections` at a time; a connection over the cap is
//!   closed at once (not queued, where it would hold its descriptor and
//!   make its client wait for nothing);
//! - a client must send a request's headers within `header_timeout_ms`,
//!   counted from the moment the connection is idle (new, or kept alive
//!   after its last answer): a connection that says nothing is closed;
//! - a request must be answered within `request_timeout_ms`, or the client
//!   gets `503` with `{"error": …}` and the handler is dropped.

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::{debug, warn};

/// The limits the API serves connections under (from `[api]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once; more are closed at once.
    pub max_connections: usize,
    /// Time to send a request's headers, on a new or a kept-alive connection.
    pub header_timeout: Duration,
    /// Time for a request to be answered before it gets 503.
    pub request_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown` is
/// cancelled; then stops accepting, lets each connection finish the request
/// it is on, and returns.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut refused: u64 = 0;
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before it was
                    // taken: not the listener's end. Wait a little, go on.
                    warn!("the API could not accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                warn!(
                    "the API has {} connections open, its limit ([api] max_connections); \
                     closed the one from {peer} ({refused} closed so far)",
                    limits.max_connections
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer.ip()));
                answer(router.clone(), req, limits.request_timeout)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                debug!("API connection from {peer} ended: {e}");
            }
        });
    }
    Ok(())
}

/// Runs one request through the router, or answers 503 when it takes
/// longer than `timeout`.
async fn answer(
    router: Router,
    req: Request<Incoming>,
    timeout: Duration,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    match tokio::time::timeout(timeout, router.oneshot(req.map(Body::new))).await {
        Ok(response) => response,
        Err(_) => {
            warn!(
                "API request for {path} took longer than {} ms ([api] request_timeout_ms); answered 503",
                timeout.as_millis()
            );
            let body = serde_json::json!({
                "error": format!(
                    "the request took longer than {} ms and was stopped; try again later",
                    timeout.as_millis()
                )
            });
            Ok(Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap_or_default())
        }
    }
}

/// Threads serving the API: requests run beside the MQTT loop, not on it,
/// so a crowd of dashboard users does not delay readings.
const API_THREADS: usize = 2;

/// The client's address, put in every request's extensions, for the limits
/// that are per client (the public tip-off page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::IpAddr);

/// Serves the API on threads of its own until `shutdown` is cancelled.
pub fn spawn(
    listener: std::net::TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(API_THREADS)
        .thread_name("analytics-api")
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("analytics-api".into())
        .spawn(move || {
            runtime.block_on(async move {
                let result = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => serve_with(l, router, limits, shutdown).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = result {
                    tracing::error!("the API stopped: {e}");
                }
            });
        })?;
    Ok(())
}
