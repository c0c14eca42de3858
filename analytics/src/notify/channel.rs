//! What every notice channel besides MQTT shares: a bounded queue in front
//! of a task of its own, and delivery with retries and doubling delays.
//!
//! The service hands notices over with [`NoticeSender::send`], which never
//! waits: when a channel's queue is full the notice is dropped and counted,
//! so a receiver that is down for hours slows neither the detectors nor the
//! other channels. Each channel's task delivers one notice at a time through
//! its [`Deliver`] implementation (webhook, e-mail); a transient failure is
//! retried with doubling delays ([`crate::connection::Backoff`]) up to
//! `max_attempts`, a permanent one drops the notice with an error in the log.

use crate::connection::Backoff;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// One notice for the channels: a JSON document about a case.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The case it is about (for the log).
    pub case: i64,
    /// Event time of the notice, in ms since the epoch.
    pub at_ms: i64,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// How hard a channel tries, from its config section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Per-attempt limit.
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

impl RetryPolicy {
    /// Checks that none of the counts is 0, naming the field.
    pub fn validate(&self) -> Result<(), crate::toml_file::FieldError> {
        for (key, v) in [
            ("timeout_ms", self.timeout_ms),
            ("retry_min_ms", self.retry_min_ms),
            ("max_attempts", u64::from(self.max_attempts)),
            ("max_queued", self.max_queued as u64),
        ] {
            if v == 0 {
                return Err(crate::toml_file::FieldError::new(
                    key,
                    "is 0; it must be at least 1",
                ));
            }
        }
        Ok(())
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_millis(self.retry_min_ms),
            Duration::from_millis(self.retry_max_ms.max(self.retry_min_ms)),
        )
    }
}

/// How one attempt went.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver took it.
    Delivered,
    /// Worth another attempt (connection refused, timeout, busy).
    Retry(String),
    /// Retrying cannot help (refused as malformed, unauthorised).
    Permanent(String),
}

/// A channel's way of delivering one notice.
pub trait Deliver: Send + Sync + 'static {
    /// Names the channel and its target in log lines, e.g. `webhook
    /// 127.0.0.1:9000`.
    fn name(&self) -> String;

    /// The kind of channel for the status line (`webhook`, `wecom`, …).
    fn kind(&self) -> &'static str;

    /// One attempt; the caller bounds it with the policy's timeout.
    fn attempt(&self, notice: &Notice) -> impl Future<Output = Outcome> + Send;
}

/// What became of a channel's notices so far, for the status line: every
/// notice ends as sent, failed (refused, or retries used up) or dropped
/// (queue full), so a loss is always visible.
#[derive(Debug, Default)]
pub struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelStats {
    /// Taken by the receiver.
    pub sent: u64,
    /// Refused for good, or still failing after `max_attempts`.
    pub failed: u64,
    /// Never tried: the queue was full.
    pub dropped: u64,
}

/// The service's handle on a channel.
#[derive(Debug, Clone)]
pub struct NoticeSender {
    tx: mpsc::Sender<Notice>,
    counters: Arc<Counters>,
    name: Arc<str>,
    kind: &'static str,
}

impl NoticeSender {
    /// Queues a notice without waiting; drops it (and counts) when full.
    pub fn send(&self, notice: Notice) {
        if self.tx.try_send(notice).is_err() {
            let n = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            warn!(
                "the {} queue is full; dropped a notice ({n} so far)",
                self.name
            );
        }
    }

    /// Notices dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Sent, failed and dropped so far.
    pub fn stats(&self) -> ChannelStats {
        ChannelStats {
            sent: self.counters.sent.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            dropped: self.dropped(),
        }
    }

    /// The kind of channel (`webhook`, `email`, `wecom`, `dingtalk`), for
    /// the status line; never carries a key.
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}

/// The status line's part about the channels, e.g. `webhook 3 sent 0
/// failed 0 dropped; wecom 1 sent 1 failed 0 dropped`.
pub fn describe(channels: &[NoticeSender]) -> String {
    if channels.is_empty() {
        return "no notice channels".into();
    }
    channels
        .iter()
        .map(|c| {
            let s = c.stats();
            format!(
                "{} {} sent {} failed {} dropped",
                c.kind(),
                s.sent,
                s.failed,
                s.dropped
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Starts a channel's task; it runs until `shutdown` is cancelled.
pub fn spawn<D: Deliver>(
    channel: D,
    policy: RetryPolicy,
    shutdown: CancellationToken,
) -> NoticeSender {
    let (tx, mut rx) = mpsc::channel::<Notice>(policy.max_queued.max(1));
    let name: Arc<str> = channel.name().into();
    let kind = channel.kind();
    let counters = Arc::new(Counters::default());
    let counted = counters.clone();
    tokio::spawn(async move {
        loop {
            let notice = tokio::select! {
                () = shutdown.cancelled() => break,
                n = rx.recv() => match n { Some(n) => n, None => break },
            };
            match deliver(&channel, &policy, &notice, &shutdown).await {
                Some(true) => counted.sent.fetch_add(1, Ordering::Relaxed),
                Some(false) => counted.failed.fetch_add(1, Ordering::Relaxed),
                None => 0,
            };
        }
    });
    NoticeSender {
        tx,
        counters,
        name,
        kind,
    }
}

async fn deliver<D: Deliver>(
    channel: &D,
    policy: &RetryPolicy,
    notice: &Notice,
    shutdown: &CancellationToken,
) -> Option<bool> {
    let mut backoff = policy.backoff();
    for attempt in 1..=policy.max_attempts {
        let outcome = match tokio::time::timeout(
            Duration::from_millis(policy.timeout_ms),
            channel.attempt(notice),
        )
        .await
        {
            Ok(o) => o,
            Err(_) => Outcome::Retry(format!("no answer within {} ms", policy.timeout_ms)),
        };
        let name = channel.name();
        match outcome {
            Outcome::Delivered => {
                info!(
                    alert = notice.case,
                    "{name} took the notice for case {}", notice.case
                );
                return Some(true);
            }
            Outcome::Permanent(why) => {
                error!(
                    alert = notice.case,
                    "{name} refused the notice for case {}: {why}; not retrying", notice.case
                );
                return Some(false);
            }
            Outcome::Retry(why) if attempt < policy.max_attempts => {
                let delay = backoff.next_delay();
                warn!(
                    alert = notice.case,
                    "{name} failed for case {} ({why}); attempt {attempt} of {}, retrying in {} ms",
                    notice.case,
                    policy.max_attempts,
                    delay.as_millis()
                );
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(delay) => {}
                }
            }
            Outcome::Retry(why) => {
                error!(
                    alert = notice.case,
                    "{name} failed for case {} ({why}) {} times; dropped it",
                    notice.case,
                    policy.max_attempts
                );
            }
        }
    }
    Some(false)
}

/// Reads a secret from its own file (a webhook key, SMTP credentials),
/// warning when other users may read it.
pub fn read_secret_file(path: &std::path::Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the {what} {}: {e}", path.display()))?;
    if text.trim().is_empty() {
        anyhow::bail!("the {what} file {} is empty", path.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path) {
            if m.permissions().mode() & 0o077 != 0 {
                warn!(
                    "the {what} {} is readable by other users; chmod 600 it",
                    path.display()
                );
            }
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_drops_instead_of_waiting() {
        let (tx, _rx) = mpsc::channel(1);
        let sender = NoticeSender {
            tx,
            counters: Arc::default(),
            name: "test channel".into(),
            kind: "test",
        };
        for i in 0..3 {
            sender.send(Notice {
                case: i,
                at_ms: 0,
                body: Vec::new(),
            });
        }
        assert_eq!(sender.dropped(), 2, "one queued, two dropped, none waited");
        assert_eq!(
            describe(&[sender]),
            "test 0 sent 0 failed 2 dropped",
            "the status line shows the drops"
        );
    }

    struct Flaky {
        fail_first: u32,
        attempts: Arc<AtomicU64>,
        delivered: mpsc::Sender<i64>,
    }

    impl Deliver for Flaky {
        fn name(&self) -> String {
            "flaky".into()
        }

        fn kind(&self) -> &'static str {
            "flaky"
        }

        async fn attempt(&self, notice: &Notice) -> Outcome {
            let n = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
            if n <= u64::from(self.fail_first) {
                return Outcome::Retry("down".into());
            }
            let _ = self.delivered.send(notice.case).await;
            Outcome::Delivered
        }
    }

    #[tokio::test]
    async fn a_failing_attempt_is_retried_until_it_goes_through() {
        let (tx, mut rx) = mpsc::channel(4);
        let attempts = Arc::new(AtomicU64::new(0));
        let policy = RetryPolicy {
            timeout_ms: 1000,
            retry_min_ms: 1,
            retry_max_ms: 4,
            max_attempts: 5,
            max_queued: 4,
        };
        let stop = CancellationToken::new();
        let sender = spawn(
            Flaky {
                fail_first: 3,
                attempts: attempts.clone(),
                delivered: tx,
            },
            policy,
            stop.clone(),
        );
        sender.send(Notice {
            case: 7,
            at_ms: 0,
            body: Vec::new(),
        });
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(got.unwrap(), Some(7));
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            4,
            "three failures, then through"
        );
        let stats = sender.stats();
        assert_eq!((stats.sent, stats.failed, stats.dropped), (1, 0, 0));
        stop.cancel();
    }
}
