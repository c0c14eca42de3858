//! The queue from devices and readers to the outbox writer, and the
//! [`Record`] that travels on it: one reading or event, before it is stored.
//!
//! Pollers hand [`Record`]s through one bounded queue ([`QUEUE_CAPACITY`]
//! records) to the outbox writer ([`super::writer`]), which appends them to
//! the durable outbox. The queue only absorbs bursts: when it is full (the
//! disk is slower than the pollers) a poller **waits** and logs that once per
//! episode, rather than dropping a reading. An outage of the broker or
//! InfluxDB never fills it: the outbox holds what the uplinks have not
//! delivered, up to its cap.

use gridwatch_telemetry::codec::{self, CodecError};
use gridwatch_telemetry::{DeviceId, Event, Reading};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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
    /// Measured values whose `values` object is already JSON (a Modbus
    /// block decoded without a map, the hot path): `reading.values` is
    /// empty and stands for `values_json`. Stored and published exactly as
    /// the [`Record::Reading`] with those values would be.
    Prepared {
        /// The reading, with no values.
        reading: Reading,
        /// `{"name":value,…}` in name order, as the codec writes a map.
        values_json: Vec<u8>,
    },
}

/// Tags of a record's bytes in the outbox.
const TAG_READING: u8 = b'R';
const TAG_EVENT: u8 = b'E';

/// Why stored bytes are not a record.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The framing around the JSON is wrong.
    #[error("stored record is malformed: {0}")]
    Malformed(&'static str),
    /// The JSON is not a valid message.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl Record {
    /// The device it is about.
    pub fn device(&self) -> &DeviceId {
        match self {
            Record::Reading(r) | Record::Prepared { reading: r, .. } => &r.device,
            Record::Event(e) => &e.device,
        }
    }

    /// Its per-device sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            Record::Reading(r) | Record::Prepared { reading: r, .. } => r.seq,
            Record::Event(e) => e.seq,
        }
    }

    /// The bytes stored in the outbox: a tag, the device id (so an uplink
    /// can pick the topic without parsing JSON) and the JSON payload that
    /// is published as it is.
    pub fn to_payload(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        self.write_payload(&mut out)?;
        Ok(out)
    }

    /// Appends [`Self::to_payload`]'s bytes to `out`, so the writer can
    /// reuse one buffer for every record.
    pub fn write_payload(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let tag = match self {
            Record::Reading(_) | Record::Prepared { .. } => TAG_READING,
            Record::Event(_) => TAG_EVENT,
        };
        let device = self.device().as_str().as_bytes();
        let start = out.len();
        out.push(tag);
        // Device ids are at most 64 bytes (validated in the config).
        out.push(u8::try_from(device.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&device[..device.len().min(255)]);
        // The JSON goes straight into `out` (as codec::encode makes it, with
        // its checks), with no buffer of its own to allocate and copy.
        let written = match self {
            Record::Reading(r) => encode_into(r, out),
            Record::Event(e) => encode_into(e, out),
            Record::Prepared {
                reading,
                values_json,
            } => encode_into(reading, out).and_then(|()| {
                // `values` is the reading's last field: `…,"values":{}}`.
                const EMPTY_TAIL: &[u8] = b"\"values\":{}}";
                if !reading.values.is_empty() || !out.ends_with(EMPTY_TAIL) {
                    return Err(CodecError::Json {
                        what: "reading",
                        source: serde::ser::Error::custom(
                            "a prepared reading must have its values only as JSON",
                        ),
                    });
                }
                out.truncate(out.len() - 3);
                out.extend_from_slice(values_json);
                out.push(b'}');
                Ok(())
            }),
        };
        if written.is_err() {
            out.truncate(start);
        }
        written
    }

    /// Decodes the bytes [`Self::to_payload`] made.
    pub fn from_payload(bytes: &[u8]) -> Result<Self, PayloadError> {
        let stored = StoredRecord::parse(bytes)?;
        Ok(match stored.is_event {
            false => Record::Reading(codec::decode(stored.json)?),
            true => Record::Event(codec::decode(stored.json)?),
        })
    }
}

/// [`codec::encode`] appending to `out`.
fn encode_into<M: codec::Message>(msg: &M, out: &mut Vec<u8>) -> Result<(), CodecError> {
    msg.check()?;
    serde_json::to_writer(&mut *out, msg).map_err(|source| CodecError::Json {
        what: M::NAME,
        source,
    })
}

/// A stored record's parts, without parsing its JSON.
#[derive(Debug, Clone, Copy)]
pub struct StoredRecord<'a> {
    /// An event (else a reading).
    pub is_event: bool,
    /// The device id.
    pub device: &'a str,
    /// The JSON message, as published.
    pub json: &'a [u8],
}

impl<'a> StoredRecord<'a> {
    /// Splits stored bytes into their parts.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PayloadError> {
        let (&tag, rest) = bytes
            .split_first()
            .ok_or(PayloadError::Malformed("empty"))?;
        let is_event = match tag {
            TAG_READING => false,
            TAG_EVENT => true,
            _ => return Err(PayloadError::Malformed("unknown tag")),
        };
        let (&len, rest) = rest
            .split_first()
            .ok_or(PayloadError::Malformed("no device"))?;
        let len = usize::from(len);
        if rest.len() < len {
            return Err(PayloadError::Malformed("device id cut short"));
        }
        let device = std::str::from_utf8(&rest[..len])
            .map_err(|_| PayloadError::Malformed("device id is not UTF-8"))?;
        Ok(Self {
            is_event,
            device,
            json: &rest[len..],
        })
    }

    /// The record's `seq`, read without decoding the rest of its JSON; the
    /// outbox learns on open which seqs a crash left on disk this way.
    pub fn seq(&self) -> Option<u64> {
        #[derive(serde::Deserialize)]
        struct Seq {
            seq: u64,
        }
        serde_json::from_slice::<Seq>(self.json).ok().map(|s| s.seq)
    }
}

/// The sending side of the queue, for one poller: it waits when the queue
/// is full and says so once.
#[derive(Debug, Clone)]
pub struct RecordSender {
    tx: mpsc::Sender<Record>,
    waiting_logged: bool,
    polls: PollsInFlight,
}

/// How many polls have started and not yet queued all their records,
/// counted by the pollers that share one queue. The outbox writer stops
/// gathering a batch as soon as none is left ([`super::writer::GATHER`]):
/// then nothing more is coming soon, and waiting longer only delays.
#[derive(Debug, Clone, Default)]
pub struct PollsInFlight(Arc<AtomicUsize>);

impl PollsInFlight {
    /// Whether no poll is between its start and its last record queued.
    pub fn none(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}

/// The queue from pollers to an uplink.
pub fn queue() -> (RecordSender, mpsc::Receiver<Record>) {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    (
        RecordSender {
            tx,
            waiting_logged: false,
            polls: PollsInFlight::default(),
        },
        rx,
    )
}

impl RecordSender {
    /// The count of polls in flight of every sender cloned from this one.
    pub fn polls_in_flight(&self) -> PollsInFlight {
        self.polls.clone()
    }

    /// A poll starts: its records are on their way.
    pub fn poll_started(&self) {
        self.polls.0.fetch_add(1, Ordering::Relaxed);
    }

    /// A poll that [`Self::poll_started`] has queued all its records (or
    /// has none).
    pub fn poll_finished(&self) {
        // Never below zero, whatever a caller does.
        let _ = self
            .polls
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Queues `record`, waiting for room if needed. Returns false if the
    /// outbox writer is gone or `shutdown` fired while waiting (the record is lost
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
                "the outbox queue is full ({QUEUE_CAPACITY} records); polling pauses \
                 until the outbox catches up, so no reading is dropped"
            );
        }
        tokio::select! {
            sent = self.tx.send(record) => sent.is_ok(),
            _ = shutdown.cancelled() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_in_flight_are_counted_across_senders_and_never_below_zero() {
        let (a, _rx) = queue();
        let b = a.clone();
        let polls = a.polls_in_flight();
        assert!(polls.none());
        a.poll_started();
        b.poll_started();
        a.poll_finished();
        assert!(!polls.none(), "b's poll is still in flight");
        b.poll_finished();
        assert!(polls.none());
        b.poll_finished();
        a.poll_started();
        assert!(!polls.none(), "an extra finish did not go below zero");
    }
}
