//! Commands analytics sends to a gateway on a person's behalf, and the
//! gateway's answers: today one, cutting a socket from its alert.
//!
//! A person confirms "cut socket 2" on an alert's page; the API checks their
//! scope and role, writes `socket_off` in the case's trail and hands a
//! [`SocketOff`] to the service through a [`CommandSender`] (bounded: a full
//! queue answers 503, nothing waits). The service publishes it on the
//! gateway's `…/cmd/{device}` topic (`{"id", "action": "socket_off",
//! "socket"}`, docs/telemetry.md) and subscribes to `…/cmd-ack/+`. The
//! command id names the case (`alert-{case}-{ms}`), so the gateway's ack
//! finds its case without state that a restart would lose, and lands in the
//! trail as `socket_off_done` or `socket_off_failed` with the gateway's
//! words. An ack whose id names no case of ours is counted and dropped.

use crate::store::Store;
use gridwatch_telemetry::topic::{TopicKind, Topics};
use gridwatch_telemetry::Timestamp;
use rumqttc::{AsyncClient, QoS};
use serde::Deserialize;
use std::collections::VecDeque;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Commands the API may queue for the service before it answers 503.
pub const QUEUE: usize = 64;

/// "Open this socket's relay", for the socket an alert is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOff {
    /// The case it was sent from.
    pub alert_id: i64,
    /// The command id, echoed by the gateway's ack.
    pub id: String,
    /// Site, gateway and device of the socket (from the alert's entity).
    pub site: String,
    /// The gateway that drives the pile.
    pub gateway: String,
    /// The pile.
    pub device: String,
    /// The socket, from 1.
    pub socket: u16,
}

impl SocketOff {
    /// The command for case `alert_id` about `entity`, when the entity is a
    /// socket (`site/gateway/device#n`); `None` for a flat, a meter, a pile.
    pub fn for_entity(alert_id: i64, entity: &str, now: Timestamp) -> Option<Self> {
        let (path, n) = entity.rsplit_once('#')?;
        let socket: u16 = n.parse().ok().filter(|s| *s > 0)?;
        let mut parts = path.split('/');
        let (site, gateway, device) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || [site, gateway, device].iter().any(|p| p.is_empty()) {
            return None;
        }
        Some(Self {
            alert_id,
            id: format!("alert-{alert_id}-{}", now.0),
            site: site.to_owned(),
            gateway: gateway.to_owned(),
            device: device.to_owned(),
            socket,
        })
    }

    /// The gateway's command topic for the pile.
    pub fn topic(&self, topics: &Topics) -> String {
        topics.cmd(&self.site, &self.gateway, &self.device)
    }

    /// The JSON the gateway's `command` module reads.
    pub fn payload(&self) -> Vec<u8> {
        serde_json::json!({"id": self.id, "action": "socket_off", "socket": self.socket})
            .to_string()
            .into_bytes()
    }
}

/// The case a command id was sent from (`alert-{case}-{ms}`), if it is one
/// of ours.
pub fn case_of(command_id: &str) -> Option<i64> {
    let rest = command_id.strip_prefix("alert-")?;
    let (case, ms) = rest.split_once('-')?;
    ms.parse::<i64>().ok()?;
    case.parse().ok()
}

/// The gateway's answer (its `command::Ack`), read leniently: only what the
/// trail needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CommandAck {
    /// The command id it answers.
    #[serde(default)]
    pub id: Option<String>,
    /// Whether the gateway carried it out.
    pub ok: bool,
    /// What was done.
    #[serde(default)]
    pub result: Option<String>,
    /// Why not.
    #[serde(default)]
    pub error: Option<String>,
}

/// What the API holds to queue a command for the service.
#[derive(Debug, Clone)]
pub struct CommandSender(mpsc::Sender<SocketOff>);

impl CommandSender {
    /// A sender and the receiver the service reads, [`QUEUE`] deep.
    pub fn channel() -> (Self, mpsc::Receiver<SocketOff>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Self(tx), rx)
    }

    /// Queues `c`; `false` when the queue is full or the service stopped.
    pub fn send(&self, c: SocketOff) -> bool {
        self.0.try_send(c).is_ok()
    }
}

/// The next command from the API; never resolves without a receiver (no
/// API), so a `select!` branch on it simply never fires.
pub async fn next(rx: Option<&mut mpsc::Receiver<SocketOff>>) -> Option<SocketOff> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The service's side: commands waiting for the client, and acks coming in.
pub struct CommandLink {
    topics: Topics,
    store: Store,
    waiting: VecDeque<SocketOff>,
    /// Acks whose id names no case, or whose case is gone.
    pub unmatched_acks: u64,
}

impl CommandLink {
    /// Commands to gateways under `prefix`, acks noted in `store`.
    pub fn new(prefix: &str, store: Store) -> Self {
        Self {
            topics: Topics::new(prefix),
            store,
            waiting: VecDeque::new(),
            unmatched_acks: 0,
        }
    }

    /// The subscription filter for every gateway's command answers.
    pub fn ack_filter(&self) -> String {
        format!("{}/+/+/cmd-ack/+", self.topics.prefix())
    }

    /// Whether `topic` is a command answer (handled here, not by ingest).
    pub fn is_ack(&self, topic: &str) -> bool {
        self.topics
            .parse(topic)
            .is_some_and(|p| p.kind == TopicKind::CmdAck)
    }

    /// Takes a command from the API.
    pub fn queue(&mut self, c: SocketOff) {
        self.waiting.push_back(c);
    }

    /// Hands waiting commands to the client while it has room.
    pub fn hand_over(&mut self, client: &AsyncClient) {
        while let Some(c) = self.waiting.front() {
            let topic = c.topic(&self.topics);
            if client
                .try_publish(topic.clone(), QoS::AtLeastOnce, false, c.payload())
                .is_err()
            {
                break;
            }
            info!(
                alert_id = c.alert_id,
                "sent socket_off for socket {} to {topic} ({})", c.socket, c.id
            );
            self.waiting.pop_front();
        }
    }

    /// Notes a gateway's answer in its case's trail at `now`.
    pub fn on_ack(&mut self, topic: &str, payload: &[u8], now: Timestamp) {
        let Some(parts) = self.topics.parse(topic) else {
            return;
        };
        let ack: CommandAck = match serde_json::from_slice(payload) {
            Ok(a) => a,
            Err(e) => {
                self.unmatched_acks += 1;
                warn!(topic, "a command answer that is not one: {e}");
                return;
            }
        };
        let Some(case) = ack.id.as_deref().and_then(case_of) else {
            self.unmatched_acks += 1;
            debug!(topic, "a command answer for a command not sent from a case");
            return;
        };
        let (action, note) = if ack.ok {
            ("socket_off_done", ack.result.unwrap_or_default())
        } else {
            ("socket_off_failed", ack.error.unwrap_or_default())
        };
        match self.store.note(case, now, parts.gateway, action, &note) {
            Ok(()) => info!(
                alert_id = case,
                "{} answered: {action} {note}", parts.gateway
            ),
            Err(e) => {
                self.unmatched_acks += 1;
                warn!(
                    alert_id = case,
                    "the answer from {} has nowhere to go: {e}", parts.gateway
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_entity_makes_a_command_and_its_id_names_the_case() {
        let c = SocketOff::for_entity(17, "yard-a/gw-yard-a/pile-1#2", Timestamp(1_000)).unwrap();
        assert_eq!(
            c.topic(&Topics::new("gw")),
            "gw/yard-a/gw-yard-a/cmd/pile-1"
        );
        let v: serde_json::Value = serde_json::from_slice(&c.payload()).unwrap();
        assert_eq!(v["action"], "socket_off");
        assert_eq!(v["socket"], 2);
        assert_eq!(case_of(v["id"].as_str().unwrap()), Some(17));
    }

    #[test]
    fn only_a_socket_can_be_cut() {
        for entity in [
            "s01/b02/0301",
            "yard-a/gw/pile-1",
            "a/b/c#0",
            "a/b/c#x",
            "a/b#1",
            "a/b/c/d#1",
        ] {
            assert_eq!(
                SocketOff::for_entity(1, entity, Timestamp(0)),
                None,
                "{entity}"
            );
        }
    }

    #[test]
    fn foreign_command_ids_name_no_case() {
        for id in ["c-17", "alert-x-1", "alert-3", "alert-3-x", ""] {
            assert_eq!(case_of(id), None, "{id}");
        }
    }

    #[test]
    fn an_ack_lands_in_its_cases_trail_and_a_stranger_is_counted() {
        use crate::store::Scope;
        use gridwatch_telemetry::{Alert, AlertState, Severity};
        let store = Store::open_in_memory().unwrap();
        let alert = Alert {
            schema: 1,
            id: "x".into(),
            rule: "socket_overcurrent".into(),
            entity: "yard-a/gw-yard-a/pile-1#2".into(),
            cell: "c".into(),
            site: "yard-a".into(),
            severity: Severity::Critical,
            state: AlertState::Open,
            ts: Timestamp(1),
            title: String::new(),
            summary: String::new(),
            evidence: Default::default(),
        };
        let case = store.record(&alert, &Default::default()).unwrap().id;
        let mut link = CommandLink::new("gw", store.clone());
        let topic = "gw/yard-a/gw-yard-a/cmd-ack/pile-1";
        assert!(link.is_ack(topic) && !link.is_ack("gw/yard-a/gw-yard-a/reading/pile-1"));
        let ack = format!(
            r#"{{"schema":1,"ts":5,"device":"pile-1","id":"alert-{case}-3","ok":true,"result":"socket 2 switched off"}}"#
        );
        link.on_ack(topic, ack.as_bytes(), Timestamp(7));
        let last = store.audit(&Scope::All, case).unwrap().pop().unwrap();
        assert_eq!(
            (
                last.actor.as_str(),
                last.action.as_str(),
                last.note.as_deref()
            ),
            (
                "gw-yard-a",
                "socket_off_done",
                Some("socket 2 switched off")
            )
        );
        link.on_ack(topic, br#"{"ok":true,"id":"c-1"}"#, Timestamp(8));
        link.on_ack(topic, b"nonsense", Timestamp(8));
        assert_eq!(link.unmatched_acks, 2);
    }
}
