//! What the group-robot channels ([`super::wecom`], [`super::dingtalk`])
//! share: the address check, the HTTPS POST, and reading the robot's JSON
//! answer.
//!
//! Chinese grid offices are reached through WeCom (企业微信) and DingTalk
//! group robots: a POST of a JSON message to an HTTPS address that carries
//! the robot's key. Both answer HTTP 200 with `{"errcode":0,"errmsg":"ok"}`
//! or another errcode; the rate-limit codes are retried later like a busy
//! server, any other code is a permanent failure (a wrong key, a message
//! the robot refuses) that retrying cannot fix. Queueing, retries and the
//! sent/failed/dropped counters are [`super::channel`]'s, as for the
//! webhook. Keys and secrets never reach a log line: the channel is named
//! by its host, and errors are stripped of the address before logging.

use super::channel::{Deliver, Notice, Outcome};
use super::robot_text::{message, RobotMessage, TextContext};

/// Checks a robot's address: `https://`, or `http://127.0.0.1` for tests,
/// and no key in it (`secret_param`, e.g. `key`), which belongs in a file.
pub fn check_url(url: &str, secret_param: &str, secret_field: &str) -> Result<(), String> {
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://127.0.0.1") {
        if !(r.is_empty() || r.starts_with([':', '/'])) {
            return Err(format!("{url:?} is not https://"));
        }
        r
    } else {
        return Err(format!(
            "{url:?} is not an https:// URL (plain http is allowed only to 127.0.0.1, for tests)"
        ));
    };
    let host = rest.split(['/', '?']).next().unwrap_or("");
    if url.starts_with("https://") && (host.is_empty() || host.contains(['@', ' '])) {
        return Err(format!("{url:?} has no usable host"));
    }
    if rest.contains([' ', '\r', '\n', '#']) {
        return Err(format!("{url:?} is not a usable URL"));
    }
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    if query
        .split('&')
        .any(|p| p.split('=').next() == Some(secret_param))
    {
        return Err(format!(
            "carries the robot's {secret_param}; give the URL without it and put the \
             {secret_param} in {secret_field} (a file readable by the service only)"
        ));
    }
    Ok(())
}

/// The host of a checked URL, to name the channel in logs without its key.
pub fn host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// `url` with `name=value` appended to its query, the value
/// percent-encoded.
pub fn with_param(url: &str, name: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{name}={}", percent_encode(value))
}

/// Percent-encodes everything but the unreserved characters of RFC 3986
/// (so base64's `+`, `/` and `=` become `%2B`, `%2F`, `%3D`).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

/// Sorts a robot's answer: HTTP status and JSON body.
pub fn classify(status: u16, body: &[u8], rate_limit_codes: &[i64]) -> Outcome {
    if status == 429 || status >= 500 {
        return Outcome::Retry(format!("HTTP {status}"));
    }
    if !(200..300).contains(&status) {
        return Outcome::Permanent(format!("HTTP {status}"));
    }
    let answer: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return Outcome::Retry("the answer is not JSON".into()),
    };
    let Some(code) = answer["errcode"].as_i64() else {
        return Outcome::Retry("the answer has no errcode".into());
    };
    let msg: String = answer["errmsg"]
        .as_str()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    match code {
        0 => Outcome::Delivered,
        // -1: "system busy" on both robots.
        -1 => Outcome::Retry(format!("errcode -1 (busy): {msg}")),
        c if rate_limit_codes.contains(&c) => {
            Outcome::Retry(format!("errcode {c} (rate limited): {msg}"))
        }
        c => Outcome::Permanent(format!("errcode {c}: {msg}")),
    }
}

/// How one robot turns a message into a request: the full address (with
/// its key and, for DingTalk, signature) and the JSON body.
pub trait Dialect: Send + Sync + 'static {
    /// `wecom` or `dingtalk`.
    fn kind(&self) -> &'static str;
    /// Its rate-limit errcodes, retried later.
    fn rate_limit_codes(&self) -> &'static [i64];
    /// The address to POST to at wall time `now_ms`, and the body.
    fn request(&self, message: &RobotMessage, now_ms: i64) -> (String, serde_json::Value);
    /// The secrets to scrub from any text before it is logged.
    fn secrets(&self) -> Vec<&str>;
}

/// A robot channel: the dialect, the text context and an HTTPS client.
pub struct Robot<D> {
    /// The robot's own way of addressing and signing.
    pub dialect: D,
    /// The address without the key, for naming the channel.
    pub host: String,
    /// Time zone, dashboard and size limit for the text.
    pub text: TextContext,
    /// reqwest with rustls and the system's roots.
    pub client: reqwest::Client,
}

impl<D: Dialect> Robot<D> {
    fn scrub(&self, text: String) -> String {
        self.dialect
            .secrets()
            .into_iter()
            .filter(|s| !s.is_empty())
            .fold(text, |t, s| {
                t.replace(s, "***").replace(&percent_encode(s), "***")
            })
    }
}

impl<D: Dialect> Deliver for Robot<D> {
    fn name(&self) -> String {
        format!("{} robot {}", self.dialect.kind(), self.host)
    }

    fn kind(&self) -> &'static str {
        self.dialect.kind()
    }

    async fn attempt(&self, notice: &Notice) -> Outcome {
        let value: serde_json::Value = match serde_json::from_slice(&notice.body) {
            Ok(v) => v,
            Err(e) => return Outcome::Permanent(format!("the notice is not JSON: {e}")),
        };
        let Some(message) = message(&value, &self.text) else {
            // A notice the robots have no text for is nobody's failure.
            return Outcome::Delivered;
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let (url, body) = self.dialect.request(&message, now_ms);
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            // without_url: the address carries the key.
            Err(e) => return Outcome::Retry(self.scrub(e.without_url().to_string())),
        };
        let status = response.status().as_u16();
        match response.bytes().await {
            Ok(b) => match classify(status, &b, self.dialect.rate_limit_codes()) {
                Outcome::Retry(why) => Outcome::Retry(self.scrub(why)),
                Outcome::Permanent(why) => Outcome::Permanent(self.scrub(why)),
                Outcome::Delivered => Outcome::Delivered,
            },
            Err(e) => {
                Outcome::Retry(self.scrub(format!("cannot read the answer: {}", e.without_url())))
            }
        }
    }
}

/// The HTTPS client for a robot: rustls with the system's roots, as the
/// gateway's InfluxDB uplink uses.
pub fn client(timeout_ms: u64) -> anyhow::Result<reqwest::Client> {
    // rustls cannot choose when two back ends are built in; an earlier
    // choice (the same one) stands.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(timeout_ms))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot set up the HTTPS client for a robot: {e}"))
}

/// Reads a key or secret from its own file: the first line, trimmed, not
/// empty.
pub fn read_key(path: &std::path::Path, what: &str) -> anyhow::Result<String> {
    let text = super::channel::read_secret_file(path, what)?;
    let key = text.lines().next().unwrap_or("").trim().to_owned();
    if key.is_empty() {
        anyhow::bail!(
            "the first line of the {what} file {} is empty",
            path.display()
        );
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_local_http_without_a_key_is_accepted() {
        assert!(check_url(
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
            "key",
            "key_file"
        )
        .is_ok());
        assert!(check_url("http://127.0.0.1:8080/send", "key", "key_file").is_ok());
        let e = check_url("http://example.org/send", "key", "key_file").unwrap_err();
        assert!(e.contains("https://"), "{e}");
        assert!(check_url("http://127.0.0.1.evil.org/", "key", "key_file").is_err());
        let e = check_url("https://x.org/send?key=abc", "key", "key_file").unwrap_err();
        assert!(e.contains("key_file") && !e.contains("abc"), "{e}");
        assert!(check_url("https:///send", "key", "key_file").is_err());
    }

    #[test]
    fn errcodes_sort_into_delivered_retry_and_permanent() {
        let ok = br#"{"errcode":0,"errmsg":"ok"}"#;
        assert_eq!(classify(200, ok, &[45009]), Outcome::Delivered);
        let limited = br#"{"errcode":45009,"errmsg":"api freq out of limit"}"#;
        assert!(matches!(
            classify(200, limited, &[45009]),
            Outcome::Retry(_)
        ));
        let bad = br#"{"errcode":93000,"errmsg":"invalid webhook url"}"#;
        assert!(matches!(
            classify(200, bad, &[45009]),
            Outcome::Permanent(_)
        ));
        assert!(matches!(classify(502, b"", &[]), Outcome::Retry(_)));
        assert!(matches!(classify(404, b"", &[]), Outcome::Permanent(_)));
        assert!(matches!(classify(200, b"<html>", &[]), Outcome::Retry(_)));
    }

    #[test]
    fn base64_signs_are_percent_encoded() {
        assert_eq!(percent_encode("a+b/c=="), "a%2Bb%2Fc%3D%3D");
        assert_eq!(with_param("https://h/s", "k", "v"), "https://h/s?k=v");
        assert_eq!(
            with_param("https://h/s?a=1", "k", "v"),
            "https://h/s?a=1&k=v"
        );
        assert_eq!(
            host("https://oapi.dingtalk.com/robot/send"),
            "oapi.dingtalk.com"
        );
    }
}
