//! Pile offline: the root cause behind a pile's silent sockets.
//!
//! A gateway publishes `device_offline` when a device stops answering and
//! `device_online` when it answers again. For a charging pile that is the
//! one alert worth sending: its sockets' own rules can no longer see
//! anything, and `[[alerts.inhibit]]` with `source_rule = "pile_offline"`,
//! `equal = "device"` keeps their alerts quiet while the case is active.
//!
//! Events carry no device kind, so the detector learns which devices are
//! piles from their readings (`kinds`, by default charging sockets and
//! piles). A device never seen in a reading since analytics started is not
//! judged (logged at debug): naming a meter's outage `pile_offline` would
//! send the wrong people. The entity is `site/gateway/device`, the pile
//! part of the socket entities `site/gateway/device#socket`, so the inhibit
//! scope `device` covers every socket of that pile and nothing else.
//!
//! Per pile, event time: online → offline raises once (major) with when,
//! why and when the pile last reported; repeated offline events fold into
//! it; `device_online` ends the condition (logged: the case stays for a
//! person to close, like every other data clear). Events older than the
//! newest one seen for the pile are ignored.

use super::{evidence_of, Finding};
use crate::toml_file::FieldError;
use gridwatch_telemetry::{DeviceKind, Event, EventKind, Reading, Severity, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Rule: a charging pile's gateway reports it offline.
pub const RULE: &str = "pile_offline";

/// The `[detect.pile_offline]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PileOfflineConfig {
    /// Turns the detector off.
    pub enabled: bool,
    /// Device kinds whose readings mark a device as a pile.
    pub kinds: Vec<DeviceKind>,
    /// At most this many piles are tracked; beyond it new ones are ignored
    /// (logged), so a flood of bogus device ids cannot exhaust memory.
    pub max_piles: usize,
}

impl Default for PileOfflineConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            kinds: vec![DeviceKind::ChargingSocket, DeviceKind::ChargingPile],
            max_piles: 100_000,
        }
    }
}

impl PileOfflineConfig {
    /// Refuses a detector that could never fire while enabled.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.max_piles == 0 {
            return Err(FieldError::new("max_piles", "is 0; it must be at least 1"));
        }
        if self.enabled && self.kinds.is_empty() {
            return Err(FieldError::new(
                "kinds",
                "is empty; name the device kinds of piles (e.g. \"charging_socket\") or set enabled = false",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Pile {
    /// Newest reading of the pile.
    last_seen: Option<Timestamp>,
    /// Newest availability event applied.
    last_event: Option<Timestamp>,
    /// Since when it is offline, if it is.
    offline_since: Option<Timestamp>,
}

/// The detector: one small record per pile.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PileOffline {
    config: PileOfflineConfig,
    piles: HashMap<String, Pile>,
}

impl PileOffline {
    /// A detector with no piles known yet.
    pub fn new(config: &PileOfflineConfig) -> Self {
        Self {
            config: config.clone(),
            piles: HashMap::new(),
        }
    }

    /// Learns from a reading that its device is a pile and when it last
    /// reported. Raises nothing.
    pub fn observe(&mut self, reading: &Reading) {
        if !self.config.enabled || !self.config.kinds.contains(&reading.kind) {
            return;
        }
        let key = format!("{}/{}/{}", reading.site, reading.gateway, reading.device);
        if !self.piles.contains_key(&key) && self.piles.len() >= self.config.max_piles {
            tracing::warn!(
                entity = %key,
                "pile_offline tracks at most {} piles (max_piles); {key} is not watched",
                self.config.max_piles
            );
            return;
        }
        let pile = self.piles.entry(key).or_default();
        if pile.last_seen.is_none_or(|t| reading.ts > t) {
            pile.last_seen = Some(reading.ts);
        }
    }

    /// Applies an availability event; returns the alert on a pile going
    /// offline, nothing otherwise.
    pub fn observe_event(&mut self, event: &Event) -> Option<Finding> {
        if !self.config.enabled {
            return None;
        }
        let offline = match &event.kind {
            EventKind::DeviceOffline { reason } => Some(reason.as_str()),
            EventKind::DeviceOnline => None,
            _ => return None,
        };
        let entity = format!("{}/{}/{}", event.site, event.gateway, event.device);
        let Some(pile) = self.piles.get_mut(&entity) else {
            tracing::debug!(entity = %entity, "availability event for a device not known as a pile: not judged");
            return None;
        };
        if pile.last_event.is_some_and(|t| event.ts < t) {
            return None;
        }
        pile.last_event = Some(event.ts);
        match (offline, pile.offline_since) {
            (Some(reason), None) => {
                pile.offline_since = Some(event.ts);
                Some(finding(&entity, event, reason, pile.last_seen))
            }
            (None, Some(since)) => {
                pile.offline_since = None;
                tracing::info!(
                    rule = RULE,
                    entity = %entity,
                    "{RULE} on {entity} cleared at {} (offline since {since}); the alert stays open until someone closes it",
                    event.ts
                );
                None
            }
            _ => None,
        }
    }

    /// Piles tracked and the bytes of their state.
    pub fn memory(&self) -> (usize, usize) {
        let bytes = self
            .piles
            .keys()
            .map(|k| k.capacity() + std::mem::size_of::<(String, Pile)>())
            .sum();
        (self.piles.len(), bytes)
    }
}

fn finding(entity: &str, event: &Event, reason: &str, last_seen: Option<Timestamp>) -> Finding {
    let since = event.ts;
    let from = last_seen.unwrap_or(since).min(since);
    let silent_s = (since.millis() - from.millis()) as f64 / 1000.0;
    let last = match last_seen {
        Some(t) => format!("it last reported at {t} ({silent_s:.0} s before)"),
        None => "it has not reported since analytics started".to_owned(),
    };
    let mut values = vec![("offline_since_ms", since.millis() as f64)];
    if let Some(t) = last_seen {
        values.push(("last_seen_ms", t.millis() as f64));
        values.push(("silent_s", silent_s));
    }
    Finding {
        id: format!("{RULE}:{entity}:{}", since.millis()),
        rule: RULE,
        entity: entity.to_owned(),
        site: event.site.to_string(),
        severity: Severity::Major,
        ts: since,
        title: format!("Pile {} at {} offline: {reason}", event.device, event.site),
        summary: format!(
            "Gateway {} reports pile {} at {} offline since {since} ({reason}); {last}. \
             Its sockets are not watched for overcurrent or overheating until it is back: \
             check the pile's power and RS-485 line.",
            event.gateway, event.device, event.site
        ),
        evidence: evidence_of(&values, &[], from, since),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(device: &str, kind: DeviceKind, s: i64) -> Reading {
        let mut r = Reading::new(Timestamp(s * 1000), "gw-1", device, kind, s as u64);
        r.site = "yard-a".into();
        if kind == DeviceKind::ChargingSocket {
            r.socket = Some(2);
        }
        r
    }

    fn event(device: &str, s: i64, kind: EventKind) -> Event {
        Event {
            schema: 1,
            ts: Timestamp(s * 1000),
            gateway: "gw-1".into(),
            site: "yard-a".into(),
            device: device.into(),
            seq: s as u64,
            kind,
        }
    }

    fn off(device: &str, s: i64) -> Event {
        event(
            device,
            s,
            EventKind::DeviceOffline {
                reason: "no answer after 3 tries".into(),
            },
        )
    }

    fn on(device: &str, s: i64) -> Event {
        event(device, s, EventKind::DeviceOnline)
    }

    #[test]
    fn offline_raises_once_with_evidence_and_online_ends_the_episode() {
        let mut d = PileOffline::new(&PileOfflineConfig::default());
        d.observe(&reading("pile-1", DeviceKind::ChargingSocket, 100));
        let f = d.observe_event(&off("pile-1", 130)).expect("raised");
        assert_eq!(f.rule, RULE);
        assert_eq!(
            f.entity, "yard-a/gw-1/pile-1",
            "the pile part of its sockets' entities"
        );
        assert_eq!(f.id, "pile_offline:yard-a/gw-1/pile-1:130000");
        assert_eq!(f.severity, Severity::Major);
        assert_eq!(f.evidence.values["last_seen_ms"], 100_000.0);
        assert_eq!(f.evidence.values["offline_since_ms"], 130_000.0);
        assert_eq!(f.evidence.values["silent_s"], 30.0);
        assert_eq!(
            (f.evidence.window_start, f.evidence.window_end),
            (Timestamp(100_000), Timestamp(130_000))
        );
        assert!(
            f.summary.contains("no answer after 3 tries"),
            "{}",
            f.summary
        );

        // Repeats fold into the open episode.
        assert!(d.observe_event(&off("pile-1", 160)).is_none());
        assert!(d.observe_event(&off("pile-1", 190)).is_none());
        // Back online: the episode ends; a later outage is a new one.
        assert!(d.observe_event(&on("pile-1", 200)).is_none());
        assert!(d.observe_event(&on("pile-1", 210)).is_none());
        let again = d.observe_event(&off("pile-1", 300)).expect("new episode");
        assert_eq!(again.id, "pile_offline:yard-a/gw-1/pile-1:300000");
    }

    #[test]
    fn late_events_do_not_undo_newer_ones() {
        let mut d = PileOffline::new(&PileOfflineConfig::default());
        d.observe(&reading("pile-1", DeviceKind::ChargingPile, 0));
        assert!(d.observe_event(&off("pile-1", 50)).is_some());
        // An online from before the outage arrives late: still offline.
        assert!(d.observe_event(&on("pile-1", 40)).is_none());
        assert!(
            d.observe_event(&off("pile-1", 60)).is_none(),
            "still the same episode"
        );
    }

    #[test]
    fn other_devices_and_events_are_not_judged() {
        let mut d = PileOffline::new(&PileOfflineConfig::default());
        d.observe(&reading("meter-7", DeviceKind::ElectricityMeter, 0));
        assert!(
            d.observe_event(&off("meter-7", 10)).is_none(),
            "a meter is not a pile"
        );
        assert!(
            d.observe_event(&off("pile-9", 10)).is_none(),
            "never seen: kind unknown"
        );
        d.observe(&reading("pile-1", DeviceKind::ChargingSocket, 0));
        let err = event(
            "pile-1",
            10,
            EventKind::DeviceError {
                message: "exception 2 at register 0x0010".into(),
            },
        );
        assert!(d.observe_event(&err).is_none());
        // Same device id behind another gateway is another pile.
        let mut elsewhere = off("pile-1", 20);
        elsewhere.gateway = "gw-2".into();
        assert!(d.observe_event(&elsewhere).is_none());
        assert_eq!(d.memory().0, 1);
    }

    #[test]
    fn disabled_or_full_detector_raises_nothing() {
        let mut d = PileOffline::new(&PileOfflineConfig {
            enabled: false,
            ..Default::default()
        });
        d.observe(&reading("pile-1", DeviceKind::ChargingSocket, 0));
        assert!(d.observe_event(&off("pile-1", 10)).is_none());

        let mut d = PileOffline::new(&PileOfflineConfig {
            max_piles: 1,
            ..Default::default()
        });
        d.observe(&reading("pile-1", DeviceKind::ChargingSocket, 0));
        d.observe(&reading("pile-2", DeviceKind::ChargingSocket, 0));
        assert!(d.observe_event(&off("pile-2", 10)).is_none());
        assert!(d.observe_event(&off("pile-1", 10)).is_some());
    }

    #[test]
    fn config_refuses_what_could_never_fire() {
        let c = PileOfflineConfig {
            kinds: vec![],
            ..Default::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.path, FieldError::new("kinds", "").path);
        assert!(e.message.contains("is empty"), "{}", e.message);
        let c = PileOfflineConfig {
            max_piles: 0,
            ..Default::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.path, FieldError::new("max_piles", "").path);
        assert!(PileOfflineConfig::default().validate().is_ok());
    }
}
