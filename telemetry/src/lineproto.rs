//! InfluxDB line protocol: an encoder with complete escaping, and a parser
//! written from the published syntax so the encoder can be checked against it.
//!
//! Escaping (InfluxDB line-protocol reference, "Special characters"):
//! - measurement: `,` and space are escaped with `\`;
//! - tag keys, tag values and field keys: `,`, `=` and space;
//! - string field values: `"` and `\`;
//! - a literal `\` is written `\\` everywhere, so a value that ends in a
//!   backslash cannot escape the delimiter after it.
//!
//! Line protocol cannot carry a newline in any element (the line is the
//! record), and other control characters make some servers reject the batch.
//! So every ASCII control character is replaced by a space before escaping.
//! This is the one lossy rule, and it is what guarantees the property that
//! matters: one point in, exactly one point out.
//!
//! Tags with an empty value are left out (line protocol has no empty tag), and
//! non-finite floats are left out of the fields (it has no NaN). A point left
//! with no fields is an error, not a silent empty line.

use crate::reading::Reading;
use crate::time::Timestamp;
use std::fmt::Write as _;
use thiserror::Error;

/// A field value with its line-protocol type.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// 64-bit float (written without suffix).
    Float(f64),
    /// Signed integer (suffix `i`).
    Int(i64),
    /// Unsigned integer (suffix `u`; InfluxDB 2.x and later).
    UInt(u64),
    /// Boolean.
    Bool(bool),
    /// String (quoted).
    Str(String),
}

/// One point: measurement, tags, fields and a millisecond timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Measurement name.
    pub measurement: String,
    /// Tags in the order written (sorted by key is best for the server).
    pub tags: Vec<(String, String)>,
    /// Fields in the order written.
    pub fields: Vec<(String, FieldValue)>,
    /// Timestamp; written in ms, so writes must say `precision=ms`.
    pub ts: Option<Timestamp>,
}

/// Why a point could not be written.
#[derive(Debug, Error, PartialEq)]
pub enum EncodeError {
    /// The measurement name is empty, or would start a comment line.
    #[error("measurement name {0:?} is empty or starts with '#'")]
    BadMeasurement(String),
    /// A tag or field key is empty.
    #[error("an empty {0} key cannot be written")]
    EmptyKey(&'static str),
    /// No field survived (all were non-finite, or there were none).
    #[error("point {measurement:?} has no writable field")]
    NoFields {
        /// The measurement of the empty point.
        measurement: String,
    },
}

/// Why a line could not be parsed.
#[derive(Debug, Error, PartialEq)]
#[error("line protocol error at byte {at}: {what}")]
pub struct ParseError {
    /// Byte offset in the line.
    pub at: usize,
    /// What was wrong.
    pub what: &'static str,
}

fn clean(c: char) -> char {
    if c.is_ascii_control() {
        ' '
    } else {
        c
    }
}

fn escape_into(out: &mut String, s: &str, special: &[char]) {
    for c in s.chars().map(clean) {
        if c == '\\' || special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

const MEASUREMENT_SPECIAL: &[char] = &[',', ' '];
const KEY_SPECIAL: &[char] = &[',', '=', ' '];
const STRING_SPECIAL: &[char] = &['"'];

/// The form a string takes after a round trip: control characters become spaces.
pub fn normalise(s: &str) -> String {
    s.chars().map(clean).collect()
}

/// Appends one point as a line (with trailing `\n`) to `out`.
///
/// On error nothing is appended.
pub fn encode_point(p: &Point, out: &mut String) -> Result<(), EncodeError> {
    if p.measurement.is_empty() || p.measurement.starts_with('#') {
        return Err(EncodeError::BadMeasurement(p.measurement.clone()));
    }
    if p.tags.iter().any(|(k, _)| k.is_empty()) {
        return Err(EncodeError::EmptyKey("tag"));
    }
    if p.fields.iter().any(|(k, _)| k.is_empty()) {
        return Err(EncodeError::EmptyKey("field"));
    }
    let writable = |v: &FieldValue| !matches!(v, FieldValue::Float(f) if !f.is_finite());
    if !p.fields.iter().any(|(_, v)| writable(v)) {
        return Err(EncodeError::NoFields {
            measurement: p.measurement.clone(),
        });
    }
    let start = out.len();
    escape_into(out, &p.measurement, MEASUREMENT_SPECIAL);
    for (k, v) in p.tags.iter().filter(|(_, v)| !v.is_empty()) {
        out.push(',');
        escape_into(out, k, KEY_SPECIAL);
        out.push('=');
        escape_into(out, v, KEY_SPECIAL);
    }
    let mut sep = ' ';
    for (k, v) in p.fields.iter().filter(|(_, v)| writable(v)) {
        out.push(sep);
        sep = ',';
        escape_into(out, k, KEY_SPECIAL);
        out.push('=');
        match v {
            // `{}` on f64 prints the shortest text that parses back to the same bits.
            FieldValue::Float(f) => {
                let _ = write!(out, "{f}");
            }
            FieldValue::Int(i) => {
                let _ = write!(out, "{i}i");
            }
            FieldValue::UInt(u) => {
                let _ = write!(out, "{u}u");
            }
            FieldValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            FieldValue::Str(s) => {
                out.push('"');
                escape_into(out, s, STRING_SPECIAL);
                out.push('"');
            }
        }
    }
    if let Some(ts) = p.ts {
        let _ = write!(out, " {}", ts.millis());
    }
    out.push('\n');
    debug_assert!(out[start..].matches('\n').count() == 1);
    Ok(())
}

impl Reading {
    /// The reading as an InfluxDB point: measurement = device kind; identity
    /// (site, gateway, device, building, unit, socket) as tags; values and
    /// `seq` as fields; the device timestamp, so a replay overwrites itself.
    pub fn to_point(&self) -> Point {
        let mut tags = Vec::with_capacity(6);
        if let Some(b) = &self.building {
            tags.push(("building".to_owned(), b.clone()));
        }
        tags.push(("device".to_owned(), self.device.0.clone()));
        tags.push(("gateway".to_owned(), self.gateway.0.clone()));
        tags.push(("site".to_owned(), self.site.0.clone()));
        if let Some(s) = self.socket {
            tags.push(("socket".to_owned(), s.to_string()));
        }
        if let Some(u) = &self.unit {
            tags.push(("unit".to_owned(), u.clone()));
        }
        let mut fields: Vec<(String, FieldValue)> = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), FieldValue::Float(*v)))
            .collect();
        fields.push(("seq".to_owned(), FieldValue::Int(self.seq as i64)));
        Point {
            measurement: self.kind.as_str().to_owned(),
            tags,
            fields,
            ts: Some(self.ts),
        }
    }

    /// The reading as one line of line protocol (ms precision).
    pub fn to_line(&self) -> Result<String, EncodeError> {
        let mut s = String::new();
        encode_point(&self.to_point(), &mut s)?;
        Ok(s)
    }
}

/// Parses a whole body of line protocol: one point per non-empty,
/// non-comment line.
pub fn parse_lines(body: &str) -> Result<Vec<Point>, ParseError> {
    body.split('\n')
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(parse_line)
        .collect()
}

/// Parses one line (without its newline) following the published syntax:
/// `measurement[,tag=value...] field=value[,field=value...] [timestamp]`.
pub fn parse_line(line: &str) -> Result<Point, ParseError> {
    let b = line.as_bytes();
    let mut i = 0;
    let measurement = read_escaped(line, &mut i, &[',', ' '], MEASUREMENT_SPECIAL);
    if measurement.is_empty() {
        return Err(ParseError {
            at: 0,
            what: "empty measurement",
        });
    }
    let mut tags = Vec::new();
    while i < b.len() && b[i] == b',' {
        i += 1;
        let key = read_escaped(line, &mut i, &['='], KEY_SPECIAL);
        if key.is_empty() || i >= b.len() || b[i] != b'=' {
            return Err(ParseError {
                at: i,
                what: "tag without '=' or with empty key",
            });
        }
        i += 1;
        let value = read_escaped(line, &mut i, &[',', ' '], KEY_SPECIAL);
        if value.is_empty() {
            return Err(ParseError {
                at: i,
                what: "empty tag value",
            });
        }
        tags.push((key, value));
    }
    if i >= b.len() || b[i] != b' ' {
        return Err(ParseError {
            at: i,
            what: "expected a space before the fields",
        });
    }
    i += 1;
    let mut fields = Vec::new();
    loop {
        let key = read_escaped(line, &mut i, &['='], KEY_SPECIAL);
        if key.is_empty() || i >= b.len() || b[i] != b'=' {
            return Err(ParseError {
                at: i,
                what: "field without '=' or with empty key",
            });
        }
        i += 1;
        let value = read_field_value(line, &mut i)?;
        fields.push((key, value));
        if i < b.len() && b[i] == b',' {
            i += 1;
            continue;
        }
        break;
    }
    let ts = if i < b.len() {
        if b[i] != b' ' {
            return Err(ParseError {
                at: i,
                what: "unexpected text after the fields",
            });
        }
        i += 1;
        let t: i64 = line[i..].parse().map_err(|_| ParseError {
            at: i,
            what: "timestamp is not an integer",
        })?;
        Some(Timestamp(t))
    } else {
        None
    };
    Ok(Point {
        measurement,
        tags,
        fields,
        ts,
    })
}

/// Reads up to an unescaped delimiter. `\` before a special character or
/// before `\` is an escape; any other backslash is literal.
fn read_escaped(line: &str, i: &mut usize, delims: &[char], special: &[char]) -> String {
    let mut out = String::new();
    let mut chars = line[*i..].char_indices().peekable();
    while let Some((off, c)) = chars.next() {
        if c == '\\' {
            if let Some(&(_, n)) = chars.peek() {
                if n == '\\' || special.contains(&n) {
                    out.push(n);
                    chars.next();
                    continue;
                }
            }
            out.push(c);
            continue;
        }
        if delims.contains(&c) {
            *i += off;
            return out;
        }
        out.push(c);
    }
    *i = line.len();
    out
}

fn read_field_value(line: &str, i: &mut usize) -> Result<FieldValue, ParseError> {
    let b = line.as_bytes();
    if *i < b.len() && b[*i] == b'"' {
        let mut out = String::new();
        let mut chars = line[*i + 1..].char_indices();
        while let Some((off, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, n)) if n == '"' || n == '\\' => out.push(n),
                    Some((_, n)) => {
                        out.push('\\');
                        out.push(n);
                    }
                    None => break,
                },
                '"' => {
                    *i += 1 + off + 1;
                    return Ok(FieldValue::Str(out));
                }
                c => out.push(c),
            }
        }
        return Err(ParseError {
            at: *i,
            what: "unterminated string field",
        });
    }
    let start = *i;
    let end = line[start..]
        .find([',', ' '])
        .map(|o| start + o)
        .unwrap_or(line.len());
    *i = end;
    let text = &line[start..end];
    let bad = ParseError {
        at: start,
        what: "field value is not a number, boolean or string",
    };
    match text {
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(FieldValue::Bool(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(FieldValue::Bool(false)),
        _ => {}
    }
    if let Some(n) = text.strip_suffix('i') {
        return n.parse().map(FieldValue::Int).map_err(|_| bad);
    }
    if let Some(n) = text.strip_suffix('u') {
        return n.parse().map(FieldValue::UInt).map_err(|_| bad);
    }
    let valid = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    if !valid {
        return Err(bad);
    }
    text.parse().map(FieldValue::Float).map_err(|_| bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeviceKind;

    #[test]
    fn escapes_per_element() {
        let p = Point {
            measurement: "a b,c=d".into(),
            tags: vec![("k y".into(), "v,a=l\\".into())],
            fields: vec![("f=x".into(), FieldValue::Str("say \"hi\" \\".into()))],
            ts: Some(Timestamp(5)),
        };
        let mut s = String::new();
        encode_point(&p, &mut s).unwrap();
        assert_eq!(
            s,
            "a\\ b\\,c=d,k\\ y=v\\,a\\=l\\\\ f\\=x=\"say \\\"hi\\\" \\\\\" 5\n"
        );
        assert_eq!(parse_line(s.trim_end_matches('\n')).unwrap(), p);
    }

    #[test]
    fn newline_in_tag_cannot_inject_a_point() {
        let p = Point {
            measurement: "m".into(),
            tags: vec![("t".into(), "x\nevil,host=a v=1 1".into())],
            fields: vec![("v".into(), FieldValue::Float(1.0))],
            ts: None,
        };
        let mut s = String::new();
        encode_point(&p, &mut s).unwrap();
        let points = parse_lines(&s).unwrap();
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].tags[0].1, "x evil,host=a v=1 1");
    }

    #[test]
    fn reading_becomes_one_point_with_identity_tags() {
        let mut r = Reading::new(
            Timestamp(1_700_000_000_123),
            "gw-1",
            "pile-1",
            DeviceKind::ChargingSocket,
            42,
        );
        r.site = "南区 yard".into();
        r.socket = Some(3);
        r.values.insert("current_a".into(), 2.5);
        r.values.insert("power_w".into(), f64::NAN);
        let line = r.to_line().unwrap();
        assert_eq!(
            line,
            "charging_socket,device=pile-1,gateway=gw-1,site=南区\\ yard,socket=3 current_a=2.5,seq=42i 1700000000123\n"
        );
    }

    #[test]
    fn point_without_fields_is_an_error() {
        let p = Point {
            measurement: "m".into(),
            tags: vec![],
            fields: vec![("v".into(), FieldValue::Float(f64::INFINITY))],
            ts: None,
        };
        let mut s = String::new();
        assert!(matches!(
            encode_point(&p, &mut s),
            Err(EncodeError::NoFields { .. })
        ));
        assert!(s.is_empty());
    }

    #[test]
    fn parser_rejects_malformed_lines() {
        for bad in [
            "",
            "m",
            "m v",
            "m,t v=1",
            "m v=\"open",
            "m v=abc",
            "m v=1 x",
        ] {
            assert!(parse_line(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
