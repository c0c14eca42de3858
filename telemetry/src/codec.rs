//! The JSON payload codec, with a schema version check.
//!
//! JSON keeps the stream readable by Node-RED, Telegraf's `mqtt_consumer` and
//! people with `mosquitto_sub`. Numbers must be finite: JSON has no NaN, and a
//! silently nulled value would look like a real zero downstream, so encoding
//! refuses them and names the field.

use crate::{Alert, Event, Reading, Status, SCHEMA_VERSION};
use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

/// Why a payload could not be encoded or decoded.
#[derive(Debug, Error)]
pub enum CodecError {
    /// The bytes are not JSON of the expected shape.
    #[error("payload is not a valid {what}: {source}")]
    Json {
        /// The message type that was expected.
        what: &'static str,
        /// serde_json's account, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The payload was written by a newer, incompatible producer.
    #[error(
        "payload schema version {found} is not supported (this build reads up to {SCHEMA_VERSION})"
    )]
    UnsupportedSchema {
        /// The version in the payload.
        found: u32,
    },
    /// A value cannot be represented in JSON.
    #[error("value {name:?} is {value}, which JSON cannot carry; only finite numbers are allowed")]
    NonFinite {
        /// The value's name.
        name: String,
        /// The offending value.
        value: f64,
    },
}

/// serde default for the `schema` field: payloads without one are version 1.
pub fn default_schema() -> u32 {
    1
}

/// A message type that travels as JSON.
pub trait Message: Serialize + DeserializeOwned {
    /// The type's name for error messages.
    const NAME: &'static str;
    /// The schema version the payload claims.
    fn schema(&self) -> u32;
    /// Checks that the message can be encoded faithfully.
    fn check(&self) -> Result<(), CodecError> {
        Ok(())
    }
}

impl Message for Reading {
    const NAME: &'static str = "reading";
    fn schema(&self) -> u32 {
        self.schema
    }
    fn check(&self) -> Result<(), CodecError> {
        match self.values.iter().find(|(_, v)| !v.is_finite()) {
            Some((name, value)) => Err(CodecError::NonFinite {
                name: name.clone(),
                value: *value,
            }),
            None => Ok(()),
        }
    }
}

impl Message for Event {
    const NAME: &'static str = "event";
    fn schema(&self) -> u32 {
        self.schema
    }
    fn check(&self) -> Result<(), CodecError> {
        if let crate::EventKind::SessionEnded { energy_wh, .. } = &self.kind {
            if !energy_wh.is_finite() {
                return Err(CodecError::NonFinite {
                    name: "energy_wh".into(),
                    value: *energy_wh,
                });
            }
        }
        Ok(())
    }
}

impl Message for Status {
    const NAME: &'static str = "status";
    fn schema(&self) -> u32 {
        self.schema
    }
}

impl Message for Alert {
    const NAME: &'static str = "alert";
    fn schema(&self) -> u32 {
        self.schema
    }
    fn check(&self) -> Result<(), CodecError> {
        let ev = &self.evidence;
        let bad = ev
            .values
            .iter()
            .chain(ev.thresholds.iter())
            .map(|(k, v)| (k.as_str(), *v))
            .chain(ev.samples.iter().map(|s| ("samples", s.value)))
            .find(|(_, v)| !v.is_finite());
        match bad {
            Some((name, value)) => Err(CodecError::NonFinite {
                name: name.to_owned(),
                value,
            }),
            None => Ok(()),
        }
    }
}

/// Encodes a message as compact JSON.
pub fn encode<M: Message>(msg: &M) -> Result<Vec<u8>, CodecError> {
    msg.check()?;
    serde_json::to_vec(msg).map_err(|source| CodecError::Json {
        what: M::NAME,
        source,
    })
}

/// Decodes a message, refusing schema versions newer than this build knows.
pub fn decode<M: Message>(bytes: &[u8]) -> Result<M, CodecError> {
    let msg: M = serde_json::from_slice(bytes).map_err(|source| CodecError::Json {
        what: M::NAME,
        source,
    })?;
    if msg.schema() > SCHEMA_VERSION || msg.schema() == 0 {
        return Err(CodecError::UnsupportedSchema {
            found: msg.schema(),
        });
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeviceKind, EventKind, Timestamp};

    fn reading() -> Reading {
        let mut r = Reading::new(Timestamp(1), "gw", "pile-1", DeviceKind::ChargingSocket, 3);
        r.values.insert("current_a".into(), 1.5);
        r
    }

    #[test]
    fn non_finite_values_are_refused_with_their_name() {
        let mut r = reading();
        r.values.insert("power_w".into(), f64::NAN);
        let err = encode(&r).unwrap_err().to_string();
        assert!(err.contains("power_w"), "{err}");
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut r = reading();
        r.schema = SCHEMA_VERSION + 1;
        let bytes = serde_json::to_vec(&r).unwrap();
        assert!(matches!(
            decode::<Reading>(&bytes),
            Err(CodecError::UnsupportedSchema { .. })
        ));
    }

    #[test]
    fn missing_field_names_the_field() {
        let err =
            decode::<Reading>(br#"{"ts":1,"gateway":"g","kind":"gas_meter","seq":1,"values":{}}"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("device"), "{err}");
    }

    #[test]
    fn event_type_sits_beside_common_fields() {
        let e = Event {
            schema: 1,
            ts: Timestamp(5),
            gateway: "gw".into(),
            site: "s".into(),
            device: "reader-1".into(),
            seq: 9,
            kind: EventKind::Sighting {
                location: "lift_lobby".into(),
                identity: "h:abc".into(),
                direction: None,
            },
        };
        let v: serde_json::Value = serde_json::from_slice(&encode(&e).unwrap()).unwrap();
        assert_eq!(v["type"], "sighting");
        assert_eq!(v["location"], "lift_lobby");
        assert_eq!(decode::<Event>(&encode(&e).unwrap()).unwrap(), e);
    }

    #[test]
    fn session_started_without_identity_still_decodes_and_stays_without_it() {
        let old = br#"{"schema":1,"ts":5,"gateway":"gw-a-yard","site":"a","device":"pile-1","seq":2,"type":"session_started","socket":3}"#;
        let e = decode::<Event>(old).unwrap();
        assert_eq!(
            e.kind,
            EventKind::SessionStarted {
                socket: 3,
                identity: None
            }
        );
        let v: serde_json::Value = serde_json::from_slice(&encode(&e).unwrap()).unwrap();
        assert!(v.get("identity").is_none(), "{v}");
        let tagged = Event {
            kind: EventKind::SessionStarted {
                socket: 3,
                identity: Some("tag-1-00007".into()),
            },
            ..e
        };
        let v: serde_json::Value = serde_json::from_slice(&encode(&tagged).unwrap()).unwrap();
        assert_eq!(v["identity"], "tag-1-00007");
        assert_eq!(decode::<Event>(&encode(&tagged).unwrap()).unwrap(), tagged);
    }

    #[test]
    fn meter_serial_and_heat_meters_are_optional_additions() {
        let old = br#"{"schema":1,"ts":5,"gateway":"g","device":"wm-1","kind":"water_meter","seq":2,"values":{"volume_m3":1.5}}"#;
        let r = decode::<Reading>(old).unwrap();
        assert_eq!(r.meter_serial, None);
        let v: serde_json::Value = serde_json::from_slice(&encode(&r).unwrap()).unwrap();
        assert!(v.get("meter_serial").is_none(), "{v}");
        let mut heat = Reading::new(Timestamp(1), "gw", "hm-1", DeviceKind::HeatMeter, 3);
        heat.meter_serial = Some("00000000000003".into());
        let v: serde_json::Value = serde_json::from_slice(&encode(&heat).unwrap()).unwrap();
        assert_eq!(v["kind"], "heat_meter");
        assert_eq!(v["meter_serial"], "00000000000003");
        assert_eq!(decode::<Reading>(&encode(&heat).unwrap()).unwrap(), heat);
    }

    #[test]
    fn whole_values_are_written_as_integers_and_read_back_as_numbers() {
        let mut r = crate::Reading::new(
            crate::Timestamp(1),
            "gw",
            "m",
            crate::DeviceKind::ElectricityMeter,
            7,
        );
        for (k, v) in [("reg", 21407.0), ("v", 230.5), ("z", -0.0), ("big", 1e300)] {
            r.values.insert(k.into(), v);
        }
        let json = String::from_utf8(encode(&r).unwrap()).unwrap();
        assert!(json.contains(r#""reg":21407,"#), "{json}");
        assert!(json.contains(r#""v":230.5"#), "{json}");
        assert!(json.contains(r#""z":-0.0"#), "{json}");
        let back: crate::Reading = decode(json.as_bytes()).unwrap();
        assert_eq!(back, r);
        assert!(back.values["z"].is_sign_negative());
    }
}
