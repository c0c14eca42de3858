//! Abnormal session energy: the pile-table row "> 1.3 × that tag's median
//! session energy" (a second or bigger battery, a modified pack, a borrowed
//! tag).
//!
//! Socket readings carry no tag, so the rule ties a session to the identity
//! of the `session_started` event that opened it (a pile with a card reader
//! knows who plugged in). The live session's energy is the socket's
//! `energy_wh` register, which counts the session and resets at plug-in
//! (gridwatch-ebp12: "session energy"). The session ends at the next
//! `session_started` on the socket or when `energy_wh` goes down (the
//! register reset); its energy then joins that identity's history.
//!
//! Memory: per identity a ring of the last `energy_history` session
//! energies (f32), at most `energy_max_tags` identities; per socket one
//! live session.

use std::collections::HashMap;

/// One identity's past session energies, newest last, at most `cap`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct History {
    wh: Vec<f32>,
    next: usize,
}

impl History {
    fn push(&mut self, wh: f32, cap: usize) {
        if self.wh.len() < cap {
            self.wh.push(wh);
        } else {
            self.wh[self.next % cap] = wh;
        }
        self.next = (self.next + 1) % cap;
    }
}

/// Median of session energies; `None` before the first session.
pub(super) fn median(values: &[f32]) -> Option<f64> {
    let v: Vec<f64> = values.iter().map(|x| f64::from(*x)).collect();
    (!v.is_empty()).then(|| crate::stats::median(&v))
}

/// The session on a socket that an identity started.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Live {
    identity: String,
    /// Median and count of the identity's sessions that had ended when this
    /// one began: "that tag's previous sessions".
    median_wh: Option<f64>,
    previous: usize,
    energy_wh: f64,
    fired: bool,
}

/// What the rule found: the values behind its evidence.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Excess {
    pub energy_wh: f64,
    pub median_wh: f64,
    pub previous: usize,
}

/// Per-socket live sessions and per-identity histories.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct SessionEnergy {
    live: HashMap<String, Live>,
    history: HashMap<String, History>,
    warned: bool,
}

/// The limits the rule needs, from [`super::SocketSessionConfig`].
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(super) struct Limits {
    pub ratio: f64,
    pub min_sessions: usize,
    pub keep: usize,
    pub max_tags: usize,
}

impl SessionEnergy {
    /// A session began on `socket` (its entity), started by `identity` if
    /// the pile knows it. Ends the socket's previous session.
    pub(super) fn started(&mut self, socket: &str, identity: Option<&str>, lim: Limits) {
        self.end(socket, lim);
        let Some(identity) = identity else {
            return;
        };
        let (median_wh, previous) = match self.history.get(identity) {
            Some(h) => (median(&h.wh), h.wh.len()),
            None => (None, 0),
        };
        self.live.insert(
            socket.to_owned(),
            Live {
                identity: identity.to_owned(),
                median_wh,
                previous,
                energy_wh: 0.0,
                fired: false,
            },
        );
    }

    /// A socket reported its session energy; returns the excess the first
    /// time this session's energy passes `ratio` × the identity's median.
    pub(super) fn reading(&mut self, socket: &str, energy_wh: f64, lim: Limits) -> Option<Excess> {
        let live = self.live.get_mut(socket)?;
        if energy_wh < live.energy_wh {
            // The register reset: the plug came out.
            self.end(socket, lim);
            return None;
        }
        live.energy_wh = energy_wh;
        let median_wh = live.median_wh?;
        if live.fired || live.previous < lim.min_sessions || energy_wh <= lim.ratio * median_wh {
            return None;
        }
        live.fired = true;
        Some(Excess {
            energy_wh,
            median_wh,
            previous: live.previous,
        })
    }

    /// Ends the socket's session: its energy joins the identity's history
    /// (a session that delivered nothing is not one).
    fn end(&mut self, socket: &str, lim: Limits) {
        let Some(live) = self.live.remove(socket) else {
            return;
        };
        if live.energy_wh <= 0.0 {
            return;
        }
        if !self.history.contains_key(&live.identity) && self.history.len() >= lim.max_tags {
            if !self.warned {
                self.warned = true;
                tracing::warn!(
                    max_tags = lim.max_tags,
                    "socket_abnormal_session_energy keeps the history of at most {} identities (energy_max_tags); further identities are not judged",
                    lim.max_tags
                );
            }
            return;
        }
        self.history
            .entry(live.identity)
            .or_default()
            .push(live.energy_wh as f32, lim.keep);
    }

    /// Identities with a history.
    pub(super) fn identities(&self) -> usize {
        self.history.len()
    }
}
