//! Uplinks: where readings and events leave the building.
//!
//! Pollers hand [`Record`]s to the uplink through one bounded queue
//! ([`QUEUE_CAPACITY`] records). When it is full (the broker has been
//! unreachable long enough to fill rumqttc's own queue behind it) a poller
//! **waits**: it stops polling until there is room, and logs that once per
//! episode. Waiting rather than dropping keeps every reading that was taken,
//! in order; the cost is that polls are skipped meanwhile, which the readings'
//! timestamps show. The durable outbox (a later issue) will replace this
//! in-memory queue as the buffer that survives hours of outage and restarts.

pub mod mqtt;

use gridwatch_telemetry::{Event, Reading};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

/// Records the queue from pollers to the uplink holds. A 12-socket pile
/// polled every second makes 13 records a second, so this is over a minute
/// of one pile's data, on top of rumqttc's own queue.
pub const QUEUE_CAPACITY: usize = 1024;

/// What travels from devices to uplinks.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// Measured values.
    Reading(Reading),
    /// Something that happened.
    Event(Event),
}

/// The sending side of the queue, for one poller: it waits when the queue
/// is full and says so once.
#[derive(Debug, Clone)]
pub struct RecordSender {
    tx: mpsc::Sender<Record>,
    waiting_logged: bool,
}

/// The queue from pollers to an uplink.
pub fn queue() -> (RecordSender, mpsc::Receiver<Record>) {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    (
        RecordSender {
            tx,
            waiting_logged: false,
        },
        rx,
    )
}

impl RecordSender {
    /// Queues `record`, waiting for room if needed. Returns false if the
    /// uplink is gone or `shutdown` fired while waiting (the record is lost
    /// then, as the gateway is stopping).
    pub async fn send(&mut self, record: Record, shutdown: &CancellationToken) -> bool {
        let record = match self.tx.try_send(record) {
            Ok(()) => {
                self.waiting_logged = false;
                return true;
            }
            Err(TrySendError::Closed(_)) => return false,
            Err(TrySendError::Full(record)) => record,
        };
        if !self.waiting_logged {
            self.waiting_logged = true;
            tracing::warn!(
                "the uplink queue is full ({QUEUE_CAPACITY} records); polling pauses \
                 until the MQTT uplink catches up, so no reading is dropped"
            );
        }
        tokio::select! {
            sent = self.tx.send(record) => sent.is_ok(),
            _ = shutdown.cancelled() => false,
        }
    }
}
