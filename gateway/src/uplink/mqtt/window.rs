//! The MQTT uplink's delivery window: which outbox records are in flight,
//! which packet id carries each, and how far the uplink's cursor may move.
//!
//! Sans-IO: it never touches the client, the outbox or the clock. The
//! uplink tells it what happened (a record handed to the client, the packet
//! id the client chose, a PUBACK, a lost connection) and the time, and it
//! answers with what to do (send one more, wait, stop) and the new cursor.
//! Its guarantees, property-tested below against arbitrary orders of
//! acks, disconnects and restarts:
//!
//! - the cursor moves only over an unbroken run of PUBACKed records, so it
//!   never passes a record the broker has not confirmed;
//! - at most `inflight` records are unacknowledged at a time, and at most
//!   the rate limit's worth are handed out a second;
//! - after [`DeliveryWindow::reset`] (the connection dropped) the uplink
//!   reads again from the cursor, so everything unacknowledged is re-sent.

use super::super::rate::RateLimit;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A publish handed to the MQTT client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// The outbox record with this id.
    Record(u64),
    /// Something else at QoS 1 (the status, a command's ack): it takes a
    /// packet id but moves no cursor.
    Other,
}

/// What the window says about sending one more record now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send it.
    Send,
    /// `inflight` records are unacknowledged: wait for a PUBACK.
    Full,
    /// The rate limit says wait this long.
    Wait(Duration),
}

/// The in-flight records of one uplink, from its cursor on.
#[derive(Debug, Clone)]
pub struct DeliveryWindow {
    inflight: usize,
    max_publish_per_s: u32,
    rate: RateLimit,
    /// Publishes handed to the client whose packet id it has not named yet,
    /// in order (the client names them in the order it was handed them).
    queued: VecDeque<Publish>,
    /// Packet id → publish, for publishes on the wire.
    on_wire: HashMap<u16, Publish>,
    /// Records handed out since the cursor: id → PUBACKed.
    unacked: BTreeMap<u64, bool>,
    /// The first record not known to be delivered.
    cursor: u64,
}

impl DeliveryWindow {
    /// A window of `inflight` records (at least one) and `max_publish_per_s`
    /// sends a second, for an uplink whose cursor is at `cursor`, at `now`.
    pub fn new(inflight: usize, max_publish_per_s: u32, cursor: u64, now: Instant) -> Self {
        Self {
            inflight: inflight.max(1),
            max_publish_per_s,
            rate: RateLimit::new(max_publish_per_s, now),
            queued: VecDeque::new(),
            on_wire: HashMap::new(),
            unacked: BTreeMap::new(),
            cursor,
        }
    }

    /// The first record not known to be delivered: where a new connection
    /// starts sending, and what the outbox may forget below.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// How many more records may be handed out before the window is full.
    pub fn room(&self) -> usize {
        self.inflight.saturating_sub(self.unacked.len())
    }

    /// Whether nothing handed out is waiting for its PUBACK.
    pub fn is_idle(&self) -> bool {
        self.unacked.is_empty()
    }

    /// Whether one more record may be handed out at `now`. [`Next::Send`]
    /// takes a token of the rate limit, so ask only with a record at hand.
    pub fn next(&mut self, now: Instant) -> Next {
        if self.room() == 0 {
            return Next::Full;
        }
        match self.rate.take(now) {
            Ok(()) => Next::Send,
            Err(wait) => Next::Wait(wait),
        }
    }

    /// `publish` was handed to the client; its packet id follows in
    /// [`Self::on_outgoing`].
    pub fn handed(&mut self, publish: Publish) {
        if let Publish::Record(id) = publish {
            self.unacked.insert(id, false);
        }
        self.queued.push_back(publish);
    }

    /// Record `id` cannot be published at all (it is damaged): it counts as
    /// delivered so it never blocks the cursor. The new cursor, if it moved.
    pub fn skipped(&mut self, id: u64) -> Option<u64> {
        self.unacked.insert(id, true);
        self.advance()
    }

    /// The client sent the oldest queued publish as packet `pkid`.
    pub fn on_outgoing(&mut self, pkid: u16) {
        if let Some(publish) = self.queued.pop_front() {
            self.on_wire.insert(pkid, publish);
        }
    }

    /// The broker acknowledged packet `pkid`. The new cursor, if it moved:
    /// only over the unbroken run of acknowledged records at its head.
    pub fn on_puback(&mut self, pkid: u16) -> Option<u64> {
        let Some(Publish::Record(id)) = self.on_wire.remove(&pkid) else {
            return None;
        };
        match self.unacked.get_mut(&id) {
            Some(acked) => *acked = true,
            None => return None,
        }
        self.advance()
    }

    /// The connection is gone: forget every packet id and everything in
    /// flight (a new connection gets a fresh client, which knows none of
    /// it), and start the rate limit afresh at `now`. Returns the cursor:
    /// the uplink reads again from there, so every record not yet
    /// acknowledged is sent again.
    pub fn reset(&mut self, now: Instant) -> u64 {
        self.queued.clear();
        self.on_wire.clear();
        self.unacked.clear();
        self.rate = RateLimit::new(self.max_publish_per_s, now);
        self.cursor
    }

    fn advance(&mut self) -> Option<u64> {
        let mut next = None;
        while let Some((&id, &true)) = self.unacked.first_key_value() {
            self.unacked.remove(&id);
            next = Some(id + 1);
        }
        let next = next?;
        let cursor = self.unacked.first_key_value().map_or(next, |(&id, _)| id);
        self.cursor = self.cursor.max(cursor);
        Some(self.cursor)
    }
}

#[cfg(test)]
mod tests;
