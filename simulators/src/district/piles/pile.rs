//! One pile minute by minute: its sockets' sessions begin and end, the
//! whole-pile limits act (or, planted, fail to), and each minute's readings
//! and truth are written.

use super::*;

impl Pile {
    pub(super) fn plan_day(&mut self, day_start: i64, heavy_prob: f64) {
        for s in &mut self.sockets {
            s.arrivals.clear();
            if self.rng.chance(0.25) {
                s.arrivals
                    .push((day_start + self.rng.int(8 * 60, 13 * 60), Plant::None));
            }
            if self.rng.chance(0.55) {
                s.arrivals.push((
                    day_start + self.rng.int(17 * 60 + 30, 22 * 60 + 30),
                    Plant::None,
                ));
            }
        }
        if self.rng.chance(heavy_prob) {
            let n = self.sockets.len();
            let riders = if self.rng.chance(0.5) {
                (n * 3 / 4 + self.rng.int(0, 1) as usize).min(n)
            } else {
                n / 2
            };
            let mut at = day_start + 14 * 60 + self.rng.int(0, 30);
            let first = self.rng.int(0, n as i64 - 1) as usize;
            for k in 0..riders {
                let s = &mut self.sockets[(first + k) % n];
                s.arrivals.push((at, Plant::Heavy));
                at += self.rng.int(2, 6);
            }
        }
        for s in &mut self.sockets {
            s.arrivals.sort_by_key(|a| a.0);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn minute(
        &mut self,
        m: i64,
        day: u32,
        clear: f64,
        t0: i64,
        (fault_rate, near_rate, _): (f64, f64, f64),
        (energy_rate, energy_near_rate): (f64, f64),
        cases: &mut Vec<Case>,
        planted: &mut Vec<(Plant, u32)>,
        energy_log: &mut EnergyLog,
        out: &mut Vec<Record>,
    ) {
        let ts = t0 + m * MIN_MS;
        let volts = (231.0 + 1.5 * self.rng.normal()).clamp(228.0, 235.0);
        let hour = (m.rem_euclid(1440)) as f64 / 60.0;
        let ambient = 10.0
            + 0.17 * f64::from(day)
            + 6.0 * (std::f64::consts::TAU * (hour - 9.0) / 24.0).sin();
        let sun_now = if (9.0..17.0).contains(&hour) {
            10.0 * clear * (std::f64::consts::PI * (hour - 9.0) / 8.0).sin()
        } else {
            0.0
        };
        // Each socket: unplug, plug in, draw, protect, heat.
        let mut states: Vec<SocketNow> = Vec::with_capacity(self.sockets.len());
        for s in &mut self.sockets {
            let mut changed = false;
            s.ended = false;
            if s.session.as_ref().is_some_and(|x| x.unplug <= m) {
                s.session = None;
                changed = true;
                s.ended = true;
            }
            let arrival = s.arrivals.iter().find(|a| a.0 == m).map(|a| a.1);
            let mut new_session = false;
            if let (None, Some(heavy)) = (&s.session, arrival) {
                if let Some(mut sess) =
                    new_session_for(&mut self.rng, &self.owners, m, heavy, fault_rate, near_rate)
                {
                    // A bigger pack, from the energy stream only (three
                    // draws per session, whatever is planted).
                    let (u, v, w) = (
                        self.energy_rng.unit(),
                        self.energy_rng.unit(),
                        self.energy_rng.unit(),
                    );
                    let eligible = sess.0.plant == Plant::None
                        && m.rem_euclid(1440) >= ENERGY_FROM_MIN
                        && matches!(sess.0.load, Load::Curve(_));
                    if eligible && u < energy_rate {
                        sess.0.plant = Plant::BigPack;
                        sess.0.boost = 1.8 + 1.4 * v;
                    } else if eligible && w < energy_near_rate {
                        sess.0.plant = Plant::BigPackNear;
                        sess.0.boost = 1.15 + 0.2 * v;
                    }
                    sess.0.tag = self.tags.get(&sess.2).cloned().unwrap_or_default();
                    count(planted, sess.0.plant);
                    s.note = sess.1;
                    s.session = Some(sess.0);
                    changed = true;
                    new_session = true;
                }
            }
            let now = s.step(m, volts, ambient, sun_now, &mut self.rng);
            states.push(SocketNow {
                changed: changed || now.relay != s.reported_relay,
                new_session,
                ..now
            });
            s.reported_relay = now.relay;
        }
        let total: f64 = states.iter().map(|x| x.power_w).sum();
        let live = states.iter().any(|x| x.relay);
        // The pile reading first, as the gateway publishes a poll.
        if live || self.was_live || m % IDLE_EVERY_MIN == 0 {
            self.seq += 1;
            let mut r = Reading::new(
                Timestamp(ts),
                self.gateway.as_str(),
                self.device.as_str(),
                DeviceKind::ChargingPile,
                self.seq,
            );
            r.site = self.site.as_str().into();
            r.values.insert("map_version".into(), 1.0);
            r.values
                .insert("socket_count".into(), self.sockets.len() as f64);
            r.values.insert("total_power_w".into(), round(total, 1));
            let overloaded = total > PILE_CUT_W;
            r.values
                .insert("fault_bits".into(), if overloaded { 2.0 } else { 0.0 });
            out.push(Record::Reading(r));
            // Truth: the pile above its cut limit for 5 s.
            let entity = self.entity.clone();
            let over = round(total, 1) > PILE_CUT_W;
            truth_hold(
                cases,
                &mut self.overload,
                kind::PILE_OVERLOAD,
                &entity,
                over,
                ts,
                PERSIST_MS,
                "pile overload",
            );
            if !over {
                self.overload.done = false;
            }
        }
        self.was_live = live;
        for (s, now) in self.sockets.iter_mut().zip(&states) {
            if now.changed && !now.relay {
                s.tail = m + 1;
            }
            if !(now.relay || now.changed || m <= s.tail || m % IDLE_EVERY_MIN == 0) {
                continue;
            }
            if s.ended {
                let socket = s.entity.clone();
                energy_log.push((ts, self.index, self.seq, EnergyObs::End { socket }));
            }
            if now.new_session {
                // A pile with a card reader knows who started the session.
                let tag = s
                    .session
                    .as_ref()
                    .map(|x| x.tag.clone())
                    .unwrap_or_default();
                self.seq += 1;
                let e = Event {
                    schema: gridwatch_telemetry::SCHEMA_VERSION,
                    ts: Timestamp(ts),
                    gateway: self.gateway.as_str().into(),
                    site: self.site.as_str().into(),
                    device: self.device.as_str().into(),
                    seq: self.seq,
                    kind: EventKind::SessionStarted {
                        socket: s.n,
                        identity: Some(tag.clone()),
                    },
                };
                out.push(Record::Event(e));
                let plant = now.plant.unwrap_or(Plant::None);
                let boost = s.session.as_ref().map_or(1.0, |x| x.boost);
                energy_log.push((
                    ts,
                    self.index,
                    self.seq,
                    EnergyObs::Start {
                        socket: s.entity.clone(),
                        tag,
                        note: format!("{plant:?} (pack x{boost:.2}); {}", s.note),
                    },
                ));
            }
            self.seq += 1;
            let mut r = Reading::new(
                Timestamp(ts),
                self.gateway.as_str(),
                self.device.as_str(),
                DeviceKind::ChargingSocket,
                self.seq,
            );
            r.site = self.site.as_str().into();
            r.socket = Some(s.n);
            let shown_a = now.spike_a.unwrap_or(now.current_a);
            let shown_c = now.glitch_c.unwrap_or(now.temperature_c);
            for (k, v) in [
                ("state", now.state),
                ("voltage_v", round(volts, 1)),
                ("current_a", round(shown_a, 3)),
                ("power_w", now.power_w),
                ("energy_wh", round(now.energy_wh, 1)),
                ("temperature_c", round(shown_c, 1)),
                ("relay_on", if now.relay { 1.0 } else { 0.0 }),
                ("fault_code", 0.0),
                ("session_s", now.session_s),
                ("residual_ma", now.residual_ma),
            ] {
                r.values.insert(k.into(), v);
            }
            out.push(Record::Reading(r));
            if s.session.is_some() {
                energy_log.push((
                    ts,
                    self.index,
                    self.seq,
                    EnergyObs::Energy {
                        socket: s.entity.clone(),
                        wh: round(now.energy_wh, 1),
                    },
                ));
            }
            s.truth(cases, ts, now, total);
        }
    }
}
