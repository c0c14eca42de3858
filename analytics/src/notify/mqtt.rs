//! Alerts to MQTT: `alerts/{cell}/{severity}`, QoS 1, not retained, JSON.
//!
//! An alert is the one thing analytics must not lose. rumqttc keeps
//! un-acknowledged publishes only in memory and throws them away when the
//! broker answers a reconnect with "no stored session" (docs/pitfalls.md), so
//! this channel keeps its own account: [`AlertOutbox`] holds every alert until
//! its PUBACK and puts the un-acknowledged ones back in line after a reconnect
//! that lost the session. Delivery is therefore at-least-once; the alert id is
//! stable per episode, so a consumer folds a repeat into the alert it has.
//!
//! The outbox is sans-IO: it is told what rumqttc did (handed over, packet id
//! assigned, acknowledged, reconnected) and says what to send next.

use gridwatch_telemetry::codec::{self, CodecError};
use gridwatch_telemetry::topic::Topics;
use gridwatch_telemetry::Alert;
use std::collections::{BTreeMap, VecDeque};

/// One alert on its way to the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingAlert {
    /// Order of arrival, so that re-sent alerts keep their order.
    seq: u64,
    /// The alert id, for log lines.
    pub id: String,
    /// `alerts/{cell}/{severity}`.
    pub topic: String,
    /// The alert as JSON.
    pub payload: Vec<u8>,
}

impl OutgoingAlert {
    /// The message for `alert`: its topic and its JSON encoding.
    pub fn for_alert(alert: &Alert) -> Result<Self, CodecError> {
        Ok(Self {
            seq: 0,
            id: alert.id.clone(),
            topic: Topics::alert(&alert.cell, alert.severity),
            payload: codec::encode(alert)?,
        })
    }
}

/// Alerts waiting for the broker, from raise to PUBACK.
#[derive(Debug, Default)]
pub struct AlertOutbox {
    max_waiting: usize,
    next_seq: u64,
    /// Not yet handed to the MQTT client.
    waiting: VecDeque<OutgoingAlert>,
    /// Handed to the client; it has not assigned a packet id yet.
    handed: VecDeque<OutgoingAlert>,
    /// Sent with this packet id, awaiting PUBACK.
    inflight: BTreeMap<u16, OutgoingAlert>,
    /// Held back by the client because its packet id was still in use.
    parked: Option<(u16, OutgoingAlert)>,
    dropped: u64,
    acknowledged: u64,
}

impl AlertOutbox {
    /// An outbox that keeps at most `max_waiting` alerts not yet handed over.
    pub fn new(max_waiting: usize) -> Self {
        Self {
            max_waiting: max_waiting.max(1),
            ..Self::default()
        }
    }

    /// Queues an alert. When the queue is full the oldest waiting alert is
    /// dropped and returned, so the caller can say so in the log.
    pub fn push(&mut self, mut alert: OutgoingAlert) -> Option<OutgoingAlert> {
        alert.seq = self.next_seq;
        self.next_seq += 1;
        self.waiting.push_back(alert);
        if self.waiting.len() > self.max_waiting {
            self.dropped += 1;
            return self.waiting.pop_front();
        }
        None
    }

    /// The next alert to hand to the client, if any.
    pub fn next_waiting(&self) -> Option<&OutgoingAlert> {
        self.waiting.front()
    }

    /// The client accepted the alert [`Self::next_waiting`] returned.
    pub fn mark_handed(&mut self) {
        if let Some(a) = self.waiting.pop_front() {
            self.handed.push_back(a);
        }
    }

    /// rumqttc sent a publish with `pkid` (`Outgoing::Publish`). A packet id
    /// already in flight is a re-send after a resumed session; any other is
    /// the oldest alert handed over.
    pub fn on_sent(&mut self, pkid: u16) {
        if self.inflight.contains_key(&pkid) {
            return;
        }
        if let Some((parked_id, _)) = &self.parked {
            if *parked_id == pkid {
                if let Some((id, a)) = self.parked.take() {
                    self.inflight.insert(id, a);
                }
                return;
            }
        }
        if let Some(a) = self.handed.pop_front() {
            self.inflight.insert(pkid, a);
        }
    }

    /// rumqttc held a publish back because `pkid` is still in flight
    /// (`Outgoing::AwaitAck`); it sends it after that PUBACK.
    pub fn on_parked(&mut self, pkid: u16) {
        if let Some(a) = self.handed.pop_front() {
            self.parked = Some((pkid, a));
        }
    }

    /// The broker acknowledged `pkid`; returns the alert if it was one of ours.
    pub fn on_acked(&mut self, pkid: u16) -> Option<OutgoingAlert> {
        let a = self.inflight.remove(&pkid)?;
        self.acknowledged += 1;
        Some(a)
    }

    /// The broker accepted a connection. Without a stored session rumqttc has
    /// discarded everything it had not had acknowledged, so those alerts go
    /// back to the front of the line, in their original order.
    pub fn on_connected(&mut self, session_present: bool) {
        if session_present {
            return;
        }
        let mut all: Vec<OutgoingAlert> = self.handed.drain(..).collect();
        all.extend(std::mem::take(&mut self.inflight).into_values());
        all.extend(self.parked.take().map(|(_, a)| a));
        all.extend(self.waiting.drain(..));
        all.sort_by_key(|a| a.seq);
        self.waiting = all.into();
    }

    /// Alerts not yet acknowledged by the broker.
    pub fn unacknowledged(&self) -> usize {
        self.waiting.len()
            + self.handed.len()
            + self.inflight.len()
            + usize::from(self.parked.is_some())
    }

    /// Alerts dropped because too many were waiting.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Alerts the broker acknowledged.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str) -> OutgoingAlert {
        OutgoingAlert {
            seq: 0,
            id: id.into(),
            topic: "alerts/cell-07/critical".into(),
            payload: b"{}".to_vec(),
        }
    }

    fn hand_all(o: &mut AlertOutbox) -> Vec<String> {
        let mut ids = Vec::new();
        while let Some(a) = o.next_waiting() {
            ids.push(a.id.clone());
            o.mark_handed();
        }
        ids
    }

    #[test]
    fn an_alert_leaves_only_on_its_puback() {
        let mut o = AlertOutbox::new(10);
        o.push(alert("a"));
        assert_eq!(hand_all(&mut o), ["a"]);
        o.on_sent(1);
        assert_eq!(o.unacknowledged(), 1);
        assert_eq!(o.on_acked(1).unwrap().id, "a");
        assert_eq!(o.unacknowledged(), 0);
        assert!(o.on_acked(1).is_none());
    }

    #[test]
    fn a_reconnect_without_session_resends_unacknowledged_alerts_in_order() {
        let mut o = AlertOutbox::new(10);
        for id in ["a", "b", "c", "d"] {
            o.push(alert(id));
        }
        hand_all(&mut o);
        o.on_sent(1); // a
        o.on_sent(2); // b
        o.on_acked(1);
        // c and d were handed over but never sent; the connection dropped.
        o.push(alert("e"));
        o.on_connected(false);
        assert_eq!(hand_all(&mut o), ["b", "c", "d", "e"]);
    }

    #[test]
    fn a_resumed_session_does_not_duplicate_what_rumqttc_re_sends() {
        let mut o = AlertOutbox::new(10);
        o.push(alert("a"));
        o.push(alert("b"));
        hand_all(&mut o);
        o.on_sent(1);
        o.on_connected(true);
        // rumqttc re-sends a with pkid 1, then sends b for the first time.
        o.on_sent(1);
        o.on_sent(2);
        assert_eq!(o.on_acked(1).unwrap().id, "a");
        assert_eq!(o.on_acked(2).unwrap().id, "b");
        assert!(o.next_waiting().is_none());
    }

    #[test]
    fn a_parked_publish_is_tracked_under_its_packet_id() {
        let mut o = AlertOutbox::new(10);
        o.push(alert("a"));
        o.push(alert("b"));
        hand_all(&mut o);
        o.on_sent(1);
        o.on_parked(1);
        o.on_acked(1);
        o.on_sent(1);
        assert_eq!(o.on_acked(1).unwrap().id, "b");
        assert_eq!(o.unacknowledged(), 0);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_waiting_alert() {
        let mut o = AlertOutbox::new(2);
        assert!(o.push(alert("a")).is_none());
        assert!(o.push(alert("b")).is_none());
        assert_eq!(o.push(alert("c")).unwrap().id, "a");
        assert_eq!(o.dropped(), 1);
        assert_eq!(hand_all(&mut o), ["b", "c"]);
    }
}
