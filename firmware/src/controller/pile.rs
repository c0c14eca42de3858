//! A pile of N sockets: per-socket controllers plus the whole-pile limit.
//!
//! Storage is generic (`[SocketController; N]` on the MCU, a `Vec` on the
//! host), so the pile needs no allocator.

use crate::pile_map::{PileSnapshot, PILE_FAULT_OVERLOAD, PILE_FAULT_SOCKET};

use super::config::PileLimits;
use super::socket::{CommandError, Measurement, SocketController, Trip};

/// Most sockets whose start order the pile remembers; matches the map.
const MAX_SOCKETS: usize = crate::pile_map::MAX_SOCKETS as usize;

/// The controllers of a pile's sockets and its whole-pile limit.
#[derive(Debug, Clone)]
pub struct PileController<S> {
    sockets: S,
    limits: PileLimits,
    /// Start order per socket (0 = never started), for cutting the newest
    /// sessions first.
    started: [u32; MAX_SOCKETS],
    next_start: u32,
}

impl<S> PileController<S>
where
    S: AsRef<[SocketController]> + AsMut<[SocketController]>,
{
    /// A pile of `sockets` (1..=64 of them, socket 1 first).
    pub fn new(sockets: S, limits: PileLimits) -> Self {
        Self {
            sockets,
            limits,
            started: [0; MAX_SOCKETS],
            next_start: 1,
        }
    }

    /// Number of sockets.
    pub fn socket_count(&self) -> u16 {
        let n = self.sockets.as_ref().len().min(MAX_SOCKETS);
        n as u16
    }

    /// The whole-pile limits.
    pub fn limits(&self) -> &PileLimits {
        &self.limits
    }

    /// Socket `n` (1-based).
    pub fn socket(&self, n: u16) -> Result<&SocketController, CommandError> {
        let i = self.index(n)?;
        Ok(&self.sockets.as_ref()[i])
    }

    /// Socket `n` (1-based), mutable: for plug events and limit changes.
    pub fn socket_mut(&mut self, n: u16) -> Result<&mut SocketController, CommandError> {
        let i = self.index(n)?;
        Ok(&mut self.sockets.as_mut()[i])
    }

    /// All sockets, socket 1 first.
    pub fn sockets(&self) -> &[SocketController] {
        self.sockets.as_ref()
    }

    fn index(&self, n: u16) -> Result<usize, CommandError> {
        let i = usize::from(n).wrapping_sub(1);
        if n == 0 || i >= self.sockets.as_ref().len().min(MAX_SOCKETS) {
            return Err(CommandError::NoSuchSocket(n));
        }
        Ok(i)
    }

    /// Sum of the sockets' last measured power.
    pub fn total_power_w(&self) -> f32 {
        self.sockets
            .as_ref()
            .iter()
            .map(|s| s.measurement().power_w)
            .sum()
    }

    /// Starts socket `n`, unless the pile is above its no-new-session limit
    /// or the socket has a latched fault.
    pub fn start(&mut self, n: u16) -> Result<(), CommandError> {
        let i = self.index(n)?;
        if self.sockets.as_ref()[i].relay_on() {
            return Ok(());
        }
        if let Some(limit) = self.limits.no_new_session_above_w {
            if self.total_power_w() > limit {
                return Err(CommandError::PileAtLimit);
            }
        }
        self.sockets.as_mut()[i].start()?;
        self.started[i] = self.next_start;
        self.next_start = self.next_start.wrapping_add(1).max(1);
        Ok(())
    }

    /// Stops socket `n`.
    pub fn stop(&mut self, n: u16) -> Result<(), CommandError> {
        self.socket_mut(n)?.stop();
        Ok(())
    }

    /// Resets socket `n`'s latched fault.
    pub fn reset_fault(&mut self, n: u16) -> Result<(), CommandError> {
        self.socket_mut(n)?.reset_fault()
    }

    /// Ticks every socket with its measurement (`measure(n)` for socket
    /// `n`), then stops the newest sessions while the total power is above
    /// the cut-off. Calls `on_trip(n, trip)` for every socket that tripped
    /// or was stopped.
    pub fn tick(
        &mut self,
        now_ms: u64,
        mut measure: impl FnMut(u16) -> Measurement,
        mut on_trip: impl FnMut(u16, Trip),
    ) {
        let count = self.socket_count();
        for n in 1..=count {
            let m = measure(n);
            let socket = &mut self.sockets.as_mut()[usize::from(n - 1)];
            if let Some(trip) = socket.tick(now_ms, &m) {
                on_trip(n, trip);
            }
        }
        let Some(cut) = self.limits.cut_above_w else {
            return;
        };
        let mut total: f32 = self
            .sockets
            .as_ref()
            .iter()
            .filter(|s| s.relay_on())
            .map(|s| s.measurement().power_w)
            .sum();
        while total > cut {
            let newest = (0..usize::from(count))
                .filter(|&i| self.sockets.as_ref()[i].relay_on())
                .max_by_key(|&i| self.started[i]);
            let Some(i) = newest else { break };
            let socket = &mut self.sockets.as_mut()[i];
            total -= socket.measurement().power_w;
            socket.stop();
            on_trip(i as u16 + 1, Trip::Stopped);
        }
    }

    /// The pile block's values (see [`crate::pile_map`]).
    pub fn snapshot(&self) -> PileSnapshot {
        let total_power_w = self.total_power_w();
        let mut fault_bits = 0;
        if self
            .sockets
            .as_ref()
            .iter()
            .any(|s| s.fault() != crate::pile_map::FaultCode::None)
        {
            fault_bits |= PILE_FAULT_SOCKET;
        }
        if total_power_w > self.limits.rated_power_w {
            fault_bits |= PILE_FAULT_OVERLOAD;
        }
        PileSnapshot {
            socket_count: self.socket_count(),
            total_power_w,
            fault_bits,
        }
    }
}
