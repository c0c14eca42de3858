//! Notification channels: where alerts go once raised, one module per
//! channel. MQTT (`alerts/{cell}/{severity}`), signed webhooks, e-mail, and
//! the WeCom and DingTalk group robots grid offices use; each runs apart
//! ([`channel`]), so a failing channel never blocks another or the
//! detectors.

pub mod channel;
pub mod dingtalk;
pub mod email;
pub mod group;
pub mod mqtt;
pub mod robot;
pub mod robot_text;
pub mod webhook;
pub mod wecom;

use crate::alerts::directory::Directory;
use crate::toml_file::FieldError;
use channel::NoticeSender;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// The `[notify]` section: one sub-section per channel besides MQTT (which
/// is configured by `[mqtt]` and always on).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The dashboard's public address (`https://grid.example.org`), so that
    /// robot messages link to the case; without it they give its number.
    pub dashboard_url: Option<String>,
    /// `[notify.webhook]`: signed JSON to one URL.
    pub webhook: webhook::WebhookConfig,
    /// `[notify.email]`: mail over SMTP with TLS to the people named.
    pub email: email::EmailConfig,
    /// `[notify.wecom]`: a WeCom (企业微信) group robot.
    pub wecom: wecom::WecomConfig,
    /// `[notify.dingtalk]`: a DingTalk (钉钉) group robot.
    pub dingtalk: dingtalk::DingtalkConfig,
    /// `[notify.group]`: grouping of new-case notices per cell or site.
    pub group: group::GroupConfig,
}

impl NotifyConfig {
    /// Checks every channel's section.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(url) = &self.dashboard_url {
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && !url.contains([' ', '?', '#'])
                && url.split("://").nth(1).is_some_and(|h| !h.is_empty());
            if !ok {
                return Err(FieldError::new(
                    "dashboard_url",
                    format!("{url:?} is not an http(s):// address without query, e.g. \"https://grid.example.org\""),
                ));
            }
        }
        self.webhook
            .validate()
            .map_err(|e| e.within(&["webhook"]))?;
        self.email.validate().map_err(|e| e.within(&["email"]))?;
        self.wecom.validate().map_err(|e| e.within(&["wecom"]))?;
        self.dingtalk
            .validate()
            .map_err(|e| e.within(&["dingtalk"]))?;
        self.group.validate().map_err(|e| e.within(&["group"]))
    }
}

/// What the channels need of the config: `[notify]`, and the site's offset
/// from UTC for the times in messages. Built by `From<&AnalyticsConfig>` in
/// [`crate::config`].
#[derive(Debug, Clone, Default)]
pub struct ChannelSettings {
    /// `[notify]`: every channel's settings.
    pub notify: NotifyConfig,
    /// Minutes east of UTC of the sites' local time (`[detect] utc_offset_min`).
    pub utc_offset_min: i32,
}

/// Starts every configured channel besides MQTT. Key and secret files are
/// read now, so a wrong path stops the service at start with a clear
/// message instead of failing every notice later.
pub fn start_channels(
    config: impl Into<ChannelSettings>,
    directory: Arc<Directory>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<NoticeSender>> {
    let config = config.into();
    let n = &config.notify;
    let text = robot_text::TextContext {
        zones: directory.zones(config.utc_offset_min),
        dashboard_url: n.dashboard_url.clone(),
        max_bytes: wecom::MAX_BYTES,
    };
    let mut channels = Vec::new();
    channels.extend(start_webhook(&n.webhook, shutdown)?);
    channels.extend(email::start(&n.email, directory, shutdown)?);
    channels.extend(wecom::start(&n.wecom, text.clone(), shutdown)?);
    channels.extend(dingtalk::start(&n.dingtalk, text, shutdown)?);
    Ok(channels)
}

/// Starts the webhook channel when `[notify.webhook] url` is set. The
/// secret is read from its own file, which should be readable by the
/// service's user only.
fn start_webhook(
    config: &webhook::WebhookConfig,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<webhook::WebhookSender>> {
    let (Some(url), Some(secret_file)) = (&config.url, &config.secret_file) else {
        return Ok(None);
    };
    let endpoint = webhook::Endpoint::parse(url).map_err(anyhow::Error::msg)?;
    let secret = robot::read_key(secret_file, "webhook secret")?.into_bytes();
    info!("sending alert notices to webhook {url}");
    Ok(Some(webhook::spawn(
        config.clone(),
        endpoint,
        secret,
        shutdown.clone(),
    )))
}
