//! Alerts to a WeCom (企业微信) group robot: a markdown message in Chinese
//! ([`super::robot_text`]) POSTed to
//! `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`.
//!
//! The robot's key is a secret (anyone with it can post to the group), so
//! it lives in its own file (`key_file`), not in the config, and never in a
//! log line. Errcode 45009 (more than 20 messages a minute) is retried with
//! backoff; any other non-zero errcode is a permanent failure.

use super::channel::{NoticeSender, RetryPolicy};
use super::robot::{self, Dialect, Robot};
use super::robot_text::{RobotMessage, TextContext};
use crate::toml_file::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// WeCom's limit on markdown content, in bytes.
pub const MAX_BYTES: usize = 4096;

/// WeCom's "too many messages" errcode.
pub const RATE_LIMITED: i64 = 45009;

/// The `[notify.wecom]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WecomConfig {
    /// The robot's address without its key, e.g.
    /// `https://qyapi.weixin.qq.com/cgi-bin/webhook/send`. Without it there
    /// is no WeCom channel.
    pub url: Option<String>,
    /// File holding the robot's key (the `key=` of its webhook address).
    pub key_file: Option<PathBuf>,
    /// Per-attempt limit for the whole request.
    pub timeout_ms: u64,
    /// First retry delay; doubles per attempt.
    pub retry_min_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// Attempts per message before it is counted failed.
    pub max_attempts: u32,
    /// Messages waiting beyond this are dropped (and counted).
    pub max_queued: usize,
}

impl Default for WecomConfig {
    fn default() -> Self {
        Self {
            url: None,
            key_file: None,
            timeout_ms: 10_000,
            retry_min_ms: 3_000,
            retry_max_ms: 120_000,
            max_attempts: 8,
            max_queued: 1_000,
        }
    }
}

impl WecomConfig {
    /// Checks the address (https, no key in it) and that a key file goes
    /// with it.
    pub fn validate(&self) -> Result<(), FieldError> {
        let Some(url) = &self.url else {
            return Ok(());
        };
        robot::check_url(url, "key", "key_file").map_err(|m| FieldError::new("url", m))?;
        if self.key_file.is_none() {
            return Err(FieldError::new(
                "key_file",
                "is required with url: the robot's key, in a file of its own",
            ));
        }
        self.policy().validate()
    }

    /// Queueing and retry settings for [`super::channel`].
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            timeout_ms: self.timeout_ms,
            retry_min_ms: self.retry_min_ms,
            retry_max_ms: self.retry_max_ms,
            max_attempts: self.max_attempts,
            max_queued: self.max_queued,
        }
    }
}

/// WeCom's way: the key in the query, `msgtype: markdown` with `content`.
pub struct Wecom {
    url: String,
    key: String,
}

impl Wecom {
    /// A robot at `url` (without key) with its `key`.
    pub fn new(url: &str, key: String) -> Self {
        Self {
            url: url.to_owned(),
            key,
        }
    }
}

/// The JSON WeCom takes for a markdown message.
pub fn payload(message: &RobotMessage) -> Value {
    json!({"msgtype": "markdown", "markdown": {"content": message.markdown}})
}

impl Dialect for Wecom {
    fn kind(&self) -> &'static str {
        "wecom"
    }

    fn rate_limit_codes(&self) -> &'static [i64] {
        &[RATE_LIMITED]
    }

    fn request(&self, message: &RobotMessage, _now_ms: i64) -> (String, Value) {
        (
            robot::with_param(&self.url, "key", &self.key),
            payload(message),
        )
    }

    fn secrets(&self) -> Vec<&str> {
        vec![&self.key]
    }
}

/// Starts the WeCom channel when `url` is set: reads the key now, so a
/// wrong path stops the service at start with a clear message.
pub fn start(
    config: &WecomConfig,
    text: TextContext,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<NoticeSender>> {
    let (Some(url), Some(key_file)) = (&config.url, &config.key_file) else {
        return Ok(None);
    };
    let key = robot::read_key(key_file, "WeCom robot key")?;
    let robot = Robot {
        dialect: Wecom::new(url, key),
        host: robot::host(url).to_owned(),
        text: TextContext {
            max_bytes: MAX_BYTES,
            ..text
        },
        client: robot::client(config.timeout_ms)?,
    };
    info!("sending alert notices to the WeCom robot at {}", robot.host);
    Ok(Some(super::channel::spawn(
        robot,
        config.policy(),
        shutdown.clone(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_needs_a_key_file_and_no_key_inside() {
        let mut c = WecomConfig {
            url: Some("https://qyapi.weixin.qq.com/cgi-bin/webhook/send".into()),
            ..WecomConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().path.to_string(), "key_file");
        c.key_file = Some("/etc/gridwatch/wecom.key".into());
        assert!(c.validate().is_ok());
        c.url = Some("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k".into());
        assert_eq!(c.validate().unwrap_err().path.to_string(), "url");
        c.url = Some("http://qyapi.weixin.qq.com/cgi-bin/webhook/send".into());
        assert_eq!(c.validate().unwrap_err().path.to_string(), "url");
    }

    #[test]
    fn the_key_goes_in_the_query_and_the_text_in_markdown_content() {
        let w = Wecom::new("https://h/cgi-bin/webhook/send", "k-1".into());
        let m = RobotMessage {
            title: "t".into(),
            markdown: "### t".into(),
        };
        let (url, body) = w.request(&m, 0);
        assert_eq!(url, "https://h/cgi-bin/webhook/send?key=k-1");
        assert_eq!(body["msgtype"], "markdown");
        assert_eq!(body["markdown"]["content"], "### t");
    }
}
