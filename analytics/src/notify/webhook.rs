//! Alerts to a webhook: JSON over HTTP POST, signed with HMAC-SHA256,
//! retried with backoff, on a task of its own.
//!
//! Queueing and retries are [`super::channel`]'s, shared with e-mail: a
//! connection error, a timeout, a 5xx or a 429 is retried with doubling
//! delays up to `max_attempts`; any other 4xx is permanent (retrying cannot
//! fix it) and the notice is dropped with an error in the log.
//!
//! Receivers check `X-Gridwatch-Signature: sha256=<hex>`, the HMAC-SHA256
//! with the shared secret of `"{X-Gridwatch-Timestamp}.{body}"`, and should
//! refuse stale timestamps. The secret lives in its own file, not in the
//! config. Only `http://` URLs are supported: put a TLS-terminating proxy
//! on the same host in front of an HTTPS receiver.

use super::channel::{Deliver, NoticeSender, RetryPolicy};
pub use super::channel::{Notice, Outcome};
use crate::toml_file::FieldError;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// The webhook's handle, as the service and tests hold it.
pub type WebhookSender = NoticeSender;

/// The `[notify.webhook]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// `http://host:port/path`. Without it there is no webhook channel.
    pub url: Option<String>,
    /// File holding the shared HMAC secret (first line, trimmed).
    pub secret_file: Option<PathBuf>,
    /// Per-attempt limit for connect, send and the status line.
    pub timeout_ms: u64,
    /// First retry delay; doubles per attempt.
    pub retry_min_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// Attempts per notice before it is dropped.
    pub max_attempts: u32,
    /// Notices waiting beyond this are dropped (and counted).
    pub max_queued: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            url: None,
            secret_file: None,
            timeout_ms: 5_000,
            retry_min_ms: 1_000,
            retry_max_ms: 60_000,
            max_attempts: 8,
            max_queued: 1_000,
        }
    }
}

impl WebhookConfig {
    /// Checks the URL and that a secret goes with it.
    pub fn validate(&self) -> Result<(), FieldError> {
        let Some(url) = &self.url else {
            return Ok(());
        };
        Endpoint::parse(url).map_err(|m| FieldError::new("url", m))?;
        if self.secret_file.is_none() {
            return Err(FieldError::new(
                "secret_file",
                "is required with url: receivers must be able to check the signature",
            ));
        }
        self.policy().validate()
    }

    /// Queueing and retry settings for [`super::channel`].
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            timeout_ms: self.timeout_ms,
            retry_min_ms: self.retry_min_ms,
            retry_max_ms: self.retry_max_ms,
            max_attempts: self.max_attempts,
            max_queued: self.max_queued,
        }
    }
}

/// Where to POST: parsed once from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port`.
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Endpoint {
    /// Parses `http://host[:port][/path]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("{url:?} is not an http:// URL (https needs a local TLS proxy)")
        })?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if host.is_empty() || host.contains(['@', ' ']) || path.contains([' ', '\r', '\n']) {
            return Err(format!("{url:?} is not a usable URL"));
        }
        let authority = if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        Ok(Self {
            authority,
            path: path.to_owned(),
        })
    }
}

/// The signature header value for `body` sent at `timestamp_ms`.
pub fn sign(secret: &[u8], timestamp_ms: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "sha256={}",
        crate::alerts::directory::hex(&mac.finalize().into_bytes())
    )
}

struct Webhook {
    endpoint: Endpoint,
    secret: Vec<u8>,
}

impl Deliver for Webhook {
    fn name(&self) -> String {
        format!("webhook {}", self.endpoint.authority)
    }

    fn kind(&self) -> &'static str {
        "webhook"
    }

    async fn attempt(&self, notice: &Notice) -> Outcome {
        post(&self.endpoint, &self.secret, notice).await
    }
}

/// Starts the channel's task; it stops when `shutdown` is cancelled.
pub fn spawn(
    config: WebhookConfig,
    endpoint: Endpoint,
    secret: Vec<u8>,
    shutdown: CancellationToken,
) -> WebhookSender {
    super::channel::spawn(Webhook { endpoint, secret }, config.policy(), shutdown)
}

async fn post(endpoint: &Endpoint, secret: &[u8], notice: &Notice) -> Outcome {
    let mut stream = match tokio::net::TcpStream::connect(&endpoint.authority).await {
        Ok(s) => s,
        Err(e) => return Outcome::Retry(format!("cannot connect: {e}")),
    };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         X-Gridwatch-Timestamp: {}\r\nX-Gridwatch-Signature: {}\r\nConnection: close\r\n\r\n",
        endpoint.path,
        endpoint.authority,
        notice.body.len(),
        notice.at_ms,
        sign(secret, notice.at_ms, &notice.body)
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(&notice.body);
    if let Err(e) = stream.write_all(&request).await {
        return Outcome::Retry(format!("cannot send: {e}"));
    }
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while !got.contains(&b'\n') && got.len() < 64 {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return Outcome::Retry(format!("cannot read the answer: {e}")),
        }
    }
    classify(&got)
}

/// Sorts an HTTP status line into delivered, retry or permanent.
fn classify(status_line: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(status_line);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(200..=299) => Outcome::Delivered,
        Some(429) | Some(500..=599) => Outcome::Retry(format!("HTTP {}", code.unwrap_or(0))),
        Some(c) => Outcome::Permanent(format!("HTTP {c}")),
        None => Outcome::Retry("no HTTP status line".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::mpsc;

    #[test]
    fn urls_become_endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:9000/hooks/gw?x=1").unwrap();
        assert_eq!(e.authority, "127.0.0.1:9000");
        assert_eq!(e.path, "/hooks/gw?x=1");
        assert_eq!(
            Endpoint::parse("http://example").unwrap().authority,
            "example:80"
        );
        assert!(Endpoint::parse("https://example/").is_err());
        assert!(Endpoint::parse("http:///x").is_err());
    }

    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let a = sign(b"k", 1, b"{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, sign(b"k", 2, b"{}"));
        assert_ne!(a, sign(b"k", 1, b"{ }"));
        assert_ne!(a, sign(b"other", 1, b"{}"));
    }

    #[test]
    fn server_errors_and_429_are_retried_other_4xx_are_not() {
        assert_eq!(classify(b"HTTP/1.1 204 No Content\r\n"), Outcome::Delivered);
        assert!(matches!(
            classify(b"HTTP/1.1 503 Busy\r\n"),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(b"HTTP/1.1 429 Slow\r\n"),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(b"HTTP/1.1 401 No\r\n"),
            Outcome::Permanent(_)
        ));
        assert!(matches!(classify(b""), Outcome::Retry(_)));
    }

    /// A receiver on a loopback port that answers the given statuses in
    /// turn and hands back each request (head and body) it read.
    async fn receiver(statuses: Vec<u16>) -> (String, mpsc::Receiver<(String, Vec<u8>)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            for status in statuses {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).into_owned();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap();
                        if got.len() >= i + 4 + len || n == 0 {
                            let head = text[..i].to_owned();
                            let body = got[i + 4..].to_vec();
                            let _ = tx.send((head, body)).await;
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
                s.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (url, rx)
    }

    #[tokio::test]
    async fn a_failed_post_is_retried_and_every_attempt_is_signed() {
        let (url, mut rx) = receiver(vec![503, 204]).await;
        let config = WebhookConfig {
            url: Some(url.clone()),
            retry_min_ms: 10,
            retry_max_ms: 20,
            ..WebhookConfig::default()
        };
        let stop = CancellationToken::new();
        let sender = spawn(
            config,
            Endpoint::parse(&url).unwrap(),
            b"s3cret".to_vec(),
            stop.clone(),
        );
        sender.send(Notice {
            case: 7,
            at_ms: 1234,
            body: br#"{"event":"raised"}"#.to_vec(),
        });
        for _ in 0..2 {
            let (head, body) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
                .await
                .expect("the webhook posts within the bound")
                .unwrap();
            assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
            assert_eq!(body, br#"{"event":"raised"}"#);
            assert!(head.contains("X-Gridwatch-Timestamp: 1234"), "{head}");
            let expected = format!("X-Gridwatch-Signature: {}", sign(b"s3cret", 1234, &body));
            assert!(head.contains(&expected), "{head}");
        }
        assert_eq!(sender.dropped(), 0);
        stop.cancel();
    }

    #[test]
    fn a_url_needs_a_secret() {
        let c = WebhookConfig {
            url: Some("http://127.0.0.1:1/".into()),
            ..WebhookConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().path.to_string(), "secret_file");
    }
}
