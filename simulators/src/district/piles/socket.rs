//! One socket minute by minute: the charger's draw, temperature, leakage,
//! the pile's protections (or the planted failure of one), and the
//! readings the gateway would publish.

use super::*;

impl Socket {
    /// Advances the socket through minute `m`: what it draws, whether the pile
    /// cuts it, how hot it is.
    pub(super) fn step(
        &mut self,
        m: i64,
        volts: f64,
        ambient: f64,
        sun: f64,
        rng: &mut Rng,
    ) -> SocketNow {
        let mut now = SocketNow::default();
        let mut used_wh = 0.0;
        let mut power = 0.0;
        let mut pf = PF;
        if let Some(s) = &mut self.session {
            now.plant = Some(s.plant);
            now.session_s = ((m - s.plug) * 60) as f64;
            if s.relay {
                power = match &s.load {
                    Load::Curve(c) => c.mains_power_w(),
                    Load::Watts { w, pf: f } => {
                        pf = *f;
                        *w
                    }
                    Load::Amps { a, pf: f } => {
                        pf = *f;
                        a * volts * f
                    }
                };
                // Taper faults: power climbs back once the taper is under way.
                if matches!(s.plant, Plant::TaperReversal | Plant::TaperBump2) {
                    let tapering =
                        matches!(&s.load, Load::Curve(c) if c.stage() == ChargeStage::Taper);
                    if s.bump_left < 0 && tapering && power < 0.5 * s.peak_w {
                        s.bump_left = if s.plant == Plant::TaperReversal {
                            rng.int(4, 8)
                        } else {
                            2
                        };
                        // Faster than the taper falls, so power really rises.
                        s.size = rng.range(8.0, 15.0);
                    }
                    if s.bump_left > 0 {
                        s.bump_left -= 1;
                        s.bump_w += s.size;
                    } else {
                        s.bump_w *= 0.5;
                    }
                    power += s.bump_w;
                }
                // A bigger pack on a bigger charger: more power on the
                // plateau, the same curve after it (so the pile's cuts,
                // which look at power under 45 W, come when they would).
                if s.boost > 1.0 && power > FULL_W {
                    if let Load::Curve(c) = &s.load {
                        if c.stage() == ChargeStage::Plateau {
                            power = (FULL_W + s.boost * (power - FULL_W))
                                .min(BIG_PACK_MAX_W)
                                .max(power);
                        }
                    }
                }
                s.peak_w = s.peak_w.max(power);
                let residual = if matches!(s.plant, Plant::Residual | Plant::Residual20)
                    && (s.from..s.to).contains(&m)
                {
                    s.size
                } else if power > 1.0 {
                    f64::from(1 + (rng.unit() * 3.0) as u8)
                } else {
                    0.0
                };
                // The pile's protections, as compliant firmware applies them.
                let low45 = *s.low45.get_or_insert(m);
                if power >= FULL_W {
                    s.low45 = None;
                }
                let low2 = *s.low2.get_or_insert(m);
                if power >= IDLE_W {
                    s.low2 = None;
                }
                let full = s.low45.is_some() && m - low45 >= FULL_HOLD_MIN && !s.no_full_cut;
                let idle = s.low2.is_some() && m - low2 >= IDLE_HOLD_MIN && !s.no_idle_cut;
                let cap = m - s.plug >= (CAP_H * 60.0) as i64 && !s.no_cap;
                let forced = m - s.plug >= (FORCED_H * 60.0) as i64 && !s.no_forced;
                let rcd = residual >= RESIDUAL_MA && !s.no_rcd;
                if full || idle || cap || forced || rcd {
                    s.relay = false;
                    power = 0.0;
                } else {
                    now.residual_ma = residual;
                }
            }
            now.relay = s.relay;
            // Fault heat (only while live) or its decay.
            let heating = s.relay
                && matches!(
                    s.plant,
                    Plant::HeatFast | Plant::HeatCreep | Plant::Warm62 | Plant::CreepBelowCeiling
                )
                && m >= s.from;
            if heating {
                let room = (s.t_max - self.base_c).max(0.0);
                self.extra_c = (self.extra_c + s.size).min(room);
            } else {
                self.extra_c *= (-1.0 / THERMAL_TAU_MIN).exp();
            }
            if s.plant == Plant::InrushSpike && m == s.plug {
                now.spike_a = Some(s.size);
            }
            if s.plant == Plant::TempGlitch && m == s.from {
                now.glitch_c = Some(rng.range(66.0, 72.0));
            }
        } else {
            self.extra_c *= (-1.0 / THERMAL_TAU_MIN).exp();
        }
        let target = ambient + sun * self.sun + RISE_C_PER_W * power;
        self.base_c = target + (self.base_c - target) * (-1.0 / THERMAL_TAU_MIN).exp();
        let t = self.base_c + self.extra_c;
        self.temps.rotate_left(1);
        self.temps[5] = t;
        now.temperature_c = t;
        now.rise_c_per_min = (self.temps[5] - self.temps[0]) / 5.0;
        now.power_w = round(power, 1);
        now.current_a = if power > 0.0 {
            power / (volts * pf)
        } else {
            0.0
        };
        now.state = match &self.session {
            None => 0.0,
            Some(s) if !s.relay => 4.0,
            Some(_) if power >= FULL_W => 2.0,
            Some(_) => 3.0,
        };
        // The battery charges for the minute just reported.
        if let Some(s) = &mut self.session {
            s.energy_wh += power / 60.0;
            used_wh = s.energy_wh;
            if s.relay {
                if let Load::Curve(c) = &mut s.load {
                    c.advance(60.0);
                }
            }
        }
        now.energy_wh = used_wh;
        now
    }

    /// Updates the ground truth with the reading just written.
    pub(super) fn truth(&mut self, cases: &mut Vec<Case>, ts: i64, now: &SocketNow, pile_w: f64) {
        let entity = self.entity.clone();
        let note = self.note.clone();
        if now.new_session {
            for (h, c) in self.holds.iter_mut().zip(CONDITIONS) {
                if c.2 {
                    h.done = false;
                }
            }
            self.taper = (0.0, false, f64::NAN, 0);
        }
        let relay = now.relay;
        let p = now.power_w;
        let amps = round(now.current_a, 3);
        let hours = now.session_s / 3600.0;
        let live_for = |h: f64| relay && hours >= h;
        // Taper: once power fell below 80 % of the session's peak, samples
        // that each rise above the one before.
        let (mut peak, mut tapering, last, mut rises) = self.taper;
        if !tapering {
            peak = peak.max(p);
            tapering = peak >= FULL_W && p < TAPER_RATIO * peak;
        } else if p > last {
            rises += 1;
        } else {
            rises = 0;
        }
        self.taper = (peak, tapering, p, rises);
        let reversal = tapering && rises >= TAPER_RISES;
        let conds = [
            (C_OVERCURRENT, amps > OVERCURRENT_A),
            (C_OVERPOWER, p > OVERPOWER_W),
            (C_NONSTANDARD, p > NONSTANDARD_W),
            (C_RESIDUAL, now.residual_ma >= RESIDUAL_MA),
            (C_NOT_FULL, live_for(NOT_FULL_H) && p >= FULL_W),
            (C_CAP, live_for(CAP_H)),
            (C_FORCED, live_for(FORCED_H)),
            (C_LIVE_FULL, relay && p < FULL_W),
            (C_IDLE, relay && p < IDLE_W),
            (C_BULK, live_for(BULK_H) && amps > BULK_A),
            (C_TAPER, reversal),
            (
                C_OVER_LIMIT,
                now.new_session && relay && round(pile_w, 1) > PILE_NEW_SESSION_W,
            ),
        ];
        for (c, cond) in conds {
            let (k, hold, per_session) = CONDITIONS[c];
            let h = &mut self.holds[c];
            truth_hold(cases, h, k, &entity, cond, ts, hold, &note);
            if !cond && !per_session {
                h.done = false;
            }
        }
        // The session-start fault is an instant.
        if let Some(i) = self.holds[C_OVER_LIMIT].open.take() {
            cases[i].end_ms = Some(ts);
        }
        // Over-temperature: above 65 °C for 60 s having risen faster than
        // 1 °C/min, or above 75 °C for 60 s. Crossings are interpolated
        // between samples (the temperature is continuous).
        let t = round(now.temperature_c, 1);
        let cross = |limit: f64| match self.last_t {
            Some((lt, lv)) if lv <= limit && t > lv => {
                lt + ((limit - lv) / (t - lv) * (ts - lt) as f64) as i64
            }
            _ => ts,
        };
        if t > OVERTEMP_C {
            let (c65, mut c75, mut fast) = self.hot.unwrap_or((cross(OVERTEMP_C), None, None));
            if t > CEILING_C && c75.is_none() {
                c75 = Some(cross(CEILING_C));
            }
            if now.rise_c_per_min > RISE_C_PER_MIN && fast.is_none() {
                fast = Some(ts);
            }
            self.hot = Some((c65, c75, fast));
            let due_rate = fast.map(|f| f.max(c65 + OVERTEMP_PERSIST_MS));
            let due_ceiling = c75.map(|c| c + OVERTEMP_PERSIST_MS);
            let due = match (due_rate, due_ceiling) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let h = &mut self.holds[C_TEMP];
            if let Some(due) = due.filter(|d| *d <= ts) {
                if !h.done {
                    h.done = true;
                    h.open = Some(cases.len());
                    cases.push(Case {
                        kind: kind::PILE_OVERTEMPERATURE.into(),
                        entity: entity.clone(),
                        start_ms: due.max(c65),
                        end_ms: None,
                        note: note.clone(),
                        traits: Default::default(),
                    });
                }
            }
        } else {
            self.hot = None;
            let h = &mut self.holds[C_TEMP];
            if let Some(i) = h.open.take() {
                cases[i].end_ms = Some(ts);
            }
            h.done = false;
        }
        self.last_t = Some((ts, t));
    }
}
