//! How many tip-offs one client may send: a fixed budget per client address
//! per hour, so a script cannot flood the grid staff's lists, and a bound on
//! the addresses remembered, so a flood of addresses cannot exhaust memory
//! (past it, every new address shares one budget).

use std::collections::HashMap;
use std::net::IpAddr;

/// Addresses remembered within an hour.
const MAX_CLIENTS: usize = 10_000;
const HOUR_MS: i64 = 3_600_000;

/// Tip-offs per client address in the current hour.
#[derive(Debug, Default)]
pub struct Limiter {
    hour: i64,
    counts: HashMap<IpAddr, u32>,
    overflow: u32,
    /// Tip-offs refused over the budget, since start.
    pub refused: u64,
}

impl Limiter {
    /// Whether `client` may send one more at `now_ms`, within `per_hour`;
    /// counts it if so, and the refusal if not.
    pub fn admit(&mut self, client: IpAddr, now_ms: i64, per_hour: u32) -> bool {
        let hour = now_ms.div_euclid(HOUR_MS);
        if hour != self.hour {
            self.hour = hour;
            self.counts.clear();
            self.overflow = 0;
        }
        let n = if self.counts.contains_key(&client) || self.counts.len() < MAX_CLIENTS {
            self.counts.entry(client).or_default()
        } else {
            &mut self.overflow
        };
        if *n >= per_hour {
            self.refused += 1;
            return false;
        }
        *n += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_budget_each_hour_and_others_their_own() {
        let mut l = Limiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!((0..3).all(|_| l.admit(a, 1000, 3)));
        assert!(!l.admit(a, 2000, 3));
        assert!(l.admit(b, 2000, 3));
        assert!(l.admit(a, HOUR_MS + 1, 3), "a new hour, a new budget");
        assert_eq!(l.refused, 1);
    }
}
