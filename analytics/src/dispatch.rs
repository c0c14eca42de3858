//! The service's side of the life cycle: every raised alert goes into the
//! store (folded, re-opened or new), and as event time moves on, cases not
//! acknowledged in time escalate and resolved cases whose re-check is due
//! are closed.
//!
//! Time here is event time — the timestamp of the latest reading — so a
//! replay or a simulated district running faster than real time escalates
//! exactly as the live run would. A store failure never stops the detectors
//! or any channel: the alert still goes to MQTT, the webhook and e-mail
//! (marked `"stored": false`, with the store's error), and the failure is
//! logged and counted in [`Cases::store_failures`]. The first failure of an
//! episode also raises one [`STORE_FAILED_RULE`] alert, on every channel,
//! so somebody repairs the store: until then no alert can be acknowledged,
//! silenced or escalated.

use crate::alerts::directory::Directory;
use crate::lifecycle::AlertsConfig;
use crate::notify::channel::{Notice, NoticeSender};
use crate::notify::group::{GroupConfig, Grouper};
use crate::store::{AlertCase, RecordedKind, Store};
use gridwatch_telemetry::{Alert, AlertState, Evidence, Severity, Timestamp, SCHEMA_VERSION};
use serde_json::json;
use std::sync::Arc;
use tracing::{error, info, warn};

/// Rule of the alert raised once when the alert store starts failing.
pub const STORE_FAILED_RULE: &str = "alert_store_failed";

/// How much event time passes between two escalation and re-check sweeps.
pub const SWEEP_EVERY_MS: i64 = 10_000;

/// The sections of the config that cases follow: the life cycle's times and
/// how notices are grouped. Built from the whole config by
/// `From<&AnalyticsConfig>` (in [`crate::config`]), so this module does not
/// depend on the file's layout.
#[derive(Debug, Clone, Default)]
pub struct CasesConfig {
    /// Cool-downs, acknowledgement times, re-check.
    pub alerts: AlertsConfig,
    /// How notices to one person are grouped.
    pub group: GroupConfig,
}

/// The store, the directory and the clocks of the life cycle.
#[derive(Debug)]
pub struct Cases {
    store: Store,
    directory: Arc<Directory>,
    config: AlertsConfig,
    now: Option<Timestamp>,
    last_sweep: Option<Timestamp>,
    channels: Vec<NoticeSender>,
    grouper: Grouper,
    store_failures: u64,
    /// The last record failed; cleared at the next that succeeds.
    store_failing: bool,
    /// The [`STORE_FAILED_RULE`] alert waiting for the service to publish.
    store_alert: Option<Alert>,
}

impl Cases {
    /// Cases kept in `store`, escalated along `directory`.
    pub fn new(store: Store, directory: Arc<Directory>, config: impl Into<CasesConfig>) -> Self {
        let config = config.into();
        Self {
            store,
            directory,
            config: config.alerts,
            now: None,
            last_sweep: None,
            channels: Vec::new(),
            grouper: Grouper::new(&config.group),
            store_failures: 0,
            store_failing: false,
            store_alert: None,
        }
    }

    /// The [`STORE_FAILED_RULE`] alert raised by the last [`Self::record`],
    /// if it started a store failure episode: the service publishes it on
    /// MQTT like any alert (the channels already have it).
    pub fn take_store_alert(&mut self) -> Option<Alert> {
        self.store_alert.take()
    }

    /// Alerts the store could not record since start (each still went out
    /// on every channel).
    pub fn store_failures(&self) -> u64 {
        self.store_failures
    }

    /// Also sends notices (new, re-opened, escalated) to a webhook.
    pub fn with_webhook(self, webhook: Option<NoticeSender>) -> Self {
        self.with_channel(webhook)
    }

    /// Also sends notices to a channel (webhook, e-mail); each gets every
    /// notice, on its own queue.
    pub fn with_channel(mut self, channel: Option<NoticeSender>) -> Self {
        self.channels.extend(channel);
        self
    }

    /// Also sends notices to each of `channels`.
    pub fn with_channels(mut self, channels: Vec<NoticeSender>) -> Self {
        self.channels.extend(channels);
        self
    }

    /// Sent, failed and dropped notices per channel, for the status line.
    pub fn channel_stats(&self) -> String {
        crate::notify::channel::describe(&self.channels)
    }

    fn recipient_names(&self, cell: &str, site: &str, level: i64) -> Vec<String> {
        self.directory
            .recipients(cell, site, level)
            .iter()
            .map(|u| u.name.clone())
            .collect()
    }

    fn notify(&self, case: i64, at: Timestamp, body: serde_json::Value) {
        let notice = Notice {
            case,
            at_ms: at.0,
            body: body.to_string().into_bytes(),
        };
        for c in &self.channels {
            c.send(notice.clone());
        }
    }

    fn notify_escalated(&self, c: &AlertCase, at: Timestamp, recipients: &[String]) {
        self.notify(
            c.id,
            at,
            json!({
                "event": "escalated",
                "case_id": c.id,
                "escalation_level": c.escalation_level,
                "recipients": recipients,
                "case": c,
            }),
        );
    }

    /// Records `alert`; returns whether it should go out on the channels
    /// (false only when a silence covers it). A store failure is logged,
    /// counted, and the alert still goes out on every channel: a channel
    /// must not lose it because the disk is full. Silences and inhibitions
    /// live in the store, so an alert it cannot record is never silenced.
    pub fn record(&mut self, alert: &Alert) -> bool {
        match self.store.record(alert, &self.config) {
            Ok(r) => {
                if self.store_failing {
                    self.store_failing = false;
                    info!(
                        "the alert store records again ({} failures since start)",
                        self.store_failures
                    );
                }
                if !matches!(r.kind, RecordedKind::Folded | RecordedKind::Duplicate) {
                    // A tip-off that came first is corroborated now.
                    if let Err(e) =
                        self.store
                            .corroborate_tips(r.id, &alert.rule, &alert.entity, alert.ts)
                    {
                        warn!(
                            "case {}: tip-offs on {} not linked: {e}",
                            r.id, alert.entity
                        );
                    }
                }
                match r.kind {
                    RecordedKind::Folded | RecordedKind::Duplicate => {}
                    RecordedKind::Raised => {
                        info!(alert = r.id, "alert {} opened as case {}", alert.id, r.id)
                    }
                    RecordedKind::Reopened => info!(
                        alert = r.id,
                        "case {} re-opened: {} returned within the cool-down", r.id, alert.rule
                    ),
                    RecordedKind::Recurrence { of } => info!(
                        alert = r.id,
                        "case {} opened as a recurrence of case {of}", r.id
                    ),
                }
                if let Some(s) = r.silenced_by {
                    info!(
                        alert = r.id,
                        "case {} is silenced by silence {s}; nobody is notified", r.id
                    );
                    return false;
                }
                if let Some(by) = r.inhibited_by {
                    info!(
                        alert = r.id,
                        "case {} is inhibited by case {by}, its root cause; nobody is notified",
                        r.id
                    );
                    return false;
                }
                if r.notify() {
                    let event = match r.kind {
                        RecordedKind::Reopened => "reopened",
                        RecordedKind::Recurrence { .. } => "recurrence",
                        _ => "raised",
                    };
                    let recipients = self.recipient_names(&alert.cell, &alert.site, 0);
                    let notice = json!({
                        "event": event,
                        "case_id": r.id,
                        "escalation_level": 0,
                        "recipients": recipients,
                        "alert": alert,
                    });
                    if self.grouper.enabled() && !self.channels.is_empty() {
                        let key = self.grouper.key(&alert.cell, &alert.site).to_owned();
                        self.grouper.push(&key, notice, alert.ts);
                    } else {
                        self.notify(r.id, alert.ts, notice);
                    }
                }
                true
            }
            Err(e) => {
                self.store_failures += 1;
                error!(
                    alert_id = %alert.id,
                    "could not store alert {}: {e}; sending it to every channel anyway, \
                     without a case ({} store failures since start)",
                    alert.id, self.store_failures
                );
                self.notify_unstored(alert, &e.to_string());
                if !self.store_failing {
                    self.store_failing = true;
                    let health = store_failed(alert, &e.to_string());
                    error!(
                        alert_id = %health.id,
                        "{}: {}", health.title, health.summary
                    );
                    self.notify_unstored(&health, &e.to_string());
                    self.store_alert = Some(health);
                }
                true
            }
        }
    }

    /// Sends an alert the store could not record to every channel, marked
    /// `"stored": false` with the store's error. Not grouped: the grouper
    /// holds notices for cases, and an alert without a case must not wait
    /// behind them.
    fn notify_unstored(&mut self, alert: &Alert, store_error: &str) {
        let recipients = self.recipient_names(&alert.cell, &alert.site, 0);
        self.notify(
            0,
            alert.ts,
            json!({
                "event": "raised",
                "case_id": null,
                "stored": false,
                "store_error": store_error,
                "escalation_level": 0,
                "recipients": recipients,
                "alert": alert,
            }),
        );
    }

    /// Moves event time to `ts` (never backwards) and, every
    /// [`SWEEP_EVERY_MS`], escalates and re-checks what is due.
    pub fn tick(&mut self, ts: Timestamp) {
        let now = self.now.map_or(ts, |n| n.max(ts));
        self.now = Some(now);
        for batch in self.grouper.due(now) {
            let first = batch
                .items
                .first()
                .and_then(|n| n["case_id"].as_i64())
                .unwrap_or(0);
            self.notify(
                first,
                now,
                json!({
                    "event": "group",
                    "group": batch.key,
                    "dropped": batch.dropped,
                    "notices": batch.items,
                }),
            );
        }
        if self
            .last_sweep
            .is_some_and(|l| now.since(l) < SWEEP_EVERY_MS)
        {
            return;
        }
        self.last_sweep = Some(now);
        self.sweep(now);
    }

    /// Escalates and re-checks at `now`.
    pub fn sweep(&mut self, now: Timestamp) {
        match self.store.escalate_due(now, &self.config.ack_within) {
            Ok(cases) => {
                for c in cases {
                    let names = self.recipient_names(&c.cell, &c.site, c.escalation_level);
                    self.notify_escalated(&c, now, &names);
                    let to = if names.is_empty() {
                        "nobody in the directory".to_owned()
                    } else {
                        names.join(", ")
                    };
                    warn!(
                        alert = c.id,
                        cell = %c.cell,
                        "{} case {} in cell {} was not acknowledged in time; escalated to level {} ({to}): {}",
                        c.severity, c.id, c.cell, c.escalation_level, c.title
                    );
                }
            }
            Err(e) => error!("could not escalate alerts: {e}"),
        }
        match self.store.verify_due(now) {
            Ok(ids) => {
                for id in ids {
                    info!(
                        alert = id,
                        "case {id} closed: the condition did not return before the re-check"
                    );
                }
            }
            Err(e) => error!("could not re-check resolved alerts: {e}"),
        }
    }
}

/// The one alert of a store failure episode, routed like the alert the
/// store could not record (its cell and site hear of it first).
fn store_failed(trigger: &Alert, error: &str) -> Alert {
    Alert {
        schema: SCHEMA_VERSION,
        id: format!("{STORE_FAILED_RULE}:analytics:{}", trigger.ts.0),
        rule: STORE_FAILED_RULE.to_owned(),
        entity: "analytics/alert-store".into(),
        cell: trigger.cell.clone(),
        site: trigger.site.clone(),
        severity: Severity::Critical,
        state: AlertState::Open,
        ts: trigger.ts,
        title: "The alert store cannot record alerts".into(),
        summary: format!(
            "alerts still go to every channel, without a case, so none can be acknowledged, \
             silenced or escalated until the store is repaired; the store said: {error}"
        ),
        evidence: Evidence::default(),
    }
}
