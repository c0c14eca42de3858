//! The InfluxDB uplink: readings from the outbox as line protocol over HTTP.
//!
//! It reads the outbox from its own cursor, turns readings into lines
//! (events have no series in InfluxDB and are passed over), and writes them
//! in batches of up to `batch_max_lines` (a partial batch waits up to
//! `batch_max_wait_ms` for more), gzip-compressed, with `precision=ms`
//! always given (InfluxDB 3 guesses the unit otherwise). What a response
//! means is decided in [`verdict`]: retry with jittered backoff (or the
//! server's `Retry-After`), or refuse. A batch refused with 400 is split in
//! halves until the refused lines stand alone; those go to the dead-letter
//! file with the server's message and the rest are written, so one bad value
//! never blocks the queue. Replays are harmless: a point with the same
//! series and timestamp overwrites itself.
//!
//! reqwest does the HTTP (the `influxdb2` crate would add a query client and
//! its own data model for nothing, and does not speak the v1 `/write` API).

pub mod verdict;

use crate::config::{InfluxApi, InfluxConfig};
use crate::net::{jittered, words, Backoff};
use crate::outbox::writer::OutboxHandle;
use crate::outbox::ReadCursor;
use crate::outbox::Record;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use verdict::Verdict;

/// The InfluxDB uplink's name in the outbox (its cursor).
pub const NAME: &str = "influx";
/// Time allowed at shutdown to finish writing.
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// First wait before retrying a failed write.
const RETRY_FIRST: Duration = Duration::from_millis(500);

/// Why the uplink could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum InfluxSetupError {
    /// A secret file could not be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Secret {
        /// Which secret.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client for InfluxDB: {0}")]
    Client(#[from] reqwest::Error),
}

/// One line on its way, with the outbox record it came from.
#[derive(Debug, Clone)]
struct Line {
    id: u64,
    text: String,
}

/// The InfluxDB uplink of one gateway.
pub struct InfluxUplink {
    config: InfluxConfig,
    endpoint: String,
    query: Vec<(&'static str, String)>,
    auth: Auth,
    client: reqwest::Client,
    dead_letter: PathBuf,
    outbox: Arc<OutboxHandle>,
    health: Option<Arc<crate::status::Health>>,
}

enum Auth {
    None,
    Token(String),
    Basic(String, String),
}

fn read_secret(what: &'static str, path: &std::path::Path) -> Result<String, InfluxSetupError> {
    let text = std::fs::read_to_string(path).map_err(|source| InfluxSetupError::Secret {
        what,
        path: path.to_owned(),
        source,
    })?;
    Ok(text.lines().next().unwrap_or_default().trim().to_owned())
}

impl InfluxUplink {
    /// An uplink for `[influx]` delivering `outbox`; dead letters go to the
    /// configured file or `outbox_dir/dead-letter-influx.lp`.
    pub fn new(
        config: &InfluxConfig,
        outbox: Arc<OutboxHandle>,
        outbox_dir: &std::path::Path,
    ) -> Result<Self, InfluxSetupError> {
        let (endpoint, query, auth) = match &config.api {
            InfluxApi::V2 {
                org,
                bucket,
                token_file,
            } => (
                format!("{}/api/v2/write", config.url),
                vec![
                    ("org", org.clone()),
                    ("bucket", bucket.clone()),
                    ("precision", "ms".to_owned()),
                ],
                match token_file {
                    Some(f) => Auth::Token(read_secret("the InfluxDB token file", f)?),
                    None => Auth::None,
                },
            ),
            InfluxApi::V1 {
                db,
                rp,
                credentials,
            } => {
                let mut q = vec![("db", db.clone())];
                if let Some(rp) = rp {
                    q.push(("rp", rp.clone()));
                }
                q.push(("precision", "ms".to_owned()));
                let auth = match credentials {
                    Some((user, file)) => Auth::Basic(
                        user.clone(),
                        read_secret("the InfluxDB password file", file)?,
                    ),
                    None => Auth::None,
                };
                (format!("{}/write", config.url), q, auth)
            }
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()?;
        Ok(Self {
            endpoint,
            query,
            auth,
            client,
            dead_letter: config
                .dead_letter_file
                .clone()
                .unwrap_or_else(|| outbox_dir.join("dead-letter-influx.lp")),
            outbox,
            config: config.clone(),
            health: None,
        })
    }

    /// Reports each write's outcome to `health` (metrics, and the judging
    /// of a remote config on trial).
    pub fn with_health(mut self, health: Arc<crate::status::Health>) -> Self {
        self.health = Some(health);
        self
    }

    fn record(&self, up: bool) {
        if let Some(h) = &self.health {
            h.record_uplink(NAME, up);
        }
    }

    /// Delivers the outbox until `shutdown`; then it has [`DRAIN_TIME`] to
    /// write what is readable, and the rest waits in the outbox.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut reader = ReadCursor::at(self.outbox.cursor(NAME).unwrap_or(0));
        let mut readable = self.outbox.readable();
        let mut backoff =
            Backoff::new(RETRY_FIRST, Duration::from_millis(self.config.retry_max_ms));
        let max = self.config.batch_max_lines;
        let mut failing = false;
        loop {
            let Some((mut lines, mut last_id)) = self.read(&mut reader, max) else {
                // Logged in read(); try again in a moment.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => break,
                }
            };
            if lines.len() < max && !shutdown.is_cancelled() {
                // A partial batch waits a little for more.
                let until = Instant::now() + Duration::from_millis(self.config.batch_max_wait_ms);
                while lines.len() < max && Instant::now() < until {
                    tokio::select! {
                        r = readable.changed() => if r.is_err() { break },
                        _ = tokio::time::sleep_until(until) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    let Some((more, id)) = self.read(&mut reader, max - lines.len()) else {
                        break;
                    };
                    lines.extend(more);
                    last_id = last_id.max(id);
                }
            }
            let Some(last) = last_id else {
                // Nothing readable: wait for the next commit.
                tokio::select! {
                    r = readable.changed() => if r.is_err() { break },
                    _ = shutdown.cancelled() => break,
                }
                continue;
            };
            // Write the batch, splitting refused halves, until it is all done.
            let mut todo: Vec<Vec<Line>> = vec![lines];
            while let Some(batch) = todo.pop() {
                if batch.is_empty() {
                    continue;
                }
                let written = tokio::select! {
                    v = self.write(&batch) => v,
                    _ = drain_over(&shutdown) => return,
                };
                match written {
                    Verdict::Written => {
                        self.record(true);
                        backoff.reset();
                        if failing {
                            failing = false;
                            info!("InfluxDB at {} takes writes again", self.config.url);
                        }
                    }
                    Verdict::Refused { per_line, message } => {
                        if per_line && batch.len() > 1 {
                            let mut first = batch;
                            let second = first.split_off(first.len() / 2);
                            // Pop order: the first half is written first.
                            todo.push(second);
                            todo.push(first);
                        } else {
                            self.bury(&batch, &message);
                        }
                    }
                    Verdict::Retry { after, message } => {
                        let delay = after.unwrap_or_else(|| {
                            jittered(backoff.next_delay(), rand::random::<f64>())
                        });
                        failing = true;
                        self.record(false);
                        warn!(
                            "InfluxDB at {} did not take {} lines ({message}); retrying in {}",
                            self.config.url,
                            batch.len(),
                            words(delay)
                        );
                        todo.push(batch);
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = shutdown.cancelled() => {
                                // Stopping: what is not written stays in the outbox.
                                return;
                            }
                        }
                    }
                }
            }
            self.outbox.acknowledge(NAME, last + 1);
            if shutdown.is_cancelled() && reader.next_id() >= *readable.borrow() {
                break;
            }
        }
    }

    /// Reads up to `max` records; returns the lines of its readings and the
    /// last id read (events give no line but are passed over too). `None`
    /// when the outbox cannot be read.
    fn read(&self, reader: &mut ReadCursor, max: usize) -> Option<(Vec<Line>, Option<u64>)> {
        let entries = match self.outbox.read(reader, max) {
            Ok(e) => e,
            Err(e) => {
                error!("the InfluxDB uplink cannot read the outbox: {e}");
                return None;
            }
        };
        let last = entries.last().map(|e| e.id);
        let lines = entries
            .into_iter()
            .filter_map(|e| match Record::from_payload(&e.payload) {
                Ok(Record::Reading(r)) => match r.to_line() {
                    Ok(text) => Some(Line { id: e.id, text }),
                    Err(err) => {
                        warn!(
                            "reading {} of {} has no line-protocol form: {err}",
                            r.seq, r.device
                        );
                        None
                    }
                },
                // Decoded records are never Prepared: that is how pollers send.
                Ok(Record::Event(_) | Record::Prepared { .. }) => None,
                Err(err) => {
                    error!(
                        "outbox record {} cannot be decoded and is skipped: {err}",
                        e.id
                    );
                    None
                }
            })
            .collect();
        Some((lines, last))
    }

    /// Writes one line of line protocol now, for `selftest`: `Err` says
    /// why InfluxDB did not store it (the same request the uplink makes,
    /// with the configured URL, credentials and gzip).
    pub async fn test_write(&self, line: &str) -> Result<(), String> {
        let text = format!("{}\n", line.trim_end());
        match self.write(&[Line { id: 0, text }]).await {
            Verdict::Written => Ok(()),
            Verdict::Retry { message, .. } | Verdict::Refused { message, .. } => Err(message),
        }
    }

    /// One write request; a network error is a [`Verdict::Retry`].
    async fn write(&self, batch: &[Line]) -> Verdict {
        let mut body = String::with_capacity(batch.iter().map(|l| l.text.len()).sum());
        for l in batch {
            body.push_str(&l.text);
        }
        let mut req = self
            .client
            .post(&self.endpoint)
            .query(&self.query)
            .header("Content-Type", "text/plain; charset=utf-8");
        req = match &self.auth {
            Auth::None => req,
            Auth::Token(t) => req.header("Authorization", format!("Token {t}")),
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
        };
        req = if self.config.gzip {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            if gz.write_all(body.as_bytes()).is_err() {
                return retry("gzip failed".into());
            }
            match gz.finish() {
                Ok(bytes) => req.header("Content-Encoding", "gzip").body(bytes),
                Err(e) => return retry(format!("gzip failed: {e}")),
            }
        } else {
            req.body(body)
        };
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("Retry-After")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let text = resp.text().await.unwrap_or_default();
                verdict::classify(status, retry_after.as_deref(), &text)
            }
            Err(e) => retry(network_reason(&e)),
        }
    }

    /// Appends refused lines to the dead-letter file, each after a comment
    /// with the server's message (the file is valid line protocol).
    fn bury(&self, batch: &[Line], message: &str) {
        let mut text = String::new();
        for l in batch {
            text.push_str(&format!("# outbox record {}: {message}\n", l.id));
            text.push_str(&l.text);
        }
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.dead_letter)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_data()));
        match written {
            Ok(()) => warn!(
                "InfluxDB at {} refused {} line{} ({message}); moved to {}",
                self.config.url,
                batch.len(),
                if batch.len() == 1 { "" } else { "s" },
                self.dead_letter.display()
            ),
            Err(e) => error!(
                "InfluxDB at {} refused {} lines ({message}) and the dead-letter file {} cannot \
                 be written ({e}); they are lost",
                self.config.url,
                batch.len(),
                self.dead_letter.display()
            ),
        }
    }
}

/// Completes [`DRAIN_TIME`] after `shutdown`: what is not written by then
/// stays in the outbox for the next start.
async fn drain_over(shutdown: &CancellationToken) {
    shutdown.cancelled().await;
    tokio::time::sleep(DRAIN_TIME).await;
}

fn retry(message: String) -> Verdict {
    Verdict::Retry {
        after: None,
        message,
    }
}

fn network_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer in time".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        e.to_string()
    }
}
