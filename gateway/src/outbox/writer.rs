//! The task that appends what pollers measured to the outbox, and the handle
//! uplinks share it through.
//!
//! Pollers send [`Record`]s through the bounded queue of [`super::queue`];
//! this task appends each batch it takes from the queue, writes it to the
//! segment file and publishes the new readable end on a `watch` channel,
//! which is what wakes the uplinks: delivery waits for a write, not for an
//! fsync. The group commit (fsync) runs every `fsync_interval` on a blocking
//! thread (an SD card's fsync can take tens of milliseconds). Writes that
//! fail (a full disk) are retried from memory; what does not fit is counted;
//! each episode is logged when it starts and ends; polling goes on.

use super::{Entry, Outbox, OutboxError, OutboxStats, ReadCursor};
use crate::outbox::queue::PollsInFlight;
use crate::outbox::Record;
use gridwatch_telemetry::Clock;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::{error, warn};

/// Records taken from the queue per lock of the outbox.
const BATCH: usize = 256;
/// How long the writer waits after the first record of a batch for more to
/// join it. Pollers due at the same moment answer within a millisecond or
/// two of each other; gathered, their readings take one write to the
/// segment, and the uplink sends them in one burst (one write to the
/// broker's socket, one read of its PUBACKs) instead of one each. The wait
/// ends early once no poll is in flight ([`super::queue::PollsInFlight`]):
/// the round is complete. It adds at most this much to the delivery delay,
/// and a kill -9 loses at most what arrived in it (the queue's records are
/// lost with the process anyway).
pub const GATHER: Duration = Duration::from_millis(2);

/// The outbox shared by its writer and the uplinks.
pub struct OutboxHandle {
    outbox: Mutex<Outbox>,
    readable: watch::Sender<u64>,
}

impl OutboxHandle {
    /// Shares `outbox`.
    pub fn new(outbox: Outbox) -> Arc<Self> {
        let (readable, _) = watch::channel(outbox.readable());
        Arc::new(Self {
            outbox: Mutex::new(outbox),
            readable,
        })
    }

    /// The outbox itself. A panic elsewhere while holding it leaves it
    /// usable: every method keeps it consistent between statements.
    pub fn lock(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes whenever more records become readable (written, not
    /// necessarily synced yet).
    pub fn readable(&self) -> watch::Receiver<u64> {
        self.readable.subscribe()
    }

    /// See [`Outbox::read`].
    pub fn read(&self, cursor: &mut ReadCursor, max: usize) -> Result<Vec<Entry>, OutboxError> {
        self.lock().read(cursor, max)
    }

    /// See [`Outbox::acknowledge`].
    pub fn acknowledge(&self, uplink: &str, next_id: u64) {
        self.lock().acknowledge(uplink, next_id);
    }

    /// See [`Outbox::cursor`].
    pub fn cursor(&self, uplink: &str) -> Option<u64> {
        self.lock().cursor(uplink)
    }

    /// See [`Outbox::stats`].
    pub fn stats(&self) -> OutboxStats {
        self.lock().stats()
    }

    /// Commits on a blocking thread and wakes the uplinks.
    pub async fn commit(self: &Arc<Self>) -> Result<(), OutboxError> {
        self.commit_or_close(false).await
    }

    /// The last commit of a clean stop ([`Outbox::close`]).
    pub async fn close(self: &Arc<Self>) -> Result<(), OutboxError> {
        self.commit_or_close(true).await
    }

    async fn commit_or_close(self: &Arc<Self>, close: bool) -> Result<(), OutboxError> {
        let this = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            if close {
                let mut o = this.lock();
                return (o.close(), o.readable());
            }
            // The fsync runs without the lock: pollers' records are written
            // and uplinks read meanwhile.
            let (flushed, unsynced) = this.lock().prepare_commit();
            let synced = unsynced.map(super::Unsynced::sync).transpose();
            let mut o = this.lock();
            (o.finish_commit(flushed, synced), o.readable())
        })
        .await;
        match result {
            Ok((r, readable)) => {
                self.readable.send_replace(readable);
                r
            }
            Err(e) => Err(OutboxError::Io {
                what: "committing",
                path: Default::default(),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }
}

/// Appends records from `records` until every sender is gone: each batch
/// taken from the queue is written at once and made readable (uplinks are
/// woken then), and the group commit syncs every `fsync_interval`, while
/// batches go on being written; commits once more at the end. While writes fail (a full disk) the batch is held
/// in memory and retried at every tick. `on_stats` hears the outbox's
/// counters after every batch and commit (the daemon feeds the gateway's
/// status with them). `polls` is the pollers' count of polls in flight
/// ([`super::queue::RecordSender::polls_in_flight`]).
pub async fn run(
    handle: Arc<OutboxHandle>,
    mut records: mpsc::Receiver<Record>,
    polls: PollsInFlight,
    fsync_interval: Duration,
    clock: Arc<dyn Clock>,
    on_stats: impl Fn(&OutboxStats) + Send,
) {
    let mut tick = tokio::time::interval(fsync_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty = false;
    let mut episode = Episode::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut bytes = Vec::new();
    // The group commit in progress: its fsync runs on a blocking thread
    // while this task goes on writing batches, so a slow fsync (an SD
    // card, a busy disk) never holds back delivery.
    let mut commit: Option<Committing> = None;
    loop {
        tokio::select! {
            n = records.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    break;
                }
                gather(&mut records, &mut batch, &polls).await;
                let now = clock.now().millis();
                let (stats, readable) = {
                    let mut o = handle.lock();
                    for record in batch.drain(..) {
                        bytes.clear();
                        if let Err(e) = record.write_payload(&mut bytes) {
                            error!("a record could not be encoded and is not kept: {e}");
                            continue;
                        }
                        let seq = Some((record.device().as_str(), record.seq()));
                        if let Err(e) = o.append(&bytes, seq, now) {
                            episode.dropped(&e);
                        }
                    }
                    let flushed = o.flush();
                    episode.after(&flushed, &o.stats());
                    (o.stats(), o.readable())
                };
                dirty = true;
                handle.readable.send_replace(readable);
                on_stats(&stats);
            }
            _ = tick.tick(), if commit.is_none() && (dirty || episode.failing) => {
                dirty = false;
                let h = handle.clone();
                commit = Some(Box::pin(async move { h.commit().await }));
            }
            r = async { commit.as_mut().expect("guarded by is_some").await }, if commit.is_some() => {
                commit = None;
                let stats = handle.stats();
                if episode.failing {
                    episode.after(&r, &stats);
                } else if let Err(e) = r {
                    error!("the outbox could not sync its records to disk: {e}");
                }
                on_stats(&stats);
            }
        }
    }
    if let Some(c) = commit {
        let _ = c.await;
    }
    if let Err(e) = handle.commit().await {
        error!("the outbox could not sync its last records to disk: {e}");
    }
    on_stats(&handle.stats());
}

/// A group commit under way ([`OutboxHandle::commit`]).
type Committing = Pin<Box<dyn Future<Output = Result<(), OutboxError>> + Send>>;

/// Adds to `batch` the records that arrive within [`GATHER`] (or until it
/// holds [`BATCH`]), stopping early once no poll is in flight and the
/// queue is empty. A closed queue ends it early; the caller's next receive
/// sees that.
async fn gather(
    records: &mut mpsc::Receiver<Record>,
    batch: &mut Vec<Record>,
    polls: &PollsInFlight,
) {
    let until = tokio::time::Instant::now() + GATHER;
    while batch.len() < BATCH {
        let room = BATCH - batch.len();
        if polls.none() {
            // What the finished polls queued is all there is for now.
            while batch.len() < BATCH {
                match records.try_recv() {
                    Ok(record) => batch.push(record),
                    Err(_) => break,
                }
            }
            break;
        }
        match tokio::time::timeout_at(until, records.recv_many(batch, room)).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// One episode of failing writes, logged once when it starts and once when
/// it ends.
#[derive(Default)]
struct Episode {
    failing: bool,
    dropped_logged: bool,
}

impl Episode {
    fn after(&mut self, r: &Result<(), OutboxError>, stats: &OutboxStats) {
        match r {
            Err(e) if !self.failing => {
                self.failing = true;
                error!(
                    "the outbox cannot write ({e}); freed what every uplink delivered, keeping \
                     {} records in memory and retrying (polling goes on)",
                    stats.held
                );
            }
            Ok(()) if self.failing && stats.held == 0 => {
                self.failing = false;
                self.dropped_logged = false;
                warn!(
                    "the outbox writes again; {} records dropped for lack of space since start",
                    stats.full_dropped
                );
            }
            _ => {}
        }
    }

    fn dropped(&mut self, e: &OutboxError) {
        if !self.dropped_logged {
            self.dropped_logged = true;
            error!("{e}; counted in outbox_dropped until space returns");
        }
    }
}
