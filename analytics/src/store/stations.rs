//! Live charging-station state: the latest reading of every socket, per
//! site, for the property manager's station view.
//!
//! This is not in SQLite: it is the present, rebuilt from the stream within
//! a poll interval after a restart. Fed by the service with every charging
//! socket reading (in event-time order per socket, older ones ignored); each
//! update is announced on a broadcast channel by site name, so server-sent
//! event streams can follow one site without polling. Bounded: at most
//! `max_sockets` sockets are tracked; further ones are counted, not kept.
//!
//! Besides the sockets, the board keeps whether each pile answers its
//! gateway (the gateway's `device_offline` / `device_online` events) and
//! when each gateway was last heard from (its newest reading or event, in
//! event time), so that the page can show a pile or a gateway gone quiet
//! rather than sockets frozen at their last state.
//!
//! Value names and codes are those of docs/telemetry.md.

use gridwatch_telemetry::{DeviceKind, Event, EventKind, Reading, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tokio::sync::broadcast;

/// One socket as last seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketView {
    /// The gateway that polls the pile.
    pub gateway: String,
    /// The pile.
    pub device: String,
    /// Socket number (1-based).
    pub socket: u16,
    /// Event time of the reading.
    pub ts: Timestamp,
    /// `idle`, `plugged`, `charging`, `full`, `finished`, `fault`.
    pub state: Option<String>,
    /// Power now.
    pub power_w: Option<f64>,
    /// Current now.
    pub current_a: Option<f64>,
    /// Socket temperature.
    pub temperature_c: Option<f64>,
    /// Energy of this session.
    pub energy_wh: Option<f64>,
    /// Length of this session.
    pub session_s: Option<f64>,
    /// Whether the relay is closed.
    pub relay_on: Option<bool>,
    /// The pile's own fault, if any.
    pub fault: Option<String>,
}

type Key = (String, String, u16);

/// Whether a pile answers its gateway, as the gateway last said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PileLink {
    /// `false` after `device_offline`, `true` after `device_online`.
    pub online: bool,
    /// The gateway's reason for an offline pile.
    pub reason: Option<String>,
    /// Event time of that event.
    pub since: Timestamp,
}

#[derive(Debug, Default)]
struct Board {
    sites: BTreeMap<String, BTreeMap<Key, SocketView>>,
    /// (site, gateway, pile) → its link, for piles with sockets on the board.
    piles: BTreeMap<(String, String, String), PileLink>,
    /// (site, gateway) → newest event time heard from it.
    gateways: BTreeMap<(String, String), Timestamp>,
    tracked: usize,
    refused: u64,
}

impl Board {
    /// Notes that `gateway` of `site` was heard at `ts`; bounded like the
    /// sockets (a gateway of a site without sockets is not kept).
    fn heard(&mut self, site: &str, gateway: &str, ts: Timestamp) {
        if !self.sites.contains_key(site) {
            return;
        }
        let key = (site.to_owned(), gateway.to_owned());
        let room = self.gateways.len() < self.tracked.max(1);
        match self.gateways.get_mut(&key) {
            Some(t) => *t = (*t).max(ts),
            None if room => {
                self.gateways.insert(key, ts);
            }
            None => {}
        }
    }
}

/// The live board, shared between the service (writer) and the API.
#[derive(Debug, Clone)]
pub struct Stations {
    board: Arc<RwLock<Board>>,
    updates: broadcast::Sender<String>,
    max_sockets: usize,
}

const STATES: [&str; 6] = ["idle", "plugged", "charging", "full", "finished", "fault"];
const FAULTS: [&str; 7] = [
    "none",
    "overcurrent",
    "overpower",
    "over-temperature",
    "residual current",
    "session too long",
    "charging past full",
];

fn code(v: Option<f64>, names: &[&str]) -> Option<String> {
    let v = v?;
    let name = (v >= 0.0 && v.fract() == 0.0)
        .then(|| names.get(v as usize))
        .flatten();
    Some(name.map_or_else(|| format!("code {v}"), |n| (*n).to_owned()))
}

impl Stations {
    /// A board for at most `max_sockets` sockets.
    pub fn new(max_sockets: usize) -> Self {
        let (updates, _) = broadcast::channel(256);
        Self {
            board: Arc::new(RwLock::new(Board::default())),
            updates,
            max_sockets,
        }
    }

    /// Takes a reading; only charging-socket readings with a socket number
    /// count.
    pub fn observe(&self, r: &Reading) {
        let (DeviceKind::ChargingSocket, Some(socket)) = (r.kind, r.socket) else {
            return;
        };
        let v = |k: &str| r.values.get(k).copied();
        let view = SocketView {
            gateway: r.gateway.to_string(),
            device: r.device.to_string(),
            socket,
            ts: r.ts,
            state: code(v("state"), &STATES),
            power_w: v("power_w"),
            current_a: v("current_a"),
            temperature_c: v("temperature_c"),
            energy_wh: v("energy_wh"),
            session_s: v("session_s"),
            relay_on: v("relay_on").map(|x| x != 0.0),
            fault: code(v("fault_code"), &FAULTS).filter(|f| f != "none"),
        };
        let site = r.site.to_string();
        {
            let mut b = self.board.write().unwrap_or_else(|p| p.into_inner());
            b.heard(&site, r.gateway.as_str(), r.ts);
            let full = b.tracked >= self.max_sockets;
            let key = (view.gateway.clone(), view.device.clone(), socket);
            let known = b.sites.get(&site).is_some_and(|s| s.contains_key(&key));
            if !known && full {
                b.refused += 1;
                return;
            }
            let entry = b.sites.entry(site.clone()).or_default();
            match entry.get(&key) {
                Some(old) if old.ts >= view.ts => return,
                Some(_) => {}
                None => b.tracked += 1,
            }
            if let Some(s) = b.sites.get_mut(&site) {
                s.insert(key, view);
            }
            b.heard(&site, r.gateway.as_str(), r.ts);
        }
        let _ = self.updates.send(site);
    }

    /// Takes a gateway event: any event says the gateway is alive; a
    /// pile's `device_offline` / `device_online` sets its link. Only piles
    /// with sockets on the board are kept, and only newer news.
    pub fn observe_event(&self, e: &Event) {
        let site = e.site.to_string();
        let online = match &e.kind {
            EventKind::DeviceOffline { reason } => Some((false, Some(reason.clone()))),
            EventKind::DeviceOnline => Some((true, None)),
            _ => None,
        };
        {
            let mut b = self.board.write().unwrap_or_else(|p| p.into_inner());
            b.heard(&site, e.gateway.as_str(), e.ts);
            let Some((online, reason)) = online else {
                return;
            };
            let (gw, dev) = (e.gateway.to_string(), e.device.to_string());
            let is_pile = b
                .sites
                .get(&site)
                .is_some_and(|s| s.keys().any(|(g, d, _)| *g == gw && *d == dev));
            if !is_pile {
                return;
            }
            let key = (site.clone(), gw, dev);
            if b.piles.get(&key).is_some_and(|l| l.since > e.ts) {
                return;
            }
            b.piles.insert(
                key,
                PileLink {
                    online,
                    reason,
                    since: e.ts,
                },
            );
        }
        let _ = self.updates.send(site);
    }

    /// The link of pile `device` on `gateway` of `site`, if an event said.
    pub fn pile(&self, site: &str, gateway: &str, device: &str) -> Option<PileLink> {
        let b = self.board.read().unwrap_or_else(|p| p.into_inner());
        b.piles
            .get(&(site.to_owned(), gateway.to_owned(), device.to_owned()))
            .cloned()
    }

    /// The gateways of `site` and when each was last heard from.
    pub fn gateways(&self, site: &str) -> Vec<(String, Timestamp)> {
        let b = self.board.read().unwrap_or_else(|p| p.into_inner());
        b.gateways
            .iter()
            .filter(|((s, _), _)| s == site)
            .map(|((_, g), t)| (g.clone(), *t))
            .collect()
    }

    /// One socket, if on the board.
    pub fn socket(
        &self,
        site: &str,
        gateway: &str,
        device: &str,
        socket: u16,
    ) -> Option<SocketView> {
        let b = self.board.read().unwrap_or_else(|p| p.into_inner());
        b.sites
            .get(site)?
            .get(&(gateway.to_owned(), device.to_owned(), socket))
            .cloned()
    }

    /// The sockets of `site`, by gateway, pile and socket.
    pub fn site(&self, site: &str) -> Vec<SocketView> {
        let b = self.board.read().unwrap_or_else(|p| p.into_inner());
        b.sites
            .get(site)
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every site with at least one socket seen.
    pub fn sites(&self) -> Vec<String> {
        let b = self.board.read().unwrap_or_else(|p| p.into_inner());
        b.sites.keys().cloned().collect()
    }

    /// Site names, one per update.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.updates.subscribe()
    }

    /// Sockets not tracked because the board was full.
    pub fn refused(&self) -> u64 {
        self.board.read().map(|b| b.refused).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(site: &str, socket: u16, ts: i64, state: f64) -> Reading {
        let mut r = Reading::new(
            Timestamp(ts),
            "gw-1",
            "pile-1",
            DeviceKind::ChargingSocket,
            ts as u64,
        );
        r.site = site.into();
        r.socket = Some(socket);
        r.values.insert("state".into(), state);
        r.values.insert("power_w".into(), 180.0);
        r.values.insert("fault_code".into(), 0.0);
        r
    }

    #[test]
    fn keeps_the_latest_reading_per_socket_and_names_the_codes() {
        let s = Stations::new(10);
        let mut updates = s.subscribe();
        s.observe(&reading("yard-a", 1, 2000, 2.0));
        s.observe(&reading("yard-a", 1, 1000, 0.0)); // older: ignored
        s.observe(&reading("yard-a", 2, 1000, 9.0));
        let v = s.site("yard-a");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].state.as_deref(), Some("charging"));
        assert_eq!(v[0].fault, None);
        assert_eq!(v[1].state.as_deref(), Some("code 9"));
        assert_eq!(updates.try_recv().unwrap(), "yard-a");
        assert_eq!(updates.try_recv().unwrap(), "yard-a");
        assert!(
            updates.try_recv().is_err(),
            "the ignored reading announced nothing"
        );
    }

    #[test]
    fn piles_go_offline_and_back_and_gateways_are_heard() {
        let s = Stations::new(10);
        s.observe(&reading("yard-a", 1, 1000, 2.0));
        let event = |ts: i64, kind: EventKind| Event {
            schema: 1,
            ts: Timestamp(ts),
            gateway: "gw-1".into(),
            site: "yard-a".into(),
            device: "pile-1".into(),
            seq: 1,
            kind,
        };
        let off = event(
            5000,
            EventKind::DeviceOffline {
                reason: "no answer after 3 tries".into(),
            },
        );
        s.observe_event(&off);
        let link = s.pile("yard-a", "gw-1", "pile-1").unwrap();
        assert!(!link.online);
        assert_eq!(link.reason.as_deref(), Some("no answer after 3 tries"));
        assert_eq!(s.gateways("yard-a"), [("gw-1".to_owned(), Timestamp(5000))]);
        s.observe_event(&event(4000, EventKind::DeviceOnline));
        assert!(
            !s.pile("yard-a", "gw-1", "pile-1").unwrap().online,
            "older news is ignored"
        );
        let mut meter = off.clone();
        meter.device = "meter-9".into();
        s.observe_event(&meter);
        assert!(
            s.pile("yard-a", "gw-1", "meter-9").is_none(),
            "only piles with sockets"
        );
    }

    #[test]
    fn a_full_board_refuses_new_sockets_but_updates_known_ones() {
        let s = Stations::new(1);
        s.observe(&reading("yard-a", 1, 1000, 1.0));
        s.observe(&reading("yard-b", 1, 1000, 1.0));
        s.observe(&reading("yard-a", 1, 2000, 2.0));
        assert_eq!(s.sites(), ["yard-a"]);
        assert_eq!(s.refused(), 1);
        assert_eq!(s.site("yard-a")[0].state.as_deref(), Some("charging"));
    }
}
