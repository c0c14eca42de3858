//! Something that happened: a sighting, a charging session starting or ending,
//! a device going offline, an edge rule firing.

use crate::ids::{DeviceId, GatewayId, SiteId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// An event from a gateway. The `type` field on the wire names the variant of
/// [`EventKind`]; its fields sit beside the common ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Payload schema version ([`crate::SCHEMA_VERSION`]).
    #[serde(default = "crate::codec::default_schema")]
    pub schema: u32,
    /// When it happened (UTC ms).
    pub ts: Timestamp,
    /// The gateway that saw it.
    pub gateway: GatewayId,
    /// The site the gateway serves.
    #[serde(default)]
    pub site: SiteId,
    /// The device it concerns.
    pub device: DeviceId,
    /// Per-device sequence number, shared with the device's readings.
    pub seq: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The closed set of things a gateway reports as events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The device stopped answering; the gateway keeps probing it.
    DeviceOffline {
        /// Why, in words ("no answer after 3 tries", "connection refused").
        reason: String,
    },
    /// The device answers again after being offline.
    DeviceOnline,
    /// The device answered with an error (e.g. a Modbus exception).
    DeviceError {
        /// What went wrong, naming the register or request.
        message: String,
    },
    /// A charging session began on a socket.
    SessionStarted {
        /// Socket number (1-based).
        socket: u16,
        /// The pseudonymised tag or card that started the session, when the
        /// pile has a card reader: the per-owner history behind the
        /// abnormal-session-energy rule needs it. Absent in older payloads.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<String>,
    },
    /// A charging session ended on a socket.
    SessionEnded {
        /// Socket number (1-based).
        socket: u16,
        /// Energy delivered in the session.
        energy_wh: f64,
        /// Session length.
        duration_s: u64,
        /// Why it ended ("full", "unplugged", "fault", …).
        reason: String,
    },
    /// An e-bike tag or plate was seen by a reader.
    Sighting {
        /// Where the reader is (gate, lift_lobby, stairwell, …).
        location: String,
        /// The pseudonymised identity (keyed HMAC); never the raw tag or plate.
        identity: String,
        /// Direction of travel where the reader knows it (`in`, `out`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        direction: Option<String>,
    },
    /// An edge rule on the gateway switched an output.
    RuleFired {
        /// The rule's name from the gateway config.
        rule: String,
        /// What it did, in words.
        action: String,
    },
}
