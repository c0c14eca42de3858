//! The API's connection limits on a real socket: idle connections cannot
//! starve it, a kept-alive connection that says nothing is closed, and a
//! request that runs too long gets 503 with a JSON error.
//!
//! The router here is a small one with a fast and a slow route, served by
//! the same [`serve_with`] the service uses: the limits belong to the
//! connections, not to any route.

use axum::routing::get;
use axum::Router;
use gridwatch_analytics::api::connections::{serve_with, ConnectionLimits};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Bound on anything a test waits for; a correct server is far quicker.
const BOUND: Duration = Duration::from_secs(30);

async fn start(limits: ConnectionLimits) -> (SocketAddr, CancellationToken) {
    let router = Router::new()
        .route(
            "/ok",
            get(|| async { axum::Json(serde_json::json!({"ok": true})) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(serve_with(listener, router, limits, stop.clone()));
    (addr, stop)
}

/// Sends one request with `Connection: close`; the whole answer, or `None`
/// when the server closed the connection without one.
async fn request(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.ok()?;
    (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
}

/// Whether the server closes `s` (end of stream or reset) within [`BOUND`].
async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(BOUND, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_over_the_cap_do_not_starve_a_request() {
    let (addr, stop) = start(ConnectionLimits {
        max_connections: 16,
        header_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(30),
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // A client that retries a refused connection, as browsers do, gets in
    // as soon as the idle ones are closed.
    let deadline = tokio::time::Instant::now() + BOUND;
    let mut answer = None;
    while answer.is_none() && tokio::time::Instant::now() < deadline {
        answer = request(addr, "/ok").await;
        if answer.is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let answer = answer.expect("the request is answered while 200 idle connections were opened");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#"{"ok":true}"#), "{answer}");
    // Every idle connection was closed: those over the cap at once, the
    // others when their header time ran out.
    for (i, s) in idle.iter_mut().enumerate() {
        assert!(closed(s).await, "idle connection {i} is still open");
    }
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_that_says_nothing_is_closed() {
    let (addr, stop) = start(ConnectionLimits {
        max_connections: 4,
        header_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_secs(30),
    })
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains(r#"{"ok":true}"#) {
        let k = tokio::time::timeout(BOUND, s.read(&mut buf))
            .await
            .expect("the answer comes within the bound")
            .unwrap();
        assert!(k > 0, "closed before the answer");
        got.extend_from_slice(&buf[..k]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    // Kept alive, then idle: closed by the server.
    assert!(
        closed(&mut s).await,
        "the idle kept-alive connection stays open"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_runs_too_long_gets_503_with_a_json_error() {
    let (addr, stop) = start(ConnectionLimits {
        max_connections: 4,
        header_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_millis(200),
    })
    .await;
    let answer = tokio::time::timeout(BOUND, request(addr, "/slow"))
        .await
        .expect("answered within the bound")
        .expect("an answer, not a closed connection");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer
        .to_ascii_lowercase()
        .contains("content-type: application/json"));
    let body = answer.split_once("\r\n\r\n").unwrap().1;
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("longer than 200 ms"),
        "{v}"
    );
    // The fast route is unaffected.
    let ok = request(addr, "/ok").await.unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    stop.cancel();
}
