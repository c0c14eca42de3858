//! Alerts by e-mail: the same notices as the webhook (new, re-opened and
//! escalated cases, and the per-cell groups of `[notify.group]`), as plain
//! text mails to the people the directory names, over SMTP with TLS.
//!
//! Grid staff read these on a phone in the street, so the text is the
//! console rendering of the alert ([`crate::render_alert`]): where, what was
//! measured against which limit, and what to do. Recipients come from the
//! notice (on-duty staff and the site's property managers; backups and then
//! admins on escalation) and are mapped to addresses with the directory's
//! `email` field; people without one get no mail.
//!
//! TLS is never optional: `starttls` (port 587) refuses a server that does
//! not offer STARTTLS before anything is sent, `implicit` (port 465) speaks
//! TLS from the first byte. The server's certificate is checked against the
//! system's roots, plus `ca_file` for a relay with a private CA. The login
//! lives in its own file, not in the config.
//!
//! Delivery runs on the shared [`super::channel`] task: a mail server that
//! is down is retried with backoff and never blocks the other channels or
//! the detectors; a permanent SMTP refusal (5xx) is logged and not retried.

use super::channel::{Deliver, Notice, NoticeSender, Outcome, RetryPolicy};
use crate::alerts::directory::Directory;
use crate::toml_file::FieldError;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailTls {
    /// Plain connect, then STARTTLS, required (submission, port 587).
    #[default]
    Starttls,
    /// TLS from the start (SMTPS, port 465).
    Implicit,
}

/// The `[notify.email]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// The SMTP server's host name (checked against its certificate).
    /// Without it there is no e-mail channel.
    pub server: Option<String>,
    /// Port; default 587 with `starttls`, 465 with `implicit`.
    pub port: Option<u16>,
    /// `starttls` or `implicit`.
    pub tls: EmailTls,
    /// The sender, e.g. `Gridwatch <gridwatch@example.org>`.
    pub from: Option<String>,
    /// User name on the first line, password on the second (chmod 600).
    /// Without it the server is used without logging in.
    pub credentials_file: Option<PathBuf>,
    /// An extra CA certificate (PEM) to trust, for a relay with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Per-attempt limit for the whole SMTP conversation.
    pub timeout_ms: u64,
    /// First retry delay; doubles per attempt.
    pub retry_min_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// Attempts per mail before it is dropped.
    pub max_attempts: u32,
    /// Mails waiting beyond this are dropped (and counted).
    pub max_queued: usize,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            server: None,
            port: None,
            tls: EmailTls::Starttls,
            from: None,
            credentials_file: None,
            ca_file: None,
            timeout_ms: 30_000,
            retry_min_ms: 5_000,
            retry_max_ms: 300_000,
            max_attempts: 8,
            max_queued: 1_000,
        }
    }
}

impl EmailConfig {
    /// Checks that a sender goes with a server and that it is an address.
    pub fn validate(&self) -> Result<(), FieldError> {
        let Some(server) = &self.server else {
            return Ok(());
        };
        if server.is_empty() || server.contains([' ', '/', ':']) {
            return Err(FieldError::new(
                "server",
                format!("{server:?} is not a host name (put the port in `port`)"),
            ));
        }
        match &self.from {
            None => {
                return Err(FieldError::new(
                    "from",
                    "is required with server: mail needs a sender, e.g. \"Gridwatch <gridwatch@example.org>\"",
                ))
            }
            Some(f) => {
                f.parse::<Mailbox>().map_err(|e| {
                    FieldError::new("from", format!("{f:?} is not an e-mail address ({e})"))
                })?;
            }
        }
        self.policy().validate()
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            EmailTls::Starttls => 587,
            EmailTls::Implicit => 465,
        })
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

/// A mail ready to go: who, subject and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Recipients with their names.
    pub to: Vec<Mailbox>,
    /// The subject line.
    pub subject: String,
    /// Plain text.
    pub text: String,
}

/// Turns a notice into a mail to the people it names who have an address;
/// `None` when nobody does (or the notice is not one this channel knows).
pub fn compose(notice: &Value, directory: &Directory) -> Option<Mail> {
    let mut names: Vec<String> = Vec::new();
    let mut add_names = |v: &Value| {
        for n in v["recipients"].as_array().into_iter().flatten() {
            if let Some(n) = n.as_str() {
                if !names.iter().any(|x| x == n) {
                    names.push(n.to_owned());
                }
            }
        }
    };
    let (subject, text) = match notice["event"].as_str()? {
        "group" => {
            let items = notice["notices"].as_array()?;
            items.iter().for_each(&mut add_names);
            let mut text = String::new();
            for item in items {
                text.push_str(&alert_text(item)?);
                text.push_str("\n\n");
            }
            if let Some(d) = notice["dropped"].as_u64().filter(|d| *d > 0) {
                text.push_str(&format!(
                    "({d} more were left out of this mail; see the dashboard.)\n"
                ));
            }
            let group = notice["group"].as_str().unwrap_or("?");
            (
                format!("[Gridwatch] {} new alert(s) in {group}", items.len()),
                text,
            )
        }
        "escalated" => {
            add_names(notice);
            let c = &notice["case"];
            let title = c["title"].as_str().unwrap_or("?");
            let severity = c["severity"].as_str().unwrap_or("?").to_uppercase();
            let level = notice["escalation_level"].as_i64().unwrap_or(0);
            let text = format!(
                "Nobody acknowledged this {} alert in time; it now comes to you (escalation level {level}).\n\n\
                 {title}\n  where:  site {}, cell {}\n  what:   {}\n  state:  {}\n  case:   {}\n\n\
                 Acknowledge it on the dashboard to stop further escalation.\n",
                severity.to_lowercase(),
                c["site"].as_str().unwrap_or("?"),
                c["cell"].as_str().unwrap_or("?"),
                c["summary"].as_str().unwrap_or(""),
                c["state"].as_str().unwrap_or("?"),
                notice["case_id"],
            );
            (format!("[Gridwatch] ESCALATED {severity} {title}"), text)
        }
        _ => {
            add_names(notice);
            let text = alert_text(notice)?;
            let a = &notice["alert"];
            let severity = a["severity"].as_str().unwrap_or("?").to_uppercase();
            let again = match notice["event"].as_str() {
                Some("reopened") => " (re-opened)",
                Some("recurrence") => " (recurrence)",
                _ => "",
            };
            (
                format!(
                    "[Gridwatch] {severity}{again} {}",
                    a["title"].as_str().unwrap_or("?")
                ),
                text,
            )
        }
    };
    let to: Vec<Mailbox> = names
        .iter()
        .filter_map(|n| directory.user(n))
        .filter_map(|u| {
            let addr = u.email.as_deref()?.parse().ok()?;
            Some(Mailbox::new(Some(u.name.clone()), addr))
        })
        .collect();
    (!to.is_empty()).then_some(Mail { to, subject, text })
}

/// One alert notice as people read it, with its case number.
fn alert_text(notice: &Value) -> Option<String> {
    let alert: gridwatch_telemetry::Alert = serde_json::from_value(notice["alert"].clone()).ok()?;
    let case = match notice["store_error"].as_str() {
        // The alert store failed: there is no case to look up.
        Some(e) => format!("none, the alert store failed ({e}); see the analytics log"),
        None => notice["case_id"].to_string(),
    };
    Some(format!(
        "{}\n  case:     {case}",
        crate::render_alert(&alert)
    ))
}

struct Email {
    name: String,
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    directory: Arc<Directory>,
}

impl Deliver for Email {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn kind(&self) -> &'static str {
        "email"
    }

    async fn attempt(&self, notice: &Notice) -> Outcome {
        let value: Value = match serde_json::from_slice(&notice.body) {
            Ok(v) => v,
            Err(e) => return Outcome::Permanent(format!("the notice is not JSON: {e}")),
        };
        let Some(mail) = compose(&value, &self.directory) else {
            // Nobody to write to is not a failure of the channel.
            return Outcome::Delivered;
        };
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject);
        for to in mail.to {
            builder = builder.to(to);
        }
        let message = match builder.header(ContentType::TEXT_PLAIN).body(mail.text) {
            Ok(m) => m,
            Err(e) => return Outcome::Permanent(format!("cannot build the mail: {e}")),
        };
        match self.transport.send(message).await {
            Ok(_) => Outcome::Delivered,
            Err(e) if e.is_permanent() => Outcome::Permanent(e.to_string()),
            Err(e) => Outcome::Retry(e.to_string()),
        }
    }
}

/// Starts the e-mail channel when `[notify.email] server` is set: reads the
/// credentials and CA files now, so a wrong path stops the service at start
/// with a clear message instead of failing every mail later.
pub fn start(
    config: &EmailConfig,
    directory: Arc<Directory>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<NoticeSender>> {
    let Some(server) = &config.server else {
        return Ok(None);
    };
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("[notify.email] {}: {}", e.path, e.message))?;
    let from: Mailbox = config
        .from
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(|e| anyhow::anyhow!("[notify.email] from: {e}"))?;
    let mut tls = TlsParameters::builder(server.clone());
    if let Some(ca) = &config.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| anyhow::anyhow!("cannot read the SMTP CA file {}: {e}", ca.display()))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            anyhow::anyhow!(
                "the SMTP CA file {} is not a PEM certificate: {e}",
                ca.display()
            )
        })?;
        tls = tls.add_root_certificate(cert);
    }
    let tls = tls
        .build_rustls()
        .map_err(|e| anyhow::anyhow!("TLS settings for SMTP server {server}: {e}"))?;
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.as_str())
        .port(config.port())
        .timeout(Some(Duration::from_millis(config.timeout_ms)))
        .tls(match config.tls {
            EmailTls::Starttls => Tls::Required(tls),
            EmailTls::Implicit => Tls::Wrapper(tls),
        });
    if let Some(file) = &config.credentials_file {
        let text = super::channel::read_secret_file(file, "SMTP credentials")?;
        let mut lines = text.lines().map(str::trim);
        let (Some(user), Some(password)) = (lines.next(), lines.next()) else {
            anyhow::bail!(
                "the SMTP credentials file {} needs the user name on the first line and the password on the second",
                file.display()
            );
        };
        builder = builder.credentials(Credentials::new(user.to_owned(), password.to_owned()));
    }
    let name = format!("e-mail via {server}:{}", config.port());
    tracing::info!(
        "sending alert notices by e-mail via {server}:{} ({:?})",
        config.port(),
        config.tls
    );
    Ok(Some(super::channel::spawn(
        Email {
            name,
            from,
            transport: builder.build(),
            directory,
        },
        config.policy(),
        shutdown.clone(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn directory() -> Directory {
        let h = crate::alerts::directory::token_sha256;
        Directory::from_toml_str(
            &format!(
                "[[cells]]\nid = \"cell-07\"\non_duty = [\"wang\"]\nbackups = [\"zhao\"]\n\
                 [[users]]\nname = \"wang\"\nrole = \"grid_staff\"\ntoken_sha256 = \"{}\"\nemail = \"wang@example.org\"\n\
                 [[users]]\nname = \"zhao\"\nrole = \"grid_staff\"\ntoken_sha256 = \"{}\"\n",
                h("w"),
                h("z")
            ),
            "directory.toml",
        )
        .unwrap()
    }

    fn alert() -> Value {
        use gridwatch_telemetry::{Alert, AlertState, Evidence, Severity, Timestamp};
        serde_json::to_value(Alert {
            schema: 1,
            id: "socket_overcurrent:yard-a/gw-1/pile-1#3:1".into(),
            rule: "socket_overcurrent".into(),
            entity: "yard-a/gw-1/pile-1#3".into(),
            cell: "cell-07".into(),
            site: "yard-a".into(),
            severity: Severity::Critical,
            state: AlertState::Open,
            ts: Timestamp(1_764_000_000_000),
            title: "Overcurrent on socket 3".into(),
            summary: "7 A against 5.5 A".into(),
            evidence: Evidence::default(),
        })
        .unwrap()
    }

    #[test]
    fn a_raised_alert_goes_to_the_named_people_with_an_address() {
        let n = json!({"event": "raised", "case_id": 4, "recipients": ["wang", "zhao"], "alert": alert()});
        let m = compose(&n, &directory()).unwrap();
        assert_eq!(m.to.len(), 1, "zhao has no address: {:?}", m.to);
        assert_eq!(m.to[0].email.to_string(), "wang@example.org");
        assert_eq!(m.subject, "[Gridwatch] CRITICAL Overcurrent on socket 3");
        assert!(m.text.contains("7 A against 5.5 A"), "{}", m.text);
        assert!(m.text.contains("case:     4"), "{}", m.text);
    }

    #[test]
    fn an_alert_the_store_failed_on_still_mails_and_says_so() {
        let n = json!({"event": "raised", "case_id": null, "stored": false,
            "store_error": "no such table: alerts", "recipients": ["wang"], "alert": alert()});
        let m = compose(&n, &directory()).unwrap();
        assert_eq!(m.to[0].email.to_string(), "wang@example.org");
        assert!(
            m.text
                .contains("the alert store failed (no such table: alerts)"),
            "{}",
            m.text
        );
    }

    #[test]
    fn nobody_with_an_address_means_no_mail() {
        let n = json!({"event": "escalated", "case_id": 4, "escalation_level": 1, "recipients": ["zhao"], "case": {}});
        assert!(compose(&n, &directory()).is_none());
    }

    #[test]
    fn a_group_is_one_mail_listing_every_alert() {
        let item =
            json!({"event": "raised", "case_id": 4, "recipients": ["wang"], "alert": alert()});
        let n = json!({"event": "group", "group": "cell-07", "dropped": 2, "notices": [item.clone(), item]});
        let m = compose(&n, &directory()).unwrap();
        assert_eq!(m.subject, "[Gridwatch] 2 new alert(s) in cell-07");
        assert_eq!(m.text.matches("Overcurrent on socket 3").count(), 2);
        assert!(m.text.contains("2 more were left out"));
    }

    #[test]
    fn a_server_needs_a_valid_sender() {
        let mut c = EmailConfig {
            server: Some("smtp.example.org".into()),
            ..EmailConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().path.to_string(), "from");
        c.from = Some("not an address".into());
        assert!(c
            .validate()
            .unwrap_err()
            .message
            .contains("not an e-mail address"));
        c.from = Some("Gridwatch <gw@example.org>".into());
        assert!(c.validate().is_ok());
        assert_eq!(c.port(), 587);
        c.tls = EmailTls::Implicit;
        assert_eq!(c.port(), 465);
        c.server = Some("smtp.example.org:25".into());
        assert_eq!(c.validate().unwrap_err().path.to_string(), "server");
    }
}
