//! Tag and plate readers: RFID readers and plate cameras at the gate, the
//! lift lobby and the stairwell, turned into pseudonymised `sighting`
//! events.
//!
//! Two families feed one path. [`mqtt`] subscribes to readers that publish
//! JSON on a broker on the building's LAN (not the uplink broker) and maps
//! their fields declaratively ([`mapping`]); [`serial`] reads an RFID
//! reader's line protocol ([`line`]) from a serial port. Both hand a
//! [`RawSighting`] to the reader's [`SightingSink`], which replaces the
//! identity by its keyed pseudonym ([`crate::pseudonym`]) *before* anything
//! is logged, queued for the outbox or published, drops repeats of the same
//! tag within a short window (UHF readers report a tag many times a second),
//! fires the edge rules ([`crate::edge`]) and queues the event.
//!
//! Nothing a reader sends can stop the gateway: a malformed message is
//! counted and logged with the reader, the topic or port and line, and the
//! field that was wrong — never the identity.

pub mod line;
pub mod mapping;
pub mod mqtt;
pub mod serial;

use crate::devices::DeviceStamp;
use crate::edge::Edge;
use crate::outbox::{Record, RecordSender};
use crate::pseudonym::{IdentityKind, SiteKey, MAX_IDENTITY_BYTES};
use crate::status::Health;
use gridwatch_telemetry::{Clock, DeviceId, EventKind, Timestamp};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Window in which the same identity at the same reader is reported once,
/// when the config names none.
pub const DEFAULT_REPEAT_WINDOW_MS: u64 = 10_000;

/// Where a reader watches: the closed set the detectors know
/// (docs/telemetry.md). `lift_lobby`, `lift_car` and `stairwell` are indoors:
/// an e-bike seen there is an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// The site's gate or entrance.
    Gate,
    /// In front of a lift.
    LiftLobby,
    /// Inside a lift.
    LiftCar,
    /// A stairwell.
    Stairwell,
    /// The charging yard.
    ChargingArea,
}

impl Location {
    /// The word on the wire (`lift_lobby`).
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Gate => "gate",
            Location::LiftLobby => "lift_lobby",
            Location::LiftCar => "lift_car",
            Location::Stairwell => "stairwell",
            Location::ChargingArea => "charging_area",
        }
    }
}

/// Direction of travel, where a reader knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Entering (towards the building).
    In,
    /// Leaving.
    Out,
}

impl Direction {
    /// `in` or `out`, in any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "in" => Some(Direction::In),
            "out" => Some(Direction::Out),
            _ => None,
        }
    }

    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// What a reader reported, before pseudonymisation. Its `Debug` hides the
/// identity so that it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct RawSighting {
    /// The tag id or plate as the reader sent it.
    pub identity: String,
    /// Direction, if the message carried one.
    pub direction: Option<Direction>,
    /// When the reader saw it, if the message carried a time.
    pub ts: Option<Timestamp>,
}

impl std::fmt::Debug for RawSighting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSighting")
            .field("identity", &"<hidden>")
            .field("direction", &self.direction)
            .field("ts", &self.ts)
            .finish()
    }
}

/// Refuses what cannot be a tag id or a plate: empty, too long, or with
/// control characters (a reader sending a binary blob).
pub fn check_identity(raw: &str) -> Result<(), &'static str> {
    if raw.trim().is_empty() {
        return Err("is empty");
    }
    if raw.len() > MAX_IDENTITY_BYTES {
        return Err("is longer than 64 bytes");
    }
    if raw.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    Ok(())
}

/// One `[[readers]]` entry, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ReaderConfig {
    /// Unique among the gateway's devices and readers; one topic level.
    pub id: DeviceId,
    /// Where it watches.
    pub location: Location,
    /// Tags or plates: decides the normalisation before hashing.
    pub identity_kind: IdentityKind,
    /// A fixed direction (an entry-only gate), used when messages carry none.
    pub direction: Option<Direction>,
    /// The same identity at this reader within this window is reported once.
    pub repeat_window_ms: u64,
    /// No message (or heartbeat line) for this long: the reader is reported
    /// offline (`None`: never; a quiet gate at night is normal for readers
    /// that send no heartbeat).
    pub offline_after_silence_s: Option<u64>,
    /// Building, when not the gateway's.
    pub building: Option<String>,
    /// How its sightings arrive.
    pub source: ReaderSource,
}

/// How a reader's sightings arrive.
#[derive(Debug, Clone, PartialEq)]
pub enum ReaderSource {
    /// JSON messages on the local broker.
    Mqtt {
        /// Topic filter the reader publishes on (wildcards allowed).
        topic: String,
        /// How its fields map to a sighting.
        mapping: mapping::JsonMapping,
    },
    /// Lines of the [`line`] protocol on a serial port.
    Serial {
        /// The port (`/dev/ttyUSB0`).
        port: PathBuf,
        /// Line speed.
        baud: u32,
    },
}

impl ReaderConfig {
    /// `mqtt topic cam/gate-1` or `serial /dev/ttyUSB0 at 9600 baud`.
    pub fn describe(&self) -> String {
        match &self.source {
            ReaderSource::Mqtt { topic, .. } => format!("mqtt topic {topic}"),
            ReaderSource::Serial { port, baud } => {
                format!("serial {} at {baud} baud", port.display())
            }
        }
    }
}

/// Counters of one reader, for tests and the operator.
#[derive(Debug, Default)]
pub struct ReaderStats {
    /// Sightings queued for the uplinks.
    pub sightings: AtomicU64,
    /// Repeats dropped within the repeat window.
    pub repeats: AtomicU64,
    /// Messages or lines that did not map to a sighting.
    pub malformed: AtomicU64,
}

/// The edge rules shared by every reader (one set of outputs per gateway).
pub type SharedEdge = Arc<Mutex<Edge>>;

/// Turns one reader's raw sightings into queued, pseudonymised events.
pub struct SightingSink {
    reader: Arc<ReaderConfig>,
    stamp: DeviceStamp,
    key: Arc<SiteKey>,
    clock: Arc<dyn Clock>,
    sender: RecordSender,
    edge: Option<SharedEdge>,
    stats: Arc<ReaderStats>,
    last_seen: HashMap<String, i64>,
    health: Option<Arc<Health>>,
    online: bool,
    /// When the reader was last heard (ms), and whether it was reported
    /// silent since.
    last_heard_ms: Option<i64>,
    silent: bool,
}

/// Distinct identities remembered for the repeat window at most; more are
/// pruned (a reader cannot see thousands of tags within seconds).
const MAX_REMEMBERED: usize = 4096;

impl SightingSink {
    /// A sink for `reader`, stamping with `stamp`.
    pub fn new(
        reader: Arc<ReaderConfig>,
        stamp: DeviceStamp,
        key: Arc<SiteKey>,
        clock: Arc<dyn Clock>,
        sender: RecordSender,
        edge: Option<SharedEdge>,
    ) -> Self {
        Self {
            reader,
            stamp,
            key,
            clock,
            sender,
            edge,
            stats: Arc::default(),
            last_seen: HashMap::new(),
            health: None,
            online: false,
            last_heard_ms: None,
            silent: false,
        }
    }

    /// Counts the reader in the gateway's status (`devices_online`) while
    /// it is reachable.
    pub fn with_health(mut self, health: Arc<Health>) -> Self {
        self.health = Some(health);
        self
    }

    /// Marks the reader reachable or not (its port is open, or the local
    /// broker is connected); counts it in and out of the status once per
    /// change.
    pub fn set_online(&mut self, online: bool) {
        if online == self.online {
            return;
        }
        self.online = online;
        if let Some(h) = &self.health {
            if online {
                h.device_up();
            } else {
                h.device_down();
            }
        }
    }

    /// The reader's counters.
    pub fn stats(&self) -> Arc<ReaderStats> {
        self.stats.clone()
    }

    /// The reader's config.
    pub fn reader(&self) -> &ReaderConfig {
        &self.reader
    }

    /// Pseudonymises `raw`, fires the edge rules and queues the event (and
    /// a `rule_fired` event per rule). Returns false once the gateway is
    /// stopping and the queue is closed.
    pub async fn sighting(&mut self, raw: RawSighting, shutdown: &CancellationToken) -> bool {
        let identity = self.key.pseudonym(self.reader.identity_kind, &raw.identity);
        drop(raw.identity);
        let now = self.clock.now();
        if self.is_repeat(&identity, now.millis()) {
            self.stats.repeats.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        let location = self.reader.location.as_str();
        let event = self.stamp.event(
            raw.ts.unwrap_or(now),
            EventKind::Sighting {
                location: location.to_owned(),
                identity,
                direction: raw
                    .direction
                    .or(self.reader.direction)
                    .map(|d| d.as_str().to_owned()),
            },
        );
        self.stats.sightings.fetch_add(1, Ordering::Relaxed);
        if !self.sender.send(Record::Event(event), shutdown).await {
            return false;
        }
        let fired = self.fire_edge(location, now);
        for (rule, outputs) in fired {
            info!(
                reader = %self.reader.id,
                "edge rule {rule} fired on a sighting at {location}: switched on {outputs}"
            );
            let event = self.stamp.event(
                now,
                EventKind::RuleFired {
                    rule,
                    action: format!("switched on {outputs}"),
                },
            );
            if !self.sender.send(Record::Event(event), shutdown).await {
                return false;
            }
        }
        true
    }

    /// Queues an event about the reader itself (offline, online).
    pub async fn device_event(&mut self, kind: EventKind, shutdown: &CancellationToken) -> bool {
        let event = self.stamp.event(self.clock.now(), kind);
        self.sender.send(Record::Event(event), shutdown).await
    }

    /// Notes that the reader sent something (a read, a heartbeat, even a
    /// malformed message: it is alive). A reader reported silent is
    /// reported online again.
    pub async fn heard(&mut self, shutdown: &CancellationToken) -> bool {
        self.last_heard_ms = Some(self.clock.now().millis());
        if self.silent {
            self.silent = false;
            self.set_online(true);
            info!(reader = %self.reader.id, "reader {} is sending again", self.reader.id);
            return self.device_event(EventKind::DeviceOnline, shutdown).await;
        }
        true
    }

    /// The reader's port or broker connection (re)opened: silence counts
    /// from the next check, not from before the outage.
    pub fn listening(&mut self) {
        self.last_heard_ms = None;
    }

    /// Reports the reader offline once when it has not been heard for
    /// `offline_after_silence_s` (counting from the first check when it
    /// was never heard). Call it every second or so.
    pub async fn check_silence(&mut self, shutdown: &CancellationToken) -> bool {
        let Some(limit_s) = self.reader.offline_after_silence_s else {
            return true;
        };
        let now = self.clock.now().millis();
        let last = *self.last_heard_ms.get_or_insert(now);
        let limit_ms = i64::try_from(limit_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        if self.silent || now.saturating_sub(last) < limit_ms {
            return true;
        }
        self.silent = true;
        self.set_online(false);
        let reason = format!("nothing heard for {limit_s} s");
        warn!(reader = %self.reader.id, "reader {} is offline: {reason}", self.reader.id);
        self.device_event(EventKind::DeviceOffline { reason }, shutdown)
            .await
    }

    /// Counts and logs a message that did not map: `at` says where it came
    /// from (`topic cam/gate-1`, `/dev/ttyUSB0 line 17`), `why` names the
    /// field. Logs the first ten, then every hundredth, so a broken reader
    /// cannot flood the log.
    pub fn malformed(&self, at: &str, why: &dyn std::fmt::Display) {
        let n = self.stats.malformed.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= 10 || n % 100 == 0 {
            warn!(
                reader = %self.reader.id,
                "reader {} sent something that is not a sighting ({at}): {why}; ignored \
                 ({n} so far)",
                self.reader.id
            );
        }
    }

    fn is_repeat(&mut self, identity: &str, now_ms: i64) -> bool {
        let window = i64::try_from(self.reader.repeat_window_ms).unwrap_or(i64::MAX);
        if let Some(&last) = self.last_seen.get(identity) {
            if now_ms.saturating_sub(last) < window && now_ms >= last {
                return true;
            }
        }
        if self.last_seen.len() >= MAX_REMEMBERED {
            self.last_seen
                .retain(|_, &mut t| now_ms.saturating_sub(t) < window);
            if self.last_seen.len() >= MAX_REMEMBERED {
                self.last_seen.clear();
            }
        }
        self.last_seen.insert(identity.to_owned(), now_ms);
        false
    }

    fn fire_edge(&self, location: &str, now: Timestamp) -> Vec<(String, String)> {
        let Some(edge) = &self.edge else {
            return Vec::new();
        };
        let now_ms = u64::try_from(now.millis()).unwrap_or(0);
        let mut edge = match edge.lock() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        match edge.on_sighting(location, now_ms) {
            Ok(fired) => fired,
            Err(e) => {
                warn!(reader = %self.reader.id, "edge rules could not switch: {e}");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests;
