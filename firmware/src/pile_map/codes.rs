//! Enumerated register values: socket states, fault codes, pile fault bits.

/// What a socket is doing, register +0 of its block.
///
/// The numbers are part of the wire format; never renumber a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum SocketState {
    /// Nothing plugged in.
    Idle = 0,
    /// A plug is in but no energy has flowed yet (relay off, or waiting).
    Plugged = 1,
    /// The charger draws power.
    Charging = 2,
    /// The charger has stopped by itself (BMS cut-off, or float stage) while
    /// the relay is still on.
    Full = 3,
    /// The session was ended by the pile or a command (relay off after
    /// charging) and the plug is still in.
    Finished = 4,
    /// The pile detected a fault; see the fault code register.
    Fault = 5,
}

impl SocketState {
    /// Decodes a state register, or `None` for a number this map version
    /// does not define.
    pub const fn from_u16(value: u16) -> Option<Self> {
        Some(match value {
            0 => Self::Idle,
            1 => Self::Plugged,
            2 => Self::Charging,
            3 => Self::Full,
            4 => Self::Finished,
            5 => Self::Fault,
            _ => return None,
        })
    }
}

/// The fault the pile itself detected on a socket, register +9.
///
/// A legacy pile without protections reports [`FaultCode::None`] whatever
/// happens; detecting faults is then the job of analytics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum FaultCode {
    /// No fault.
    None = 0,
    /// Current above the socket limit.
    Overcurrent = 1,
    /// Power above the socket limit.
    Overpower = 2,
    /// Socket temperature too high.
    OverTemperature = 3,
    /// Residual (earth-leakage) current above the trip level.
    ResidualCurrent = 4,
    /// Session longer than the configured maximum.
    SessionTooLong = 5,
    /// Power still drawn long after the charge curve says full.
    ChargingPastFull = 6,
}

impl FaultCode {
    /// Decodes a fault code register, or `None` for a number this map
    /// version does not define.
    pub const fn from_u16(value: u16) -> Option<Self> {
        Some(match value {
            0 => Self::None,
            1 => Self::Overcurrent,
            2 => Self::Overpower,
            3 => Self::OverTemperature,
            4 => Self::ResidualCurrent,
            5 => Self::SessionTooLong,
            6 => Self::ChargingPastFull,
            _ => return None,
        })
    }
}

/// Pile fault bit: at least one socket reports a non-zero fault code.
pub const PILE_FAULT_SOCKET: u16 = 1 << 0;
/// Pile fault bit: total power is above the pile's rated limit.
pub const PILE_FAULT_OVERLOAD: u16 = 1 << 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_u16() {
        for v in 0..=5u16 {
            let s = SocketState::from_u16(v).expect("defined state");
            assert_eq!(s as u16, v);
        }
        assert_eq!(SocketState::from_u16(6), None);
    }

    #[test]
    fn fault_codes_round_trip_through_u16() {
        for v in 0..=6u16 {
            let f = FaultCode::from_u16(v).expect("defined fault");
            assert_eq!(f as u16, v);
        }
        assert_eq!(FaultCode::from_u16(7), None);
    }
}
