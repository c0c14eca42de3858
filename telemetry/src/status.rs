//! The gateway's own health, published retained so a dashboard that connects
//! later still sees it; the broker publishes the offline variant as the last
//! will when the gateway disappears.

use crate::ids::{DeviceId, GatewayId, SiteId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Whether a gateway is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayState {
    /// Connected and polling.
    Online,
    /// Gone: shut down cleanly, or the broker's last will after a lost link.
    Offline,
}

/// A gateway's status message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Payload schema version ([`crate::SCHEMA_VERSION`]).
    #[serde(default = "crate::codec::default_schema")]
    pub schema: u32,
    /// When the status was composed (for a last will: when the gateway connected).
    pub ts: Timestamp,
    /// The gateway.
    pub gateway: GatewayId,
    /// Its site.
    #[serde(default)]
    pub site: SiteId,
    /// Up or gone.
    pub state: GatewayState,
    /// Software version of the gateway.
    #[serde(default)]
    pub version: String,
    /// Devices configured.
    #[serde(default)]
    pub devices_total: u32,
    /// Devices answering at the last poll.
    #[serde(default)]
    pub devices_online: u32,
    /// Records in the gateway's outbox not yet delivered to every uplink.
    #[serde(default)]
    pub outbox_pending: u64,
    /// Records the outbox dropped since the gateway started, because it hit
    /// its size or age cap (oldest first) or could not write them (a full
    /// disk, see `outbox_full_dropped`): readings that will never arrive.
    #[serde(default)]
    pub outbox_dropped: u64,
    /// The part of `outbox_dropped` lost because the disk was full and the
    /// records waiting in memory filled what is set aside for them. Absent
    /// in older payloads.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub outbox_full_dropped: u64,
    /// Seqs the gateway reserved before its last restart but never used, per
    /// device: no reading or event carries them, so a consumer that misses
    /// them has lost nothing. Absent when none were skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seq_gaps: Vec<SeqGap>,
    /// Whether the gateway trusts its clock (past the 2024 floor and, with
    /// `require_clock_sync`, synchronised by NTP); absent from gateways
    /// that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_synced: Option<bool>,
    /// Which config the gateway runs and how its last remote config went,
    /// for gateways managed from afar (`[remote]`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigStatus>,
}

/// The config a gateway runs, as told in its status: an operator who pushed
/// a signed config sees here whether it is on trial, kept, rolled back or
/// refused, even when the ack on `cmd-ack/_config` was missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigStatus {
    /// Version of the config running now (0: the installer's local file).
    pub version: u64,
    /// How the last change went.
    pub state: ConfigState,
    /// Why, when the last pushed config was rolled back or refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The closed set of outcomes of a remote config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigState {
    /// Running the config on the gateway's disk; nothing pushed yet.
    Local,
    /// A pushed config runs and is watched until its grace period ends.
    Trial,
    /// The pushed config survived its grace period and is now current.
    Applied,
    /// The pushed config failed in its grace period; the previous one runs again.
    RolledBack,
    /// The pushed config was not applied (signature, version or check).
    Refused,
}

/// A range of one device's seqs that will never be used (inclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqGap {
    /// The device.
    pub device: DeviceId,
    /// First seq skipped.
    pub from: u64,
    /// Last seq skipped.
    pub to: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    #[test]
    fn an_older_status_without_gaps_or_full_drops_still_decodes() {
        let old = br#"{"schema":1,"ts":5,"gateway":"gw","state":"online","outbox_dropped":3}"#;
        let s: Status = codec::decode(old).unwrap();
        assert_eq!((s.outbox_dropped, s.outbox_full_dropped), (3, 0));
        assert!(s.seq_gaps.is_empty());
    }

    #[test]
    fn seq_gaps_round_trip_and_are_left_out_when_empty() {
        let mut s: Status = codec::decode(br#"{"ts":5,"gateway":"gw","state":"online"}"#).unwrap();
        let bare = String::from_utf8(codec::encode(&s).unwrap()).unwrap();
        assert!(!bare.contains("seq_gaps") && !bare.contains("outbox_full_dropped"));
        s.seq_gaps = vec![SeqGap {
            device: "pile-1".into(),
            from: 10,
            to: 4105,
        }];
        s.outbox_full_dropped = 2;
        let bytes = codec::encode(&s).unwrap();
        assert_eq!(codec::decode::<Status>(&bytes).unwrap(), s);
    }
}
