//! The MQTT topic scheme (docs/telemetry.md).
//!
//! `{prefix}/{site}/{gateway}/reading/{device}` and siblings for `event`,
//! `status`, `cmd` and `cmd-ack`; alerts go to `alerts/{cell}/{severity}`.
//! Ids are validated as single topic levels where they enter (configs), so a
//! topic built here always parses back to the same parts.

use crate::alert::Severity;

/// What a gateway topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// Readings of one device.
    Reading,
    /// Events of one device.
    Event,
    /// The gateway's retained status (no device level).
    Status,
    /// Commands to one device.
    Cmd,
    /// Command acknowledgements from one device.
    CmdAck,
}

impl TopicKind {
    fn as_str(self) -> &'static str {
        match self {
            TopicKind::Reading => "reading",
            TopicKind::Event => "event",
            TopicKind::Status => "status",
            TopicKind::Cmd => "cmd",
            TopicKind::CmdAck => "cmd-ack",
        }
    }
}

/// A gateway topic taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicParts<'a> {
    /// Site level.
    pub site: &'a str,
    /// Gateway level.
    pub gateway: &'a str,
    /// What the topic carries.
    pub kind: TopicKind,
    /// Device level (absent for status).
    pub device: Option<&'a str>,
}

/// Builds and parses topics under one prefix (default `gw`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self::new(DEFAULT_PREFIX)
    }
}

/// The default topic prefix.
pub const DEFAULT_PREFIX: &str = "gw";

/// The `cmd` topic level signed gateway configs are addressed to
/// (`{prefix}/{site}/{gateway}/cmd/_config`, acked on `cmd-ack/_config`);
/// no device may take this id.
pub const CONFIG_DEVICE: &str = "_config";

impl Topics {
    /// Topics under `prefix` (no trailing slash).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix in use.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn device_topic(&self, site: &str, gateway: &str, kind: TopicKind, device: &str) -> String {
        format!(
            "{}/{site}/{gateway}/{}/{device}",
            self.prefix,
            kind.as_str()
        )
    }

    /// Where a device's readings go.
    pub fn reading(&self, site: &str, gateway: &str, device: &str) -> String {
        self.device_topic(site, gateway, TopicKind::Reading, device)
    }

    /// Where a device's events go.
    pub fn event(&self, site: &str, gateway: &str, device: &str) -> String {
        self.device_topic(site, gateway, TopicKind::Event, device)
    }

    /// Where a device's commands arrive.
    pub fn cmd(&self, site: &str, gateway: &str, device: &str) -> String {
        self.device_topic(site, gateway, TopicKind::Cmd, device)
    }

    /// Where a device's command acknowledgements go.
    pub fn cmd_ack(&self, site: &str, gateway: &str, device: &str) -> String {
        self.device_topic(site, gateway, TopicKind::CmdAck, device)
    }

    /// The gateway's retained status topic.
    pub fn status(&self, site: &str, gateway: &str) -> String {
        format!("{}/{site}/{gateway}/status", self.prefix)
    }

    /// Subscription filter for every reading of every gateway.
    pub fn all_readings(&self) -> String {
        format!("{}/+/+/reading/+", self.prefix)
    }

    /// Subscription filter for every event of every gateway.
    pub fn all_events(&self) -> String {
        format!("{}/+/+/event/+", self.prefix)
    }

    /// Subscription filter for every gateway status.
    pub fn all_status(&self) -> String {
        format!("{}/+/+/status", self.prefix)
    }

    /// Where an alert of a grid cell and severity goes (no prefix: alerts are
    /// a district-level stream, not a gateway's).
    pub fn alert(cell: &str, severity: Severity) -> String {
        format!("alerts/{cell}/{}", severity.as_str())
    }

    /// Takes a gateway topic apart; `None` if it is not one of ours.
    pub fn parse<'a>(&self, topic: &'a str) -> Option<TopicParts<'a>> {
        let rest = topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('/')?;
        let mut it = rest.split('/');
        let site = it.next().filter(|s| !s.is_empty())?;
        let gateway = it.next().filter(|s| !s.is_empty())?;
        let kind = match it.next()? {
            "reading" => TopicKind::Reading,
            "event" => TopicKind::Event,
            "status" => TopicKind::Status,
            "cmd" => TopicKind::Cmd,
            "cmd-ack" => TopicKind::CmdAck,
            _ => return None,
        };
        let device = it.next();
        if it.next().is_some() {
            return None;
        }
        match (kind, device) {
            (TopicKind::Status, None) => {}
            (TopicKind::Status, Some(_)) => return None,
            (_, Some(d)) if !d.is_empty() => {}
            _ => return None,
        }
        Some(TopicParts {
            site,
            gateway,
            kind,
            device,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_topics_parse_back() {
        let t = Topics::default();
        let r = t.reading("yard-a", "gw-1", "pile-1");
        assert_eq!(r, "gw/yard-a/gw-1/reading/pile-1");
        let p = t.parse(&r).unwrap();
        assert_eq!(
            (p.site, p.gateway, p.kind, p.device),
            ("yard-a", "gw-1", TopicKind::Reading, Some("pile-1"))
        );
        let s = t.status("yard-a", "gw-1");
        assert_eq!(t.parse(&s).unwrap().kind, TopicKind::Status);
        assert_eq!(
            t.parse(&t.cmd_ack("a", "b", "c")).unwrap().kind,
            TopicKind::CmdAck
        );
    }

    #[test]
    fn foreign_topics_do_not_parse() {
        let t = Topics::new("gw");
        assert!(t.parse("gwx/a/b/reading/c").is_none());
        assert!(t.parse("gw/a/b/reading").is_none());
        assert!(t.parse("gw/a/b/reading/c/d").is_none());
        assert!(t.parse("gw/a/b/status/c").is_none());
        assert!(t.parse("gw/a/b/nope/c").is_none());
        assert!(t.parse("alerts/c1/critical").is_none());
    }

    #[test]
    fn alert_topic_has_cell_and_severity() {
        assert_eq!(
            Topics::alert("cell-7", Severity::Critical),
            "alerts/cell-7/critical"
        );
    }
}
