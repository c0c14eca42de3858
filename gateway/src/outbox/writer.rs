//! The task that appends what pollers measured to the outbox, and the handle
//! uplinks share it through.
//!
//! Pollers send [`Record`]s through the bounded queue of [`super::queue`];
//! this task appends each one and runs the group commit every
//! `fsync_interval`, on a blocking thread (an SD card's fsync can take tens of
//! milliseconds). After a commit it publishes the new durable end on a
//! `watch` channel, which is what wakes the uplinks. A record that cannot be
//! written (disk full) is counted and logged once per episode; polling goes on.

use super::{Entry, Outbox, OutboxError, OutboxStats, ReadCursor};
use crate::outbox::Record;
use gridwatch_telemetry::Clock;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::{error, warn};

/// Records taken from the queue per lock of the outbox.
const BATCH: usize = 256;

/// The outbox shared by its writer and the uplinks.
pub struct OutboxHandle {
    outbox: Mutex<Outbox>,
    durable: watch::Sender<u64>,
}

impl OutboxHandle {
    /// Shares `outbox`.
    pub fn new(outbox: Outbox) -> Arc<Self> {
        let (durable, _) = watch::channel(outbox.durable());
        Arc::new(Self {
            outbox: Mutex::new(outbox),
            durable,
        })
    }

    /// The outbox itself. A panic elsewhere while holding it leaves it
    /// usable: every method keeps it consistent between statements.
    pub fn lock(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes whenever more records become readable.
    pub fn durable(&self) -> watch::Receiver<u64> {
        self.durable.subscribe()
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
        let this = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut o = this.lock();
            let r = o.commit();
            (r, o.durable())
        })
        .await;
        match result {
            Ok((r, durable)) => {
                self.durable.send_replace(durable);
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

/// Appends records from `records` until every sender is gone, committing
/// every `fsync_interval`; commits once more at the end. `on_stats` hears the
/// outbox's counters after every batch and commit (the daemon feeds the
/// gateway's status with them).
pub async fn run(
    handle: Arc<OutboxHandle>,
    mut records: mpsc::Receiver<Record>,
    fsync_interval: Duration,
    clock: Arc<dyn Clock>,
    on_stats: impl Fn(&OutboxStats) + Send,
) {
    let mut tick = tokio::time::interval(fsync_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty = false;
    let mut failing = false;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            n = records.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    break;
                }
                let now = clock.now().millis();
                let mut o = handle.lock();
                for record in batch.drain(..) {
                    let bytes = match record.to_payload() {
                        Ok(b) => b,
                        Err(e) => {
                            error!("a record could not be encoded and is not kept: {e}");
                            continue;
                        }
                    };
                    match o.append(&bytes, Some((record.device().as_str(), record.seq())), now) {
                        Ok(_) => {
                            dirty = true;
                            if failing {
                                failing = false;
                                warn!("the outbox accepts records again");
                            }
                        }
                        Err(e) => {
                            if !failing {
                                failing = true;
                                error!(
                                    "the outbox cannot store records ({e}); they are lost until \
                                     it can again (polling goes on)"
                                );
                            }
                        }
                    }
                }
                on_stats(&o.stats());
            }
            _ = tick.tick(), if dirty => {
                dirty = false;
                if let Err(e) = handle.commit().await {
                    error!("the outbox could not sync its records to disk: {e}");
                }
                on_stats(&handle.stats());
            }
        }
    }
    if let Err(e) = handle.commit().await {
        error!("the outbox could not sync its last records to disk: {e}");
    }
    on_stats(&handle.stats());
}
