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
//! Value names and codes are those of docs/telemetry.md.

use gridwatch_telemetry::{DeviceKind, Reading, Timestamp};
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

#[derive(Debug, Default)]
struct Board {
    sites: BTreeMap<String, BTreeMap<Key, SocketView>>,
    tracked: usize,
    refused: u64,
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
        }
        let _ = self.updates.send(site);
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
