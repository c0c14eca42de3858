//! Ingest: MQTT messages in, [`Reading`]s out.
//!
//! The decoding is sans-IO ([`ReadingDecoder::decode`] takes a topic and the
//! payload bytes) so that every malformed input is a unit test; the
//! connection that delivers the messages lives in [`crate::service`].
//!
//! A message is refused, never half-used, when it is not under the reading
//! topics, is not a valid reading, or claims to come from a different site,
//! gateway or device than its topic. The broker's ACL only lets a gateway
//! write below its own topic (DESIGN.md §9); believing a payload that names
//! another gateway would let one compromised gateway raise — or hide —
//! alerts for another.

use gridwatch_telemetry::codec::{self, CodecError};
use gridwatch_telemetry::topic::{TopicKind, Topics};
use gridwatch_telemetry::Reading;
use thiserror::Error;

/// Why a message did not become a reading.
#[derive(Debug, Error)]
pub enum IngestError {
    /// The topic is not `{prefix}/{site}/{gateway}/reading/{device}`.
    #[error("topic {topic:?} is not a reading topic under prefix {prefix:?}")]
    NotAReadingTopic {
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

/// Turns reading messages into [`Reading`]s.
#[derive(Debug, Clone)]
pub struct ReadingDecoder {
    topics: Topics,
}

impl ReadingDecoder {
    /// A decoder for topics under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            topics: Topics::new(prefix),
        }
    }

    /// The subscription filter for every reading (`{prefix}/+/+/reading/+`).
    pub fn filter(&self) -> String {
        self.topics.all_readings()
    }

    /// Decodes one message. A payload without a `site` takes the topic's.
    pub fn decode(&self, topic: &str, payload: &[u8]) -> Result<Reading, IngestError> {
        let parts = self
            .topics
            .parse(topic)
            .filter(|p| p.kind == TopicKind::Reading)
            .ok_or_else(|| IngestError::NotAReadingTopic {
                topic: topic.to_owned(),
                prefix: self.topics.prefix().to_owned(),
            })?;
        let mut reading: Reading =
            codec::decode(payload).map_err(|source| IngestError::Payload {
                topic: topic.to_owned(),
                source,
            })?;
        if reading.site.as_str().is_empty() {
            reading.site = parts.site.into();
        }
        let device = parts.device.unwrap_or_default();
        for (field, in_topic, in_payload) in [
            ("site", parts.site, reading.site.as_str()),
            ("gateway", parts.gateway, reading.gateway.as_str()),
            ("device", device, reading.device.as_str()),
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
        Ok(reading)
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
        let r = ReadingDecoder::new("gw")
            .decode(TOPIC, &payload("yard-a", "gw-1"))
            .unwrap();
        assert_eq!(r.entity(), "yard-a/gw-1/pile-1#3");
    }

    #[test]
    fn a_payload_without_site_takes_the_topics() {
        let r = ReadingDecoder::new("gw")
            .decode(TOPIC, &payload("", "gw-1"))
            .unwrap();
        assert_eq!(r.site.as_str(), "yard-a");
    }

    #[test]
    fn a_payload_claiming_another_gateway_is_refused() {
        let e = ReadingDecoder::new("gw")
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
        let e = ReadingDecoder::new("gw")
            .decode(TOPIC, b"{not json")
            .unwrap_err()
            .to_string();
        assert!(e.contains(TOPIC), "{e}");
    }

    #[test]
    fn other_topics_are_refused() {
        let d = ReadingDecoder::new("gw");
        assert!(matches!(
            d.decode("gw/yard-a/gw-1/event/pile-1", &payload("yard-a", "gw-1")),
            Err(IngestError::NotAReadingTopic { .. })
        ));
        assert_eq!(d.filter(), "gw/+/+/reading/+");
    }
}
