//! What an InfluxDB write response means for the batch, without I/O.
//!
//! InfluxDB keys a point by measurement, tags and timestamp, so writing a
//! batch again is harmless: that is what makes retrying and splitting safe.
//! The rules (docs/pitfalls.md): 2xx is written; 429 and 5xx (and a request
//! timeout) are retried, honouring `Retry-After`; 400 and 413 mean some line
//! (or the size) is refused, so the batch is split until the refused lines
//! stand alone and go to the dead-letter file; any other 4xx (a wrong token,
//! an unknown bucket) is permanent for the whole batch: dead-lettered, never
//! retried forever.

use std::time::Duration;

/// What to do with a batch after the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Stored.
    Written,
    /// Not stored, try again later (after `after`, if the server said).
    Retry {
        /// The server's `Retry-After`, when it gave seconds.
        after: Option<Duration>,
        /// Why, for the log.
        message: String,
    },
    /// Refused for good.
    Refused {
        /// Whether single lines may be at fault (split and retry the halves).
        per_line: bool,
        /// The server's message.
        message: String,
    },
}

/// Longest server message kept (a 400 may echo the whole batch).
const MAX_MESSAGE: usize = 500;

/// Classifies a response from its status, `Retry-After` header and body.
pub fn classify(status: u16, retry_after: Option<&str>, body: &str) -> Verdict {
    let message = || format!("HTTP {status}: {}", server_message(body));
    match status {
        200..=299 => Verdict::Written,
        408 | 429 | 500..=599 => Verdict::Retry {
            after: retry_after.and_then(|v| v.trim().parse::<u64>().ok().map(Duration::from_secs)),
            message: message(),
        },
        400 | 413 => Verdict::Refused {
            per_line: true,
            message: message(),
        },
        _ => Verdict::Refused {
            per_line: false,
            message: message(),
        },
    }
}

/// The human part of an error body: `error` (InfluxDB 1.x) or `message`
/// (2.x, 3.x) of a JSON body, else the text; shortened.
pub fn server_message(body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            ["error", "message"]
                .iter()
                .find_map(|k| v.get(*k).and_then(|m| m.as_str()).map(str::to_owned))
        });
    let text = from_json.unwrap_or_else(|| body.trim().to_owned());
    let mut cut: String = text.chars().take(MAX_MESSAGE).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    if cut.is_empty() {
        "(no message)".into()
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_statuses_are_written() {
        assert_eq!(classify(204, None, ""), Verdict::Written);
        assert_eq!(classify(200, None, "{}"), Verdict::Written);
    }

    #[test]
    fn overload_and_server_errors_are_retried_honouring_retry_after() {
        assert_eq!(
            classify(429, Some("7"), ""),
            Verdict::Retry {
                after: Some(Duration::from_secs(7)),
                message: "HTTP 429: (no message)".into()
            }
        );
        assert!(matches!(
            classify(503, Some("Wed, 21 Oct 2015 07:28:00 GMT"), "busy"),
            Verdict::Retry { after: None, .. }
        ));
        assert!(matches!(classify(500, None, ""), Verdict::Retry { .. }));
    }

    #[test]
    fn a_bad_line_is_refused_per_line_with_the_servers_message() {
        let v1 = r#"{"error":"partial write: field type conflict: input field \"v\" on measurement \"m\" is type float, already exists as type string dropped=1"}"#;
        match classify(400, None, v1) {
            Verdict::Refused { per_line, message } => {
                assert!(per_line);
                assert!(
                    message.starts_with("HTTP 400: partial write: field type conflict"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        let v2 = r#"{"code":"invalid","message":"unable to parse 'x': missing fields"}"#;
        assert!(matches!(
            classify(400, None, v2),
            Verdict::Refused { per_line: true, message } if message == "HTTP 400: unable to parse 'x': missing fields"
        ));
    }

    #[test]
    fn other_client_errors_are_permanent_for_the_whole_batch() {
        assert!(matches!(
            classify(
                401,
                None,
                r#"{"code":"unauthorized","message":"bad token"}"#
            ),
            Verdict::Refused {
                per_line: false,
                ..
            }
        ));
        assert!(matches!(
            classify(404, None, "no bucket"),
            Verdict::Refused {
                per_line: false,
                ..
            }
        ));
    }

    #[test]
    fn long_messages_are_shortened() {
        let m = server_message(&"x".repeat(2000));
        assert!(m.chars().count() <= MAX_MESSAGE + 1);
    }
}
