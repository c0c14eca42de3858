//! Notification channels: where alerts go once raised, one module per
//! channel. MQTT (`alerts/{cell}/{severity}`), signed webhooks and e-mail;
//! each runs apart ([`channel`]), so a failing channel never blocks another
//! or the detectors.

pub mod channel;
pub mod email;
pub mod group;
pub mod mqtt;
pub mod webhook;

use serde::{Deserialize, Serialize};

/// The `[notify]` section: one sub-section per channel besides MQTT (which
/// is configured by `[mqtt]` and always on).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// `[notify.webhook]`: signed JSON to one URL.
    pub webhook: webhook::WebhookConfig,
    /// `[notify.email]`: mail over SMTP with TLS to the people named.
    pub email: email::EmailConfig,
    /// `[notify.group]`: grouping of new-case notices per cell or site.
    pub group: group::GroupConfig,
}

impl NotifyConfig {
    /// Checks every channel's section.
    pub fn validate(&self) -> Result<(), crate::config::FieldError> {
        self.webhook
            .validate()
            .map_err(|e| e.within(&["webhook"]))?;
        self.email.validate().map_err(|e| e.within(&["email"]))?;
        self.group.validate().map_err(|e| e.within(&["group"]))
    }
}
