//! Ingest: MQTT messages in, [`Reading`]s and [`Event`]s (tag sightings,
//! devices going offline) out.
//!
//! The decoding is sans-IO ([`MessageDecoder::decode`] takes a topic and the
//! payload bytes) so that every malformed input is a unit test; the
//! connection that delivers the messages lives in [`crate::service`].
//!
//! A message is refused, never half-used, when it is not under the reading
//! topics, is not a valid reading, or claims to come from a different site,
//! gateway or device than its topic. The broker's ACL only lets a gateway
//! write below its own topic (docs/security.md); believing a payload that names
//! another gateway would let one compromised gateway raise — or hide —
//! alerts for another.

use gridwatch_telemetry::codec::{self, CodecError};
use gridwatch_telemetry::topic::{TopicKind, Topics};
use gridwatch_telemetry::{Event, Reading, SiteId};
use thiserror::Error;

/// Why a message did not become a reading.
#[derive(Debug, Error)]
pub enum IngestError {
    /// The topic is not `{prefix}/{site}/{gateway}/reading/{device}` (nor,
    /// where events are expected, `…/event/{device}`).
    #[error("topic {topic:?} is not a reading or event topic under prefix {prefix:?}")]
    NotOurTopic {
        /// The topic.
        topic: String,
        /// The prefix in use.
        prefix: String,
    },
    /// The payload is not a valid reading.
    #[error("payload on {topic:?} refused: {source}")]
    Payload {
        /// The topic.
        topic: String,
        /// The codec's account (JSON line and column, or schema version).
        #[source]
        source: CodecError,
    },
    /// The payload names another site, gateway or device than its topic.
    #[error(
        "payload on {topic:?} says {field} {in_payload:?} but the topic says {in_topic:?}; refused"
    )]
    Mismatch {
        /// The topic.
        topic: String,
        /// `site`, `gateway` or `device`.
        field: &'static str,
        /// The value in the topic.
        in_topic: String,
        /// The value in the payload.
        in_payload: String,
    },
}

/// A message the service acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A measurement.
    Reading(Reading),
    /// Something that happened: a tag sighting, a device offline.
    Event(Event),
}

/// Turns reading and event messages into [`Reading`]s and [`Event`]s.
#[derive(Debug, Clone)]
pub struct MessageDecoder {
    topics: Topics,
}

impl MessageDecoder {
    /// A decoder for topics under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            topics: Topics::new(prefix),
        }
    }

    /// Both subscription filters: every reading and every event
    /// (`{prefix}/+/+/event/+`), which carry the sightings the
    /// indoor-charging rules and the offline events pile_offline need.
    pub fn filters(&self) -> [String; 2] {
        [self.topics.all_readings(), self.topics.all_events()]
    }

    /// Decodes a message from either filter of [`Self::filters`].
    pub fn decode_message(&self, topic: &str, payload: &[u8]) -> Result<Incoming, IngestError> {
        match self.topics.parse(topic).map(|p| p.kind) {
            Some(TopicKind::Event) => self
                .decode_as(topic, payload, TopicKind::Event)
                .map(Incoming::Event),
            _ => self.decode(topic, payload).map(Incoming::Reading),
        }
    }

    /// Decodes one message. A payload without a `site` takes the topic's.
    pub fn decode(&self, topic: &str, payload: &[u8]) -> Result<Reading, IngestError> {
        self.decode_as(topic, payload, TopicKind::Reading)
    }

    /// Decodes a message of the topic kind `kind`: the payload must be one,
    /// and must come from the site, gateway and device its topic names.
    fn decode_as<M: FromGateway>(
        &self,
        topic: &str,
        payload: &[u8],
        kind: TopicKind,
    ) -> Result<M, IngestError> {
        let parts = self
            .topics
            .parse(topic)
            .filter(|p| p.kind == kind)
            .ok_or_else(|| IngestError::NotOurTopic {
                topic: topic.to_owned(),
                prefix: self.topics.prefix().to_owned(),
            })?;
        let mut msg: M = codec::decode(payload).map_err(|source| IngestError::Payload {
            topic: topic.to_owned(),
            source,
        })?;
        let (site, gateway, device) = msg.origin();
        if site.as_str().is_empty() {
            *site = parts.site.into();
        }
        for (field, in_topic, in_payload) in [
            ("site", parts.site, site.as_str()),
            ("gateway", parts.gateway, gateway),
            ("device", parts.device.unwrap_or_default(), device),
        ] {
            if in_topic != in_payload {
                return Err(IngestError::Mismatch {
                    topic: topic.to_owned(),
                    field,
                    in_topic: in_topic.to_owned(),
                    in_payload: in_payload.to_owned(),
                });
            }
        }
        Ok(msg)
    }
}

/// A message a gateway publishes about one of its devices: what ingest
/// checks against the topic it came on (docs/security.md).
trait FromGateway: codec::Message {
    /// The site (to be filled in from the topic when empty), gateway and device.
    fn origin(&mut self) -> (&mut SiteId, &str, &str);
}

impl FromGateway for Reading {
    fn origin(&mut self) -> (&mut SiteId, &str, &str) {
        (&mut self.site, self.gateway.as_str(), self.device.as_str())
    }
}

impl FromGateway for Event {
    fn origin(&mut self) -> (&mut SiteId, &str, &str) {
        (&mut self.site, self.gateway.as_str(), self.device.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_telemetry::{DeviceKind, Timestamp};

    const TOPIC: &str = "gw/yard-a/gw-1/reading/pile-1";

    fn payload(site: &str, gateway: &str) -> Vec<u8> {
        let mut r = Reading::new(
            Timestamp(1),
            gateway,
            "pile-1",
            DeviceKind::ChargingSocket,
            1,
        );
        r.site = site.into();
        r.socket = Some(3);
        r.values.insert("current_a".into(), 2.5);
        codec::encode(&r).unwrap()
    }

    #[test]
    fn a_valid_reading_decodes() {
        let r = MessageDecoder::new("gw")
            .decode(TOPIC, &payload("yard-a", "gw-1"))
            .unwrap();
        assert_eq!(r.entity(), "yard-a/gw-1/pile-1#3");
    }

    #[test]
    fn a_payload_without_site_takes_the_topics() {
        let r = MessageDecoder::new("gw")
            .decode(TOPIC, &payload("", "gw-1"))
            .unwrap();
        assert_eq!(r.site.as_str(), "yard-a");
    }

    #[test]
    fn a_payload_claiming_another_gateway_is_refused() {
        let e = MessageDecoder::new("gw")
            .decode(TOPIC, &payload("yard-a", "gw-2"))
            .unwrap_err();
        assert!(
            matches!(
                e,
                IngestError::Mismatch {
                    field: "gateway",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn garbage_names_the_topic() {
        let e = MessageDecoder::new("gw")
            .decode(TOPIC, b"{not json")
            .unwrap_err()
            .to_string();
        assert!(e.contains(TOPIC), "{e}");
    }

    fn sighting(site: &str, device: &str) -> Vec<u8> {
        codec::encode(&Event {
            schema: gridwatch_telemetry::SCHEMA_VERSION,
            ts: Timestamp(5),
            gateway: "gw-1".into(),
            site: site.into(),
            device: device.into(),
            seq: 1,
            kind: gridwatch_telemetry::EventKind::Sighting {
                location: "lift_lobby".into(),
                identity: "tag-hmac".into(),
                direction: None,
            },
        })
        .unwrap()
    }

    #[test]
    fn events_and_readings_decode_from_their_own_topics() {
        let d = MessageDecoder::new("gw");
        assert_eq!(d.filters(), ["gw/+/+/reading/+", "gw/+/+/event/+"]);
        let topic = "gw/yard-a/gw-1/event/reader-lift";
        let Ok(Incoming::Event(e)) = d.decode_message(topic, &sighting("", "reader-lift")) else {
            panic!("a sighting on an event topic is an event");
        };
        assert_eq!(
            (e.site.as_str(), e.device.as_str()),
            ("yard-a", "reader-lift")
        );
        assert!(matches!(
            d.decode_message(TOPIC, &payload("yard-a", "gw-1")),
            Ok(Incoming::Reading(_))
        ));
        // The same checks as for readings: another device than the topic's,
        // a reading's payload on an event topic, garbage, a status topic.
        let e = d
            .decode_message(topic, &sighting("yard-a", "reader-gate"))
            .unwrap_err();
        assert!(
            matches!(
                e,
                IngestError::Mismatch {
                    field: "device",
                    ..
                }
            ),
            "{e}"
        );
        let e = d
            .decode_message("gw/yard-a/gw-1/event/pile-1", &payload("yard-a", "gw-1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("gw/yard-a/gw-1/event/pile-1"), "{e}");
        assert!(d.decode_message(topic, b"{not json").is_err());
        assert!(matches!(
            d.decode_message("gw/yard-a/gw-1/status", b"{}"),
            Err(IngestError::NotOurTopic { .. })
        ));
    }

    #[test]
    fn other_topics_are_refused() {
        let d = MessageDecoder::new("gw");
        assert!(matches!(
            d.decode("gw/yard-a/gw-1/event/pile-1", &payload("yard-a", "gw-1")),
            Err(IngestError::NotOurTopic { .. })
        ));
        assert_eq!(d.filters()[0], "gw/+/+/reading/+");
    }
}

/// The `[ingest]` section: what the live service believes and what it keeps
/// of what it refuses.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// A message stamped more than this far ahead of this host's clock is
    /// quarantined (see [`crate::clock_guard`]). Five minutes covers a
    /// gateway whose NTP is a little off, not one whose clock is wrong.
    pub max_ahead_s: u64,
    /// A message stamped before this instant (ms since the epoch, UTC) is
    /// quarantined: a Pi has no battery-backed clock and starts in 1970
    /// until it synchronises. Default 2024-01-01T00:00:00Z.
    pub min_ts_ms: i64,
    /// A message larger than this many bytes is dropped unread (counted,
    /// logged, dead-lettered) instead of breaking the connection. Set the
    /// broker's `message_size_limit` to the same value so it never forwards
    /// one.
    pub max_message_bytes: usize,
    /// JSON-lines file where every dropped message goes with its topic, the
    /// reason and (up to 64 KiB of) its payload; none keeps only the count
    /// and the log line.
    pub dead_letter_path: Option<std::path::PathBuf>,
    /// The dead-letter file stops growing at this size; later drops are
    /// still counted and logged.
    pub dead_letter_max_bytes: u64,
    /// Ranges (`name = [min, max]`) that override or add to the built-in
    /// physical ranges of [`crate::plausibility`]; a reading with a value
    /// outside its range is kept out of every detector and counted.
    pub plausible: std::collections::BTreeMap<String, [f64; 2]>,
    /// Distinct devices (sockets, meters, readers) one gateway can make
    /// analytics keep state for ([`crate::entity_quota`]); a building
    /// gateway has a few hundred.
    pub max_entities_per_gateway: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_ahead_s: 300,
            min_ts_ms: 1_704_067_200_000,
            max_message_bytes: 1024 * 1024,
            dead_letter_path: None,
            dead_letter_max_bytes: 64 * 1024 * 1024,
            plausible: std::collections::BTreeMap::new(),
            max_entities_per_gateway: 4096,
        }
    }
}

impl IngestConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), crate::toml_file::FieldError> {
        use crate::toml_file::FieldError;
        if self.max_ahead_s == 0 {
            return Err(FieldError::new(
                "max_ahead_s",
                "is 0; clocks are never exact, allow at least a few seconds (default 300)",
            ));
        }
        if self.min_ts_ms < 0 {
            return Err(FieldError::new(
                "min_ts_ms",
                format!("is {}; it must be 0 or later", self.min_ts_ms),
            ));
        }
        if self.max_message_bytes < 4096 {
            return Err(FieldError::new(
                "max_message_bytes",
                format!(
                    "is {}; a reading with all its values needs at least 4096",
                    self.max_message_bytes
                ),
            ));
        }
        if self.max_entities_per_gateway == 0 {
            return Err(FieldError::new(
                "max_entities_per_gateway",
                "is 0; no gateway could report anything (default 4096)",
            ));
        }
        crate::plausibility::validate(&self.plausible)?;
        if let Some(p) = &self.dead_letter_path {
            if p.as_os_str().is_empty() {
                return Err(FieldError::new(
                    "dead_letter_path",
                    "is empty; give a file path or leave the key out",
                ));
            }
        }
        Ok(())
    }
}
