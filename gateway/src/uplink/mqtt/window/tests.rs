use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

fn window(inflight: usize, cursor: u64) -> (DeliveryWindow, Instant) {
    let now = Instant::now();
    (DeliveryWindow::new(inflight, 1_000, cursor, now), now)
}

#[test]
fn the_cursor_waits_for_the_oldest_record() {
    let (mut w, now) = window(4, 10);
    for id in 10..13 {
        assert_eq!(w.next(now), Next::Send);
        w.handed(Publish::Record(id));
    }
    for pkid in 1..=3 {
        w.on_outgoing(pkid);
    }
    // 11 and 12 are acknowledged first: 10 still holds the cursor.
    assert_eq!(w.on_puback(3), None);
    assert_eq!(w.on_puback(2), None);
    assert_eq!(w.cursor(), 10);
    assert_eq!(w.on_puback(1), Some(13));
    assert!(w.is_idle());
}

#[test]
fn a_full_window_and_the_rate_say_when_to_stop() {
    let now = Instant::now();
    let mut w = DeliveryWindow::new(2, 10, 0, now);
    w.handed(Publish::Record(0));
    w.handed(Publish::Record(1));
    assert_eq!(w.room(), 0);
    assert_eq!(w.next(now), Next::Full);
    w.on_outgoing(1);
    w.on_puback(1);
    // 10 a second with a burst of one: the burst was not spent yet.
    assert_eq!(w.next(now), Next::Send);
    assert!(matches!(w.next(now), Next::Wait(d) if d > Duration::ZERO));
}

#[test]
fn other_publishes_and_unknown_packets_move_nothing() {
    let (mut w, _) = window(4, 5);
    w.handed(Publish::Other);
    w.handed(Publish::Record(5));
    w.on_outgoing(7);
    w.on_outgoing(8);
    assert_eq!(w.on_puback(7), None);
    assert_eq!(w.on_puback(99), None);
    assert_eq!(w.cursor(), 5);
    assert_eq!(w.on_puback(8), Some(6));
}

#[test]
fn a_damaged_record_never_blocks_the_cursor() {
    let (mut w, _) = window(4, 0);
    w.handed(Publish::Record(0));
    assert_eq!(w.skipped(1), None);
    w.on_outgoing(1);
    assert_eq!(w.on_puback(1), Some(2));
}

#[test]
fn reset_forgets_what_is_in_flight_and_keeps_the_cursor() {
    let (mut w, now) = window(4, 3);
    w.handed(Publish::Record(3));
    w.handed(Publish::Record(4));
    w.on_outgoing(1);
    w.on_outgoing(2);
    assert_eq!(w.on_puback(2), None);
    assert_eq!(w.reset(now), 3);
    assert!(w.is_idle());
    // A PUBACK of the old connection's packet id means nothing now.
    assert_eq!(w.on_puback(1), None);
    assert_eq!(w.cursor(), 3);
}

/// One thing that can happen to an uplink.
#[derive(Debug, Clone)]
enum Step {
    /// Hand the next outbox record to the client (if the window allows).
    Send,
    /// The next outbox record is damaged and skipped.
    SendDamaged,
    /// A status or a command's ack.
    SendOther,
    /// The client names the packet id of the oldest queued publish.
    Outgoing,
    /// The broker acknowledges one of the packets on the wire.
    PubAck(usize),
    /// The connection drops.
    Disconnect,
    /// The gateway restarts: a new window from the persisted cursor.
    Restart,
    /// Time passes.
    Tick(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::Send),
        1 => Just(Step::SendDamaged),
        1 => Just(Step::SendOther),
        6 => Just(Step::Outgoing),
        6 => any::<usize>().prop_map(Step::PubAck),
        1 => Just(Step::Disconnect),
        1 => Just(Step::Restart),
        2 => (0u64..200).prop_map(Step::Tick),
    ]
}

/// The client, the broker and the outbox around a window.
struct World {
    records: u64,
    inflight: usize,
    rate: u32,
    now: Instant,
    window: DeliveryWindow,
    /// The cursor the outbox holds (every move the window reports).
    stored: u64,
    /// The next record the uplink reads from the outbox.
    next_read: u64,
    /// Handed to the client, no packet id yet.
    queued: VecDeque<Publish>,
    /// On the wire: packet id and publish.
    wire: Vec<(u16, Publish)>,
    /// Records the broker confirmed (or that were skipped), ever.
    delivered: BTreeSet<u64>,
}

impl World {
    fn new(records: u64, inflight: usize, rate: u32) -> Self {
        let now = Instant::now();
        Self {
            records,
            inflight,
            rate,
            now,
            window: DeliveryWindow::new(inflight, rate, 0, now),
            stored: 0,
            next_read: 0,
            queued: VecDeque::new(),
            wire: Vec::new(),
            delivered: BTreeSet::new(),
        }
    }

    fn moved(&mut self, cursor: Option<u64>) {
        if let Some(c) = cursor {
            assert!(
                c >= self.stored,
                "the cursor went back from {} to {c}",
                self.stored
            );
            self.stored = c;
        }
    }

    /// The lowest packet id not on the wire, as MQTT clients pick them.
    fn free_pkid(&self) -> u16 {
        (1..=u16::MAX)
            .find(|p| !self.wire.iter().any(|(q, _)| q == p))
            .expect("fewer than 65535 packets on the wire")
    }

    fn apply(&mut self, step: &Step) {
        match *step {
            Step::Send | Step::SendDamaged if self.next_read < self.records => {
                match self.window.next(self.now) {
                    Next::Full => assert_eq!(self.window.room(), 0),
                    Next::Wait(d) => {
                        // The token bucket can round a wait of a few
                        // femtoseconds down to zero; a real clock moves on.
                        self.now += d.max(Duration::from_micros(1));
                    }
                    Next::Send => {
                        let id = self.next_read;
                        self.next_read += 1;
                        if matches!(step, Step::SendDamaged) {
                            self.delivered.insert(id);
                            let c = self.window.skipped(id);
                            self.moved(c);
                        } else {
                            self.window.handed(Publish::Record(id));
                            self.queued.push_back(Publish::Record(id));
                        }
                    }
                }
            }
            Step::Send | Step::SendDamaged => {}
            Step::SendOther => {
                self.window.handed(Publish::Other);
                self.queued.push_back(Publish::Other);
            }
            Step::Outgoing => {
                if let Some(p) = self.queued.pop_front() {
                    let pkid = self.free_pkid();
                    self.window.on_outgoing(pkid);
                    self.wire.push((pkid, p));
                }
            }
            Step::PubAck(i) => {
                if !self.wire.is_empty() {
                    let (pkid, p) = self.wire.remove(i % self.wire.len());
                    if let Publish::Record(id) = p {
                        self.delivered.insert(id);
                    }
                    let c = self.window.on_puback(pkid);
                    self.moved(c);
                }
            }
            Step::Disconnect => {
                self.queued.clear();
                self.wire.clear();
                let from = self.window.reset(self.now);
                assert_eq!(from, self.stored);
                assert!(self.window.is_idle());
                self.next_read = from;
            }
            Step::Restart => {
                self.queued.clear();
                self.wire.clear();
                self.window = DeliveryWindow::new(self.inflight, self.rate, self.stored, self.now);
                self.next_read = self.stored;
            }
            Step::Tick(ms) => self.now += Duration::from_millis(ms),
        }
        self.check();
    }

    fn check(&self) {
        let c = self.window.cursor();
        assert_eq!(
            c, self.stored,
            "the window's cursor is the one the outbox holds"
        );
        // Never past a record the broker has not confirmed.
        for id in 0..c {
            assert!(
                self.delivered.contains(&id),
                "cursor {c} passed unconfirmed record {id}"
            );
        }
        assert!(self.window.room() <= self.inflight);
        assert!(self.next_read >= c);
    }

    /// A steady connection: everything sent in order and acknowledged.
    fn settle(&mut self) {
        for _ in 0..10 * (self.records + 10) {
            if self.window.cursor() == self.records {
                return;
            }
            while self.next_read < self.records && self.window.room() > 0 {
                self.apply(&Step::Send);
            }
            while !self.queued.is_empty() {
                self.apply(&Step::Outgoing);
            }
            while !self.wire.is_empty() {
                self.apply(&Step::PubAck(0));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_cursor_only_moves_over_confirmed_records_and_everything_arrives(
        records in 0u64..40,
        inflight in 1usize..6,
        rate in 1u32..50,
        steps in proptest::collection::vec(step(), 0..200),
    ) {
        let mut world = World::new(records, inflight, rate);
        for s in &steps {
            world.apply(s);
        }
        // Whatever happened, a connection that then stays up delivers the
        // rest: nothing unacknowledged was forgotten.
        world.settle();
        prop_assert_eq!(world.window.cursor(), records);
        prop_assert!(world.window.is_idle());
        prop_assert_eq!(world.delivered.len() as u64, records);
    }
}
