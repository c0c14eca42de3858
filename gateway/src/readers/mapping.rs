//! The declarative mapping from a reader's JSON message to a sighting:
//! which field holds the identity, the direction and the time, and what the
//! vendor's direction values mean. Pure code over bytes, no I/O.
//!
//! Paths are JSON pointers (`/result/plate`, RFC 6901) or dotted paths
//! (`result.plate`, `events.0.tag`); both are accepted so installers can
//! copy either from a vendor's manual. Errors name the field of the mapping
//! that failed and why, and never quote the identity's value.

use super::{Direction, RawSighting};
use gridwatch_telemetry::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Largest message accepted from a reader: sighting messages are a few
/// hundred bytes; a camera that attaches a picture is refused, not parsed.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Deepest JSON nesting accepted (serde_json's own limit is 128).
const MAX_PATH_SEGMENTS: usize = 16;

/// How a reader's time field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// Milliseconds since 1970 (UTC).
    #[default]
    UnixMs,
    /// Seconds since 1970 (UTC), possibly with a fraction.
    UnixS,
    /// RFC 3339 text, `2026-03-01T22:15:03.120+08:00`.
    Rfc3339,
}

/// The `[readers.json]` table as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonMappingConfig {
    /// Path of the tag id or plate (a string or an integer).
    pub identity: String,
    /// Path of the direction, if the reader reports one.
    pub direction: Option<String>,
    /// The vendor's direction values (`"0"`, `"approach"`) → `in` / `out`.
    /// Without it, the field must say `in` or `out` itself.
    #[serde(default)]
    pub direction_map: BTreeMap<String, Direction>,
    /// Path of the time the reader saw it; without it the gateway's clock.
    pub time: Option<String>,
    /// How `time` is written.
    #[serde(default)]
    pub time_format: TimeFormat,
}

/// A validated path into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    /// As written in the config, for messages.
    pub text: String,
    segments: Vec<String>,
}

impl FieldPath {
    /// Parses a JSON pointer (`/a/b`) or a dotted path (`a.b`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let segments: Vec<String> = if let Some(rest) = text.strip_prefix('/') {
            rest.split('/')
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
                .collect()
        } else {
            text.split('.').map(str::to_owned).collect()
        };
        if text.is_empty() || segments.iter().any(String::is_empty) {
            return Err(format!(
                "{text:?} is not a field path; write a JSON pointer such as \"/result/plate\" \
                 or a dotted path such as \"result.plate\""
            ));
        }
        if segments.len() > MAX_PATH_SEGMENTS {
            return Err(format!(
                "{text:?} is deeper than {MAX_PATH_SEGMENTS} levels"
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// The value at this path in `doc`, if any.
    pub fn find<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        self.segments.iter().try_fold(doc, |v, seg| match v {
            Value::Object(map) => map.get(seg),
            Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
    }
}

/// A validated mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonMapping {
    identity: FieldPath,
    direction: Option<FieldPath>,
    direction_map: BTreeMap<String, Direction>,
    time: Option<(FieldPath, TimeFormat)>,
}

/// Why a message does not map to a sighting. Never holds the identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The payload is not JSON (or too large).
    #[error("the message is not JSON: {0}")]
    NotJson(String),
    /// A mapped field is absent.
    #[error("field {field} ({path}) is missing")]
    Missing {
        /// Which mapping field: `identity`, `direction`, `time`.
        field: &'static str,
        /// The configured path.
        path: String,
    },
    /// A mapped field holds something unusable.
    #[error("field {field} ({path}) {why}")]
    Invalid {
        /// Which mapping field.
        field: &'static str,
        /// The configured path.
        path: String,
        /// What is wrong, without the identity's value.
        why: String,
    },
}

impl MappingError {
    /// The mapping field that failed (`json` for the message as a whole).
    pub fn field(&self) -> &'static str {
        match self {
            MappingError::NotJson(_) => "json",
            MappingError::Missing { field, .. } | MappingError::Invalid { field, .. } => field,
        }
    }
}

impl JsonMapping {
    /// Checks the paths; the error names the offending key of `[readers.json]`.
    pub fn build(c: &JsonMappingConfig) -> Result<Self, (&'static str, String)> {
        let path = |key: &'static str, p: &str| FieldPath::parse(p).map_err(|e| (key, e));
        if !c.direction_map.is_empty() && c.direction.is_none() {
            return Err((
                "direction_map",
                "a direction_map needs the direction field's path (direction = \"/dir\")".into(),
            ));
        }
        Ok(Self {
            identity: path("identity", &c.identity)?,
            direction: c
                .direction
                .as_deref()
                .map(|p| path("direction", p))
                .transpose()?,
            direction_map: c.direction_map.clone(),
            time: c
                .time
                .as_deref()
                .map(|p| path("time", p).map(|f| (f, c.time_format)))
                .transpose()?,
        })
    }

    /// Maps one message. The identity is returned raw: the caller
    /// pseudonymises it at once.
    pub fn apply(&self, payload: &[u8]) -> Result<RawSighting, MappingError> {
        if payload.len() > MAX_MESSAGE_BYTES {
            return Err(MappingError::NotJson(format!(
                "{} bytes is over the {MAX_MESSAGE_BYTES}-byte limit",
                payload.len()
            )));
        }
        let doc: Value = serde_json::from_slice(payload).map_err(|e| {
            // serde_json's message names line and column, never the content.
            MappingError::NotJson(e.to_string())
        })?;
        let identity = self.identity_of(&doc)?;
        let direction = match &self.direction {
            None => None,
            Some(p) => Some(self.direction_of(&doc, p)?),
        };
        let ts = match &self.time {
            None => None,
            Some((p, format)) => Some(time_of(&doc, p, *format)?),
        };
        Ok(RawSighting {
            identity,
            direction,
            ts,
        })
    }

    fn identity_of(&self, doc: &Value) -> Result<String, MappingError> {
        let p = &self.identity;
        let invalid = |why: &str| MappingError::Invalid {
            field: "identity",
            path: p.text.clone(),
            why: why.to_owned(),
        };
        let raw = match p.find(doc) {
            None | Some(Value::Null) => {
                return Err(MappingError::Missing {
                    field: "identity",
                    path: p.text.clone(),
                })
            }
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) if n.is_u64() => n.to_string(),
            Some(other) => return Err(invalid(&format!("is {}, not text", kind(other)))),
        };
        super::check_identity(&raw).map_err(invalid)?;
        Ok(raw)
    }

    fn direction_of(&self, doc: &Value, p: &FieldPath) -> Result<Direction, MappingError> {
        let text = match p.find(doc) {
            None | Some(Value::Null) => {
                return Err(MappingError::Missing {
                    field: "direction",
                    path: p.text.clone(),
                })
            }
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            Some(other) => {
                return Err(MappingError::Invalid {
                    field: "direction",
                    path: p.text.clone(),
                    why: format!("is {}, not text or a number", kind(other)),
                })
            }
        };
        if let Some(d) = self.direction_map.get(&text) {
            return Ok(*d);
        }
        if self.direction_map.is_empty() {
            if let Some(d) = Direction::parse(&text) {
                return Ok(d);
            }
        }
        let known = if self.direction_map.is_empty() {
            "\"in\", \"out\"".to_owned()
        } else {
            self.direction_map
                .keys()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(MappingError::Invalid {
            field: "direction",
            path: p.text.clone(),
            why: format!("is {:?}, not one of {known}", truncate(&text)),
        })
    }
}

fn time_of(doc: &Value, p: &FieldPath, format: TimeFormat) -> Result<Timestamp, MappingError> {
    let invalid = |why: String| MappingError::Invalid {
        field: "time",
        path: p.text.clone(),
        why,
    };
    let v = p.find(doc).ok_or_else(|| MappingError::Missing {
        field: "time",
        path: p.text.clone(),
    })?;
    // Plausible sighting times: 2000-01-01 to 2100-01-01.
    const RANGE_MS: std::ops::Range<i64> = 946_684_800_000..4_102_444_800_000;
    let ms = match (format, v) {
        (TimeFormat::UnixMs, Value::Number(n)) => n.as_i64(),
        (TimeFormat::UnixS, Value::Number(n)) => n
            .as_f64()
            .filter(|s| s.is_finite() && s.abs() < 1e13)
            .map(|s| (s * 1000.0).round() as i64),
        (TimeFormat::Rfc3339, Value::String(s)) => parse_rfc3339(s),
        (_, other) => {
            return Err(invalid(format!(
                "is {}, which does not fit time_format {format:?}",
                kind(other)
            )))
        }
    };
    match ms {
        Some(ms) if RANGE_MS.contains(&ms) => Ok(Timestamp::from_millis(ms)),
        Some(_) => Err(invalid(format!(
            "is outside 2000–2100 (is time_format {format:?} right?)"
        ))),
        None => Err(invalid(format!("is not a time in format {format:?}"))),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` → ms since 1970.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.is_ascii() {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 {
        return None;
    }
    if se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() {
            return None;
        }
        let padded = format!("{:0<3}", &digits[..digits.len().min(3)]);
        frac_ms = padded.parse::<i64>().ok()?;
    }
    let offset_min = match &s[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && tz.as_bytes()[3] == b':' => {
            let sign = match tz.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            sign * (tz[1..3].parse::<i64>().ok()? * 60 + tz[4..6].parse::<i64>().ok()?)
        }
        _ => return None,
    };
    let days = gridwatch_telemetry::time::days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60;
    Some(secs * 1000 + frac_ms)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// At most 8 characters of a direction value, for messages: enough to
/// show a vendor code, too little to leak an identity if a path is wrong.
fn truncate(s: &str) -> String {
    s.chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mapping(toml_text: &str) -> JsonMapping {
        let c: JsonMappingConfig = toml::from_str(toml_text).expect("parses");
        JsonMapping::build(&c).expect("valid")
    }

    const CAMERA: &str = r#"
        identity = "/result/plate"
        direction = "result.dir"
        direction_map = { "0" = "in", "1" = "out" }
        time = "/ts"
        time_format = "rfc3339"
    "#;

    #[test]
    fn a_camera_message_maps_through_pointers_dotted_paths_and_the_direction_map() {
        let m = mapping(CAMERA);
        let s = m
            .apply(br#"{"ts":"2026-03-01T22:15:03.120+08:00","result":{"plate":"AB123","dir":1}}"#)
            .expect("maps");
        assert_eq!(s.identity, "AB123");
        assert_eq!(s.direction, Some(Direction::Out));
        assert_eq!(s.ts, Some(Timestamp::from_millis(1_772_374_503_120)));
    }

    #[test]
    fn without_a_map_the_direction_must_say_in_or_out() {
        let m = mapping("identity = \"tag\"\ndirection = \"dir\"");
        let s = m.apply(br#"{"tag": 12345678, "dir": "IN"}"#).expect("maps");
        assert_eq!(
            (s.identity.as_str(), s.direction),
            ("12345678", Some(Direction::In))
        );
        let e = m
            .apply(br#"{"tag": "A1", "dir": "sideways"}"#)
            .expect_err("bad");
        assert_eq!(e.field(), "direction");
        assert!(e.to_string().contains("\"sideways\""), "{e}");
    }

    #[test]
    fn errors_name_the_field_and_never_the_identity() {
        let m = mapping(CAMERA);
        let cases: [(&[u8], &str); 6] = [
            (b"{not json", "json"),
            (
                br#"{"ts":"2026-03-01T22:15:03Z","result":{"dir":0}}"#,
                "identity",
            ),
            (
                br#"{"ts":"2026-03-01T22:15:03Z","result":{"plate":["AB123"],"dir":0}}"#,
                "identity",
            ),
            (
                br#"{"ts":"2026-03-01T22:15:03Z","result":{"plate":"AB123"}}"#,
                "direction",
            ),
            (
                br#"{"ts":"yesterday","result":{"plate":"AB123","dir":0}}"#,
                "time",
            ),
            (
                br#"{"ts":"2026-03-01T22:15:03Z","result":{"plate":"AB123","dir":7}}"#,
                "direction",
            ),
        ];
        for (payload, field) in cases {
            let e = m.apply(payload).expect_err("malformed");
            assert_eq!(e.field(), field, "{e}");
            assert!(!e.to_string().contains("AB123"), "{e}");
        }
    }

    #[test]
    fn identities_that_cannot_be_a_tag_or_plate_are_refused() {
        let m = mapping("identity = \"/id\"");
        for bad in [r#"{"id":""}"#, r#"{"id":"   "}"#, r#"{"id":"a\nb"}"#] {
            assert_eq!(m.apply(bad.as_bytes()).expect_err(bad).field(), "identity");
        }
        let long = format!(r#"{{"id":"{}"}}"#, "9".repeat(100));
        assert_eq!(
            m.apply(long.as_bytes()).expect_err("long").field(),
            "identity"
        );
    }

    #[test]
    fn times_in_seconds_and_out_of_range_times() {
        let m = mapping("identity = \"id\"\ntime = \"t\"\ntime_format = \"unix_s\"");
        let s = m.apply(br#"{"id":"x1","t":1772374503.5}"#).expect("maps");
        assert_eq!(s.ts, Some(Timestamp::from_millis(1_772_374_503_500)));
        let e = m
            .apply(br#"{"id":"x1","t":1772374503500}"#)
            .expect_err("ms as s");
        assert!(e.to_string().contains("2000–2100"), "{e}");
    }

    #[test]
    fn bad_paths_and_a_map_without_a_field_are_refused() {
        for (text, key) in [
            ("identity = \"a..b\"", "identity"),
            ("identity = \"\"", "identity"),
            (
                "identity = \"a\"\ndirection_map = { \"0\" = \"in\" }",
                "direction_map",
            ),
        ] {
            let c: JsonMappingConfig = toml::from_str(text).expect("parses");
            assert_eq!(JsonMapping::build(&c).expect_err(text).0, key);
        }
    }

    #[test]
    fn rfc3339_agrees_with_the_formatter() {
        for ms in [0_i64, 951_782_400_123, 1_772_374_503_120, 4_102_444_799_999] {
            let text = Timestamp::from_millis(ms).to_rfc3339();
            assert_eq!(parse_rfc3339(&text), Some(ms), "{text}");
        }
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00+0800"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = mapping(CAMERA).apply(&bytes);
        }

        #[test]
        fn arbitrary_json_never_panics(
            plate in proptest::option::of("\\PC{0,80}"),
            dir in proptest::option::of(prop_oneof![
                any::<i64>().prop_map(Value::from),
                "\\PC{0,8}".prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
            ]),
            ts in "\\PC{0,40}",
        ) {
            let doc = serde_json::json!({"ts": ts, "result": {"plate": plate, "dir": dir}});
            let bytes = serde_json::to_vec(&doc).expect("encodes");
            match mapping(CAMERA).apply(&bytes) {
                Ok(s) => prop_assert!(s.identity.len() <= crate::pseudonym::MAX_IDENTITY_BYTES),
                Err(e) => if let Some(p) = plate.filter(|p| p.len() > 3) {
                    prop_assert!(!e.to_string().contains(&p));
                },
            }
        }

        #[test]
        fn arbitrary_paths_never_panic(path in "\\PC{0,40}", bytes in "\\PC{0,200}") {
            if let Ok(p) = FieldPath::parse(&path) {
                if let Ok(doc) = serde_json::from_str::<Value>(&bytes) {
                    let _ = p.find(&doc);
                }
            }
        }
    }
}
