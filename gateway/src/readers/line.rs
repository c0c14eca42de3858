//! The serial RFID reader's line protocol, both ways, with no I/O.
//!
//! Cheap 125 kHz / UHF readers with a serial (or Wiegand-to-serial) output
//! print one ASCII line per tag read. Gridwatch uses one such format with a
//! checksum, in the manner of NMEA 0183, so that line noise on a long
//! RS-232/RS-485 run is caught instead of becoming a wrong tag:
//!
//! ```text
//! $TAG,<id>[,<dir>]*<cs>\r\n     a tag read; <dir> is I (in) or O (out)
//! $HB*<cs>\r\n                   heartbeat, every few seconds when idle
//! ```
//! `<id>` is 1–32 letters or digits (hex for most tags); `<cs>` is two hex
//! digits, the XOR of every byte between `$` and `*`. Lines end with `\n`
//! (a `\r` before it is ignored) and are at most [`MAX_LINE`] bytes. Blank
//! lines are skipped. Anything else is an error for that line only; the
//! decoder resynchronises at the next newline. Documented for installers
//! and vendors in `docs/readers.md`.
//!
//! ```
//! use gridwatch_gateway::readers::line::{encode_tag, Frame, LineDecoder};
//! use gridwatch_gateway::readers::Direction;
//!
//! let text = encode_tag("04A1B2C3", Some(Direction::In));
//! assert_eq!(text, "$TAG,04A1B2C3,I*6F\r\n");
//! let mut decoder = LineDecoder::default();
//! let mut out = Vec::new();
//! decoder.feed(text.as_bytes(), &mut out);
//! assert!(matches!(&out[0], (1, Ok(Frame::Tag { .. }))));
//! ```

use super::Direction;

/// Longest line accepted, terminator included; more is noise or a
/// different protocol, and is dropped without buffering it.
pub const MAX_LINE: usize = 80;
/// Longest tag id.
pub const MAX_ID: usize = 32;

/// A decoded line.
#[derive(Clone, PartialEq, Eq)]
pub enum Frame {
    /// A tag was read.
    Tag {
        /// The raw tag id (pseudonymised by the caller at once).
        id: String,
        /// Direction, when the reader has two antennas and knows it.
        direction: Option<Direction>,
    },
    /// The reader is alive.
    Heartbeat,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Frame::Tag { direction, .. } => write!(f, "Tag {{ id: <hidden>, {direction:?} }}"),
            Frame::Heartbeat => write!(f, "Heartbeat"),
        }
    }
}

/// Why a line is not a frame. Never holds the tag id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Longer than [`MAX_LINE`].
    #[error("line is longer than {MAX_LINE} bytes")]
    TooLong,
    /// Not valid text.
    #[error("line is not ASCII text")]
    NotAscii,
    /// Does not start with `$`.
    #[error("line does not start with '$'")]
    NoStart,
    /// No `*` and two hex digits at the end (often a line cut short).
    #[error("line has no checksum ('*' and two hex digits) at its end; cut short?")]
    NoChecksum,
    /// The checksum does not match the line.
    #[error("checksum is {got:02X}, the line's bytes give {expected:02X}")]
    BadChecksum {
        /// What the bytes give.
        expected: u8,
        /// What the line says.
        got: u8,
    },
    /// A sentence type other than `TAG` or `HB`.
    #[error("unknown sentence type {0:?} (expected TAG or HB)")]
    UnknownType(String),
    /// A field is missing or wrong.
    #[error("field {field} {why}")]
    BadField {
        /// `id` or `direction`.
        field: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

/// XOR of `bytes`.
fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |a, b| a ^ b)
}

/// The line for a tag read (used by simulators and tests).
pub fn encode_tag(id: &str, direction: Option<Direction>) -> String {
    let body = match direction {
        None => format!("TAG,{id}"),
        Some(Direction::In) => format!("TAG,{id},I"),
        Some(Direction::Out) => format!("TAG,{id},O"),
    };
    format!("${body}*{:02X}\r\n", checksum(body.as_bytes()))
}

/// The heartbeat line.
pub fn encode_heartbeat() -> String {
    format!("$HB*{:02X}\r\n", checksum(b"HB"))
}

/// Decodes one line (without its terminator).
pub fn decode_line(line: &[u8]) -> Result<Frame, LineError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_LINE {
        return Err(LineError::TooLong);
    }
    if !line.is_ascii() {
        return Err(LineError::NotAscii);
    }
    let rest = line.strip_prefix(b"$").ok_or(LineError::NoStart)?;
    let star = rest
        .iter()
        .rposition(|&b| b == b'*')
        .ok_or(LineError::NoChecksum)?;
    let (body, cs) = (&rest[..star], &rest[star + 1..]);
    let got = std::str::from_utf8(cs)
        .ok()
        .filter(|s| s.len() == 2)
        .and_then(|s| u8::from_str_radix(s, 16).ok())
        .ok_or(LineError::NoChecksum)?;
    let expected = checksum(body);
    if got != expected {
        return Err(LineError::BadChecksum { expected, got });
    }
    // ASCII was checked above.
    let body = std::str::from_utf8(body).map_err(|_| LineError::NotAscii)?;
    let mut fields = body.split(',');
    match fields.next().unwrap_or_default() {
        "HB" => Ok(Frame::Heartbeat),
        "TAG" => {
            let id = fields.next().ok_or(LineError::BadField {
                field: "id",
                why: "is missing",
            })?;
            if id.is_empty() || id.len() > MAX_ID || !id.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(LineError::BadField {
                    field: "id",
                    why: "must be 1 to 32 letters or digits",
                });
            }
            let direction = match fields.next() {
                None | Some("") => None,
                Some("I") => Some(Direction::In),
                Some("O") => Some(Direction::Out),
                Some(_) => {
                    return Err(LineError::BadField {
                        field: "direction",
                        why: "must be I or O",
                    })
                }
            };
            if fields.next().is_some() {
                return Err(LineError::BadField {
                    field: "direction",
                    why: "is followed by extra fields",
                });
            }
            Ok(Frame::Tag {
                id: id.to_owned(),
                direction,
            })
        }
        other => Err(LineError::UnknownType(other.chars().take(8).collect())),
    }
}

/// Splits a byte stream into lines and decodes them, counting lines from 1
/// so errors can name them. Holds at most [`MAX_LINE`] bytes.
#[derive(Debug, Default)]
pub struct LineDecoder {
    buf: Vec<u8>,
    overflow: bool,
    line: u64,
}

impl LineDecoder {
    /// Decodes every line completed by `bytes`, appending `(line number,
    /// result)` to `out`. Blank lines are skipped but counted.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<(u64, Result<Frame, LineError>)>) {
        for &b in bytes {
            if b == b'\n' {
                self.line += 1;
                if self.overflow {
                    out.push((self.line, Err(LineError::TooLong)));
                } else if !self.buf.iter().all(|c| c.is_ascii_whitespace()) {
                    out.push((self.line, decode_line(&self.buf)));
                }
                self.buf.clear();
                self.overflow = false;
            } else if self.buf.len() > MAX_LINE {
                self.overflow = true;
            } else {
                self.buf.push(b);
            }
        }
    }

    /// Drops a partial line (the port closed mid-line); returns whether
    /// there was one, so the caller can report the truncated line.
    pub fn reset(&mut self) -> bool {
        let partial = self.overflow || !self.buf.is_empty();
        self.buf.clear();
        self.overflow = false;
        partial
    }

    /// The number of the line being read (lines completed so far + 1).
    pub fn next_line(&self) -> u64 {
        self.line + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(bytes: &[u8]) -> Vec<(u64, Result<Frame, LineError>)> {
        let mut d = LineDecoder::default();
        let mut out = Vec::new();
        d.feed(bytes, &mut out);
        out
    }

    #[test]
    fn tags_and_heartbeats_round_trip() {
        for dir in [None, Some(Direction::In), Some(Direction::Out)] {
            let line = encode_tag("E2801160", dir);
            let out = decode_all(line.as_bytes());
            assert_eq!(
                out,
                vec![(
                    1,
                    Ok(Frame::Tag {
                        id: "E2801160".into(),
                        direction: dir
                    })
                )]
            );
        }
        assert_eq!(
            decode_all(encode_heartbeat().as_bytes()),
            vec![(1, Ok(Frame::Heartbeat))]
        );
    }

    #[test]
    fn the_checksum_is_the_nmea_xor_over_the_body() {
        // By hand: 'H' ^ 'B' = 0x48 ^ 0x42 = 0x0A.
        assert_eq!(encode_heartbeat(), "$HB*0A\r\n");
    }

    #[test]
    fn bad_lines_are_reported_by_number_and_the_stream_recovers() {
        let good = encode_tag("A1B2", None);
        let mut flipped = good.clone().into_bytes();
        flipped[6] = b'3'; // A1B2 → A1B3: the checksum no longer matches
        let mut stream = Vec::new();
        stream.extend_from_slice(good.as_bytes());
        stream.extend_from_slice(&flipped);
        stream.extend_from_slice(b"$TAG,A1B2\r\n"); // cut short: no checksum
        stream.extend_from_slice(b"\r\n"); // blank
        stream.extend_from_slice(b"READER v1.2 ready\n");
        stream.extend_from_slice(&[b'$'; 200]);
        stream.push(b'\n');
        stream.extend_from_slice(b"$POS,1*");
        stream.extend_from_slice(format!("{:02X}\n", checksum(b"POS,1")).as_bytes());
        stream.extend_from_slice(good.as_bytes());
        let out = decode_all(&stream);
        let lines: Vec<u64> = out.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, vec![1, 2, 3, 5, 6, 7, 8]);
        assert!(matches!(out[1].1, Err(LineError::BadChecksum { .. })));
        assert_eq!(out[2].1, Err(LineError::NoChecksum));
        assert_eq!(out[3].1, Err(LineError::NoStart));
        assert_eq!(out[4].1, Err(LineError::TooLong));
        assert_eq!(out[5].1, Err(LineError::UnknownType("POS".into())));
        assert!(out[6].1.is_ok());
    }

    #[test]
    fn fields_are_checked_and_errors_never_show_the_id() {
        for (body, field) in [
            ("TAG", "id"),
            ("TAG,", "id"),
            ("TAG,AB-12", "id"),
            ("TAG,AB12,X", "direction"),
            ("TAG,AB12,I,9", "direction"),
        ] {
            let line = format!("${body}*{:02X}", checksum(body.as_bytes()));
            match decode_line(line.as_bytes()) {
                Err(e @ LineError::BadField { field: f, .. }) => {
                    assert_eq!(f, field, "{body}");
                    assert!(!e.to_string().contains("AB12"), "{e}");
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_partial_line_is_dropped_on_reset() {
        let mut d = LineDecoder::default();
        let mut out = Vec::new();
        d.feed(b"$TAG,A1", &mut out);
        assert!(out.is_empty());
        assert!(d.reset());
        d.feed(encode_tag("C3", None).as_bytes(), &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].1.is_ok());
        assert!(!d.reset());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn arbitrary_bytes_never_panic_and_the_buffer_stays_bounded(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8)
        ) {
            let mut d = LineDecoder::default();
            let mut out = Vec::new();
            for c in &chunks {
                d.feed(c, &mut out);
                prop_assert!(d.buf.len() <= MAX_LINE + 1);
            }
            let newlines = chunks.iter().flatten().filter(|&&b| b == b'\n').count();
            prop_assert!(out.len() <= newlines);
        }

        #[test]
        fn every_valid_id_round_trips(id in "[0-9A-Za-z]{1,32}", dir in 0u8..3) {
            let dir = [None, Some(Direction::In), Some(Direction::Out)][usize::from(dir)];
            let out = decode_all(encode_tag(&id, dir).as_bytes());
            prop_assert_eq!(out, vec![(1, Ok(Frame::Tag { id, direction: dir }))]);
        }
    }
}
