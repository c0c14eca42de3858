//! Alerts to a DingTalk (钉钉) group robot: a markdown message in Chinese
//! ([`super::robot_text`]) with a title, POSTed to
//! `https://oapi.dingtalk.com/robot/send?access_token=…`.
//!
//! The access token lives in its own file (`access_token_file`). A robot
//! in signed mode (加签) also has a secret (`secret_file`): each request
//! then carries `&timestamp=<ms>&sign=<s>`, where `s` is the HMAC-SHA256
//! of `"{timestamp}\n{secret}"` keyed with the secret, base64-encoded and
//! percent-encoded. DingTalk refuses a timestamp more than an hour off, so
//! the signature is made at each attempt. Errcode 130101 (more than 20
//! messages a minute) is retried with backoff; any other non-zero errcode
//! is a permanent failure.

use super::channel::{NoticeSender, RetryPolicy};
use super::robot::{self, Dialect, Robot};
use super::robot_text::{RobotMessage, TextContext};
use crate::toml_file::FieldError;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// A safe size for DingTalk's markdown text, in bytes.
pub const MAX_BYTES: usize = 18_000;

/// DingTalk's "too many messages" errcode.
pub const RATE_LIMITED: i64 = 130_101;

/// The `[notify.dingtalk]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DingtalkConfig {
    /// The robot's address without its token, e.g.
    /// `https://oapi.dingtalk.com/robot/send`. Without it there is no
    /// DingTalk channel.
    pub url: Option<String>,
    /// File holding the robot's `access_token`.
    pub access_token_file: Option<PathBuf>,
    /// File holding the signing secret (`SEC…`) of a robot in signed mode.
    pub secret_file: Option<PathBuf>,
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

impl Default for DingtalkConfig {
    fn default() -> Self {
        Self {
            url: None,
            access_token_file: None,
            secret_file: None,
            timeout_ms: 10_000,
            retry_min_ms: 3_000,
            retry_max_ms: 120_000,
            max_attempts: 8,
            max_queued: 1_000,
        }
    }
}

impl DingtalkConfig {
    /// Checks the address (https, no token in it) and that a token file
    /// goes with it.
    pub fn validate(&self) -> Result<(), FieldError> {
        let Some(url) = &self.url else {
            return Ok(());
        };
        robot::check_url(url, "access_token", "access_token_file")
            .map_err(|m| FieldError::new("url", m))?;
        if self.access_token_file.is_none() {
            return Err(FieldError::new(
                "access_token_file",
                "is required with url: the robot's access_token, in a file of its own",
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

/// DingTalk's signature for `timestamp_ms`, base64 (not yet URL-encoded).
pub fn sign(secret: &str, timestamp_ms: i64) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The JSON DingTalk takes for a markdown message.
pub fn payload(message: &RobotMessage) -> Value {
    json!({"msgtype": "markdown", "markdown": {"title": message.title, "text": message.markdown}})
}

/// DingTalk's way: token (and signature) in the query, markdown with a
/// title.
pub struct Dingtalk {
    url: String,
    token: String,
    secret: Option<String>,
}

impl Dingtalk {
    /// A robot at `url` (without token), signed when `secret` is given.
    pub fn new(url: &str, token: String, secret: Option<String>) -> Self {
        Self {
            url: url.to_owned(),
            token,
            secret,
        }
    }
}

impl Dialect for Dingtalk {
    fn kind(&self) -> &'static str {
        "dingtalk"
    }

    fn rate_limit_codes(&self) -> &'static [i64] {
        &[RATE_LIMITED]
    }

    fn request(&self, message: &RobotMessage, now_ms: i64) -> (String, Value) {
        let mut url = robot::with_param(&self.url, "access_token", &self.token);
        if let Some(secret) = &self.secret {
            url = robot::with_param(&url, "timestamp", &now_ms.to_string());
            url = robot::with_param(&url, "sign", &sign(secret, now_ms));
        }
        (url, payload(message))
    }

    fn secrets(&self) -> Vec<&str> {
        let mut s = vec![self.token.as_str()];
        s.extend(self.secret.as_deref());
        s
    }
}

/// Starts the DingTalk channel when `url` is set: reads the token and the
/// secret now, so a wrong path or an empty file stops the service at start.
pub fn start(
    config: &DingtalkConfig,
    text: TextContext,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<NoticeSender>> {
    let (Some(url), Some(token_file)) = (&config.url, &config.access_token_file) else {
        return Ok(None);
    };
    let token = robot::read_key(token_file, "DingTalk robot access_token")?;
    let secret = match &config.secret_file {
        Some(f) => Some(robot::read_key(f, "DingTalk robot secret")?),
        None => None,
    };
    let signed = if secret.is_some() {
        "signed"
    } else {
        "unsigned"
    };
    let robot = Robot {
        dialect: Dingtalk::new(url, token, secret),
        host: robot::host(url).to_owned(),
        text: TextContext {
            max_bytes: MAX_BYTES,
            ..text
        },
        client: robot::client(config.timeout_ms)?,
    };
    info!(
        "sending alert notices to the DingTalk robot at {} ({signed})",
        robot.host
    );
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
    fn the_signature_matches_dingtalks_recipe() {
        // HMAC-SHA256("1700000000000\nSECabc", key "SECabc"), base64.
        let s = sign("SECabc", 1_700_000_000_000);
        assert_eq!(s.len(), 44);
        assert_ne!(s, sign("SECabc", 1_700_000_000_001));
        assert_ne!(s, sign("SECabd", 1_700_000_000_000));
    }

    #[test]
    fn a_signed_request_carries_token_timestamp_and_encoded_sign() {
        let d = Dingtalk::new("https://h/robot/send", "t0k".into(), Some("SECx".into()));
        let m = RobotMessage {
            title: "标题".into(),
            markdown: "### 标题".into(),
        };
        let (url, body) = d.request(&m, 42);
        let expected = format!(
            "https://h/robot/send?access_token=t0k&timestamp=42&sign={}",
            robot::percent_encode(&sign("SECx", 42))
        );
        assert_eq!(url, expected);
        assert_eq!(body["msgtype"], "markdown");
        assert_eq!(body["markdown"]["title"], "标题");
        assert_eq!(body["markdown"]["text"], "### 标题");
    }

    #[test]
    fn a_url_needs_a_token_file() {
        let c = DingtalkConfig {
            url: Some("https://oapi.dingtalk.com/robot/send".into()),
            ..DingtalkConfig::default()
        };
        assert_eq!(
            c.validate().unwrap_err().path.to_string(),
            "access_token_file"
        );
    }
}
