//! Pure conversion between measured values and register words.
//!
//! Encoding rounds to the nearest register count and saturates at the
//! register's range (a NaN becomes 0), so a wild sensor value can never panic
//! the firmware or wrap around into a plausible-looking number.

use core::fmt;

use super::codes::{FaultCode, SocketState};
use super::{
    MAP_VERSION, PILE_BLOCK_LEN, PILE_FAULT_BITS, PILE_MAP_VERSION, PILE_SOCKET_COUNT,
    PILE_TOTAL_POWER, SOCKET_BLOCK_LEN, SOCKET_CURRENT, SOCKET_ENERGY, SOCKET_FAULT, SOCKET_POWER,
    SOCKET_RELAY, SOCKET_RESIDUAL_CURRENT, SOCKET_SESSION_DURATION, SOCKET_STATE,
    SOCKET_TEMPERATURE, SOCKET_USED_LEN, SOCKET_VOLTAGE,
};

/// Register counts per volt (register unit 0.1 V).
pub const VOLTAGE_COUNTS_PER_V: f32 = 10.0;
/// Register counts per ampere (register unit 0.001 A).
pub const CURRENT_COUNTS_PER_A: f32 = 1000.0;
/// Register counts per watt (register unit 0.1 W), socket and pile power.
pub const POWER_COUNTS_PER_W: f32 = 10.0;
/// Register counts per watt-hour (register unit 0.1 Wh).
pub const ENERGY_COUNTS_PER_WH: f32 = 10.0;
/// Register counts per degree Celsius (register unit 0.1 °C).
pub const TEMPERATURE_COUNTS_PER_C: f32 = 10.0;

/// One socket's values in physical units, as the firmware measures them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SocketSnapshot {
    /// What the socket is doing.
    pub state: SocketState,
    /// Mains voltage at the socket.
    pub voltage_v: f32,
    /// RMS current drawn through the socket (mains side).
    pub current_a: f32,
    /// Active power drawn through the socket.
    pub power_w: f32,
    /// Energy delivered since the session began.
    pub energy_wh: f32,
    /// Socket temperature.
    pub temperature_c: f32,
    /// Whether the relay is closed (socket live).
    pub relay_on: bool,
    /// Fault the pile itself detected.
    pub fault: FaultCode,
    /// Seconds since the session began (plug-in).
    pub session_s: u32,
    /// Residual (earth-leakage) current.
    pub residual_ma: u16,
}

/// The pile block's values in physical units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PileSnapshot {
    /// Number of sockets N; sockets 1..=N are mapped.
    pub socket_count: u16,
    /// Sum of all sockets' power.
    pub total_power_w: f32,
    /// [`PILE_FAULT_SOCKET`](super::PILE_FAULT_SOCKET) and friends.
    pub fault_bits: u16,
}

/// Why register words could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer words than the block's data registers.
    TooShort {
        /// Words needed.
        needed: usize,
        /// Words given.
        got: usize,
    },
    /// The state register holds a number this map does not define.
    UnknownState(u16),
    /// The fault register holds a number this map does not define.
    UnknownFault(u16),
    /// The pile serves a map version this code does not know.
    UnsupportedVersion(u16),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { needed, got } => {
                write!(f, "need {needed} register words, got {got}")
            }
            Self::UnknownState(v) => {
                write!(f, "socket state {v} is not defined by map v{MAP_VERSION}")
            }
            Self::UnknownFault(v) => {
                write!(f, "fault code {v} is not defined by map v{MAP_VERSION}")
            }
            Self::UnsupportedVersion(v) => {
                write!(
                    f,
                    "pile serves register map v{v}, this code knows v{MAP_VERSION}"
                )
            }
        }
    }
}

impl core::error::Error for DecodeError {}

/// Splits a 32-bit value into two registers, high word first.
pub const fn split_u32(value: u32) -> [u16; 2] {
    [(value >> 16) as u16, value as u16]
}

/// Joins two registers, high word first, into a 32-bit value.
pub const fn join_u32(high: u16, low: u16) -> u32 {
    ((high as u32) << 16) | low as u32
}

/// Encodes a socket's block: all 20 registers, reserved ones 0.
pub fn encode_socket_registers(s: &SocketSnapshot) -> [u16; SOCKET_BLOCK_LEN as usize] {
    let mut r = [0u16; SOCKET_BLOCK_LEN as usize];
    r[SOCKET_STATE as usize] = s.state as u16;
    r[SOCKET_VOLTAGE as usize] = scaled(s.voltage_v, VOLTAGE_COUNTS_PER_V) as u16;
    r[SOCKET_CURRENT as usize] = scaled(s.current_a, CURRENT_COUNTS_PER_A) as u16;
    put_u32(
        &mut r,
        SOCKET_POWER,
        scaled(s.power_w, POWER_COUNTS_PER_W) as u32,
    );
    put_u32(
        &mut r,
        SOCKET_ENERGY,
        scaled(s.energy_wh, ENERGY_COUNTS_PER_WH) as u32,
    );
    let temperature = scaled(s.temperature_c, TEMPERATURE_COUNTS_PER_C) as i16;
    r[SOCKET_TEMPERATURE as usize] = temperature as u16;
    r[SOCKET_RELAY as usize] = u16::from(s.relay_on);
    r[SOCKET_FAULT as usize] = s.fault as u16;
    put_u32(&mut r, SOCKET_SESSION_DURATION, s.session_s);
    r[SOCKET_RESIDUAL_CURRENT as usize] = s.residual_ma;
    r
}

/// Encodes the pile block (addresses 0..=4), including [`MAP_VERSION`].
pub fn encode_pile_registers(p: &PileSnapshot) -> [u16; PILE_BLOCK_LEN as usize] {
    let mut r = [0u16; PILE_BLOCK_LEN as usize];
    r[PILE_MAP_VERSION as usize] = MAP_VERSION;
    r[PILE_SOCKET_COUNT as usize] = p.socket_count;
    put_u32(
        &mut r,
        PILE_TOTAL_POWER,
        scaled(p.total_power_w, POWER_COUNTS_PER_W) as u32,
    );
    r[PILE_FAULT_BITS as usize] = p.fault_bits;
    r
}

/// Decodes a socket's block from at least its 13 data registers (the
/// reserved ones are ignored). Values come back at register resolution.
pub fn decode_socket_registers(words: &[u16]) -> Result<SocketSnapshot, DecodeError> {
    let needed = SOCKET_USED_LEN as usize;
    let Some(r) = words.get(..needed) else {
        return Err(DecodeError::TooShort {
            needed,
            got: words.len(),
        });
    };
    let state_word = r[SOCKET_STATE as usize];
    let fault_word = r[SOCKET_FAULT as usize];
    Ok(SocketSnapshot {
        state: SocketState::from_u16(state_word).ok_or(DecodeError::UnknownState(state_word))?,
        voltage_v: f32::from(r[SOCKET_VOLTAGE as usize]) / VOLTAGE_COUNTS_PER_V,
        current_a: f32::from(r[SOCKET_CURRENT as usize]) / CURRENT_COUNTS_PER_A,
        power_w: get_u32(r, SOCKET_POWER) as f32 / POWER_COUNTS_PER_W,
        energy_wh: get_u32(r, SOCKET_ENERGY) as f32 / ENERGY_COUNTS_PER_WH,
        temperature_c: f32::from(r[SOCKET_TEMPERATURE as usize] as i16) / TEMPERATURE_COUNTS_PER_C,
        relay_on: r[SOCKET_RELAY as usize] != 0,
        fault: FaultCode::from_u16(fault_word).ok_or(DecodeError::UnknownFault(fault_word))?,
        session_s: get_u32(r, SOCKET_SESSION_DURATION),
        residual_ma: r[SOCKET_RESIDUAL_CURRENT as usize],
    })
}

/// Decodes the pile block; refuses a map version other than [`MAP_VERSION`].
pub fn decode_pile_registers(words: &[u16]) -> Result<PileSnapshot, DecodeError> {
    let needed = PILE_BLOCK_LEN as usize;
    let Some(r) = words.get(..needed) else {
        return Err(DecodeError::TooShort {
            needed,
            got: words.len(),
        });
    };
    let version = r[PILE_MAP_VERSION as usize];
    if version != MAP_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    Ok(PileSnapshot {
        socket_count: r[PILE_SOCKET_COUNT as usize],
        total_power_w: get_u32(r, PILE_TOTAL_POWER) as f32 / POWER_COUNTS_PER_W,
        fault_bits: r[PILE_FAULT_BITS as usize],
    })
}

/// `value * counts_per_unit`, rounded half away from zero. The caller's `as`
/// cast then saturates at the register's range and maps NaN to 0. (`round`
/// is not in `core` on our minimum Rust version, hence the manual form.)
fn scaled(value: f32, counts_per_unit: f32) -> f32 {
    let x = value * counts_per_unit;
    if x >= 0.0 {
        x + 0.5
    } else {
        x - 0.5
    }
}

fn put_u32(r: &mut [u16], offset: u16, value: u32) {
    let [high, low] = split_u32(value);
    r[offset as usize] = high;
    r[offset as usize + 1] = low;
}

fn get_u32(r: &[u16], offset: u16) -> u32 {
    join_u32(r[offset as usize], r[offset as usize + 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SocketSnapshot {
        SocketSnapshot {
            state: SocketState::Charging,
            voltage_v: 231.4,
            current_a: 0.873,
            power_w: 196.3,
            energy_wh: 412.7,
            temperature_c: 31.2,
            relay_on: true,
            fault: FaultCode::None,
            session_s: 7_260,
            residual_ma: 3,
        }
    }

    #[test]
    fn voltage_is_scaled_to_tenths() {
        let r = encode_socket_registers(&sample());
        assert_eq!(r[SOCKET_VOLTAGE as usize], 2314);
        assert_eq!(r[SOCKET_CURRENT as usize], 873);
    }

    #[test]
    fn negative_temperature_is_twos_complement() {
        let s = SocketSnapshot {
            temperature_c: -5.3,
            ..sample()
        };
        let r = encode_socket_registers(&s);
        assert_eq!(r[SOCKET_TEMPERATURE as usize], 0xFFCB); // -53
        assert_eq!(r[SOCKET_TEMPERATURE as usize] as i16, -53);
    }

    #[test]
    fn u32_values_are_split_high_word_first() {
        assert_eq!(split_u32(0x0001_86A0), [0x0001, 0x86A0]);
        assert_eq!(join_u32(0x0001, 0x86A0), 100_000);
        let s = SocketSnapshot {
            power_w: 10_000.0, // 100_000 counts, needs the high word
            session_s: 70_000,
            ..sample()
        };
        let r = encode_socket_registers(&s);
        assert_eq!(r[SOCKET_POWER as usize..][..2], [0x0001, 0x86A0]);
        assert_eq!(r[SOCKET_SESSION_DURATION as usize..][..2], [0x0001, 0x1170]);
    }

    #[test]
    fn out_of_range_values_saturate_instead_of_wrapping() {
        let s = SocketSnapshot {
            voltage_v: 1.0e9,
            current_a: -2.0,
            temperature_c: f32::NAN,
            energy_wh: f32::INFINITY,
            ..sample()
        };
        let r = encode_socket_registers(&s);
        assert_eq!(r[SOCKET_VOLTAGE as usize], u16::MAX);
        assert_eq!(r[SOCKET_CURRENT as usize], 0);
        assert_eq!(r[SOCKET_TEMPERATURE as usize], 0);
        assert_eq!(get_u32(&r, SOCKET_ENERGY), u32::MAX);
    }

    #[test]
    fn reserved_registers_are_zero() {
        let r = encode_socket_registers(&sample());
        assert!(r[SOCKET_USED_LEN as usize..].iter().all(|&w| w == 0));
    }

    #[test]
    fn socket_block_round_trips_at_register_resolution() {
        let s = sample();
        let back = decode_socket_registers(&encode_socket_registers(&s)).expect("decodes");
        assert_eq!(back.state, s.state);
        assert!((back.voltage_v - 231.4).abs() < 1e-3);
        assert!((back.current_a - 0.873).abs() < 1e-6);
        assert!((back.power_w - 196.3).abs() < 1e-3);
        assert!((back.energy_wh - 412.7).abs() < 1e-3);
        assert!((back.temperature_c - 31.2).abs() < 1e-3);
        assert_eq!(back.session_s, 7_260);
        assert!(back.relay_on);
    }

    #[test]
    fn decoding_rejects_unknown_codes_and_short_input() {
        let mut r = encode_socket_registers(&sample());
        r[SOCKET_STATE as usize] = 9;
        assert_eq!(
            decode_socket_registers(&r),
            Err(DecodeError::UnknownState(9))
        );
        assert_eq!(
            decode_socket_registers(&r[..4]),
            Err(DecodeError::TooShort { needed: 13, got: 4 })
        );
    }

    #[test]
    fn pile_block_carries_version_and_total_power() {
        let p = PileSnapshot {
            socket_count: 10,
            total_power_w: 1_234.5,
            fault_bits: 0,
        };
        let r = encode_pile_registers(&p);
        assert_eq!(r, [MAP_VERSION, 10, 0, 12_345, 0]);
        assert_eq!(decode_pile_registers(&r), Ok(p));
        assert_eq!(
            decode_pile_registers(&[2, 10, 0, 0, 0]),
            Err(DecodeError::UnsupportedVersion(2))
        );
    }
}
