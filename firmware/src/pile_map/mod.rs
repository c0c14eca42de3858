//! The charging pile's Modbus register map: the single source of truth.
//!
//! The firmware serves these registers, the simulator serves the same words
//! through the same encoders, and the gateway's device profile
//! (`config/devices/*.toml`) is written against this table. Anything that
//! reads or writes a pile register by number should use the constants here.
//!
//! All values are holding registers (read with function 0x03), one big-endian
//! 16-bit word each. 32-bit values occupy two consecutive registers, **high
//! word first** (so `power = (r[3] << 16) | r[4]`). Signed values are two's
//! complement.
//!
//! | address | name | type | unit |
//! |---|---|---|---|
//! | 0 | map version ([`MAP_VERSION`]) | u16 | |
//! | 1 | socket count N | u16 | |
//! | 2..=3 | total power of all sockets | u32 | 0.1 W |
//! | 4 | pile fault bits ([`PILE_FAULT_SOCKET`], [`PILE_FAULT_OVERLOAD`]) | u16 | bits |
//! | 5..=99 | *not mapped: reading them is an Illegal Data Address* | | |
//!
//! Socket `n` (1-based, `1..=N`) owns the 20 registers from
//! [`socket_base(n)`](socket_base) `= 100 + (n - 1) * 20`:
//!
//! | offset | name | type | unit |
//! |---|---|---|---|
//! | +0 | state ([`SocketState`]) | u16 | enum |
//! | +1 | mains voltage | u16 | 0.1 V |
//! | +2 | current | u16 | 0.001 A |
//! | +3..=+4 | power | u32 | 0.1 W |
//! | +5..=+6 | session energy | u32 | 0.1 Wh |
//! | +7 | temperature | i16 | 0.1 °C |
//! | +8 | relay (0 off, 1 on) | u16 | |
//! | +9 | fault code ([`FaultCode`]) | u16 | enum |
//! | +10..=+11 | session duration | u32 | s |
//! | +12 | residual current | u16 | mA |
//! | +13..=+19 | reserved, read as 0 | | |
//!
//! Coils (read 0x01, write 0x05/0x0F): coil `n - 1` is the relay of socket
//! `n`; writing 1 starts the socket (closes the relay, unless the firmware
//! refuses: a latched fault or the pile at its limit), 0 stops it.
//!
//! **Control block** (read 0x03, write 0x06/0x10). Socket `n` owns the 10
//! registers from [`control_base(n)`](control_base) `= 2000 + (n - 1) * 10`:
//!
//! | offset | name | unit | valid writes |
//! |---|---|---|---|
//! | +0 | command ([`Command`]; reads 0) | enum | 1 start, 2 stop, 3 reset fault |
//! | +1 | overcurrent limit (0 = off) | 0.001 A | 0, 100..=16000 |
//! | +2 | overpower limit (0 = off) | W | 0, 10..=3680 |
//! | +3 | maximum charging time (0 = off) | min | 0, 1..=2880 |
//! | +4..=+9 | reserved, read as 0, not writable | | |
//!
//! A write outside the valid range is an Illegal Data Value and changes
//! nothing; a command the firmware refuses (start with a latched fault,
//! reset while the cause is present) is a Server Device Failure.
//!
//! A reading that spans several sockets in one request is legal as long as
//! every address in it is mapped (reserved offsets count as mapped), so a
//! gateway can poll all sockets with `ceil(N * 20 / 125)` requests.

mod codes;
mod encode;

pub use codes::{FaultCode, SocketState, PILE_FAULT_OVERLOAD, PILE_FAULT_SOCKET};
pub use encode::{
    decode_pile_registers, decode_socket_registers, encode_pile_registers, encode_socket_registers,
    join_u32, split_u32, DecodeError, PileSnapshot, SocketSnapshot, CURRENT_COUNTS_PER_A,
    ENERGY_COUNTS_PER_WH, POWER_COUNTS_PER_W, TEMPERATURE_COUNTS_PER_C, VOLTAGE_COUNTS_PER_V,
};

/// Version of this map, served in register [`PILE_MAP_VERSION`]. A gateway
/// should refuse to decode a pile whose version it does not know.
pub const MAP_VERSION: u16 = 1;

/// Largest socket count this map supports. Real piles have 2–20 sockets; 64
/// keeps a whole pile well inside one coil read and the address space small.
pub const MAX_SOCKETS: u16 = 64;

/// First address of the pile block.
pub const PILE_BLOCK_START: u16 = 0;
/// Number of registers in the pile block (addresses 0..=4).
pub const PILE_BLOCK_LEN: u16 = 5;
/// Address of the map version.
pub const PILE_MAP_VERSION: u16 = 0;
/// Address of the socket count N.
pub const PILE_SOCKET_COUNT: u16 = 1;
/// Address of the total power, u32 in 0.1 W, high word first (2..=3).
pub const PILE_TOTAL_POWER: u16 = 2;
/// Address of the pile fault bits.
pub const PILE_FAULT_BITS: u16 = 4;

/// Address of socket 1's block.
pub const SOCKET_BLOCK_START: u16 = 100;
/// Distance between two sockets' blocks, and the length of one block
/// including its reserved registers.
pub const SOCKET_BLOCK_LEN: u16 = 20;
/// Registers of a block that carry data (offsets 0..=12); the rest read as 0.
pub const SOCKET_USED_LEN: u16 = 13;

/// Offset of the socket state ([`SocketState`]).
pub const SOCKET_STATE: u16 = 0;
/// Offset of the mains voltage, u16 in 0.1 V.
pub const SOCKET_VOLTAGE: u16 = 1;
/// Offset of the current, u16 in 0.001 A.
pub const SOCKET_CURRENT: u16 = 2;
/// Offset of the power, u32 in 0.1 W (high word at +3, low at +4).
pub const SOCKET_POWER: u16 = 3;
/// Offset of the session energy, u32 in 0.1 Wh (high word at +5, low at +6).
pub const SOCKET_ENERGY: u16 = 5;
/// Offset of the temperature, i16 in 0.1 °C.
pub const SOCKET_TEMPERATURE: u16 = 7;
/// Offset of the relay state, 0 off, 1 on.
pub const SOCKET_RELAY: u16 = 8;
/// Offset of the fault code ([`FaultCode`]).
pub const SOCKET_FAULT: u16 = 9;
/// Offset of the session duration, u32 in seconds (high word at +10).
pub const SOCKET_SESSION_DURATION: u16 = 10;
/// Offset of the residual (earth-leakage) current, u16 in mA.
pub const SOCKET_RESIDUAL_CURRENT: u16 = 12;

/// First address of socket `n`'s block, or `None` if `n` is 0 or above
/// [`MAX_SOCKETS`]. Sockets are numbered from 1, as printed on the pile.
pub const fn socket_base(n: u16) -> Option<u16> {
    if n == 0 || n > MAX_SOCKETS {
        return None;
    }
    Some(SOCKET_BLOCK_START + (n - 1) * SOCKET_BLOCK_LEN)
}

/// Address of register `offset` of socket `n`, e.g.
/// `socket_register(3, SOCKET_POWER)`; `None` if the socket or offset is out
/// of range.
pub const fn socket_register(n: u16, offset: u16) -> Option<u16> {
    if offset >= SOCKET_BLOCK_LEN {
        return None;
    }
    match socket_base(n) {
        Some(base) => Some(base + offset),
        None => None,
    }
}

/// Coil address of socket `n`'s relay, or `None` if `n` is out of range.
pub const fn relay_coil(n: u16) -> Option<u16> {
    if n == 0 || n > MAX_SOCKETS {
        return None;
    }
    Some(n - 1)
}

/// Socket whose relay is at coil `coil` on a pile with `socket_count`
/// sockets, or `None` if that coil is not mapped.
pub const fn coil_socket(coil: u16, socket_count: u16) -> Option<u16> {
    if coil < socket_count && coil < MAX_SOCKETS {
        Some(coil + 1)
    } else {
        None
    }
}

/// What a holding-register address means on a pile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Register {
    /// Register `offset` of the pile block (0..[`PILE_BLOCK_LEN`]).
    Pile {
        /// Offset within the pile block.
        offset: u16,
    },
    /// Register `offset` (0..[`SOCKET_BLOCK_LEN`], reserved offsets
    /// included) of socket `socket` (1-based).
    Socket {
        /// Socket number, 1-based.
        socket: u16,
        /// Offset within the socket's block.
        offset: u16,
    },
    /// Register `offset` (0..[`CONTROL_BLOCK_LEN`]) of socket `socket`'s
    /// control block.
    Control {
        /// Socket number, 1-based.
        socket: u16,
        /// Offset within the control block.
        offset: u16,
    },
}

/// First address of the control block; above the last possible socket
/// block (`100 + 64 * 20 = 1380`).
pub const CONTROL_BLOCK_START: u16 = 2000;
/// Distance between two sockets' control blocks.
pub const CONTROL_BLOCK_LEN: u16 = 10;
/// Control offset of the command register ([`Command`]).
pub const CONTROL_COMMAND: u16 = 0;
/// Control offset of the overcurrent limit, u16 in 0.001 A, 0 = off.
pub const CONTROL_OVERCURRENT_LIMIT: u16 = 1;
/// Control offset of the overpower limit, u16 in W, 0 = off.
pub const CONTROL_OVERPOWER_LIMIT: u16 = 2;
/// Control offset of the maximum charging time, u16 in minutes, 0 = off.
pub const CONTROL_MAX_CHARGING: u16 = 3;
/// Control registers that carry data (offsets 0..=3).
pub const CONTROL_USED_LEN: u16 = 4;

/// First address of socket `n`'s control block, or `None` out of range.
pub const fn control_base(n: u16) -> Option<u16> {
    if n == 0 || n > MAX_SOCKETS {
        return None;
    }
    Some(CONTROL_BLOCK_START + (n - 1) * CONTROL_BLOCK_LEN)
}

/// A command written to a socket's command register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Command {
    /// Close the relay (start a session).
    Start = 1,
    /// Open the relay (stop the session).
    Stop = 2,
    /// Clear a latched fault.
    ResetFault = 3,
}

impl Command {
    /// Decodes a command word, or `None` for an unknown command.
    pub const fn from_u16(value: u16) -> Option<Self> {
        Some(match value {
            1 => Self::Start,
            2 => Self::Stop,
            3 => Self::ResetFault,
            _ => return None,
        })
    }
}

/// Resolves `addr` on a pile with `socket_count` sockets, or `None` if the
/// address is not mapped (a server answers Illegal Data Address).
///
/// Both the firmware's slave and the simulator use this, so the two agree on
/// which addresses exist.
pub const fn locate(addr: u16, socket_count: u16) -> Option<Register> {
    if addr < PILE_BLOCK_START + PILE_BLOCK_LEN {
        return Some(Register::Pile {
            offset: addr - PILE_BLOCK_START,
        });
    }
    if addr < SOCKET_BLOCK_START {
        return None;
    }
    let count = if socket_count > MAX_SOCKETS {
        MAX_SOCKETS
    } else {
        socket_count
    };
    if addr >= CONTROL_BLOCK_START {
        let rel = addr - CONTROL_BLOCK_START;
        let socket = rel / CONTROL_BLOCK_LEN + 1;
        if socket > count {
            return None;
        }
        return Some(Register::Control {
            socket,
            offset: rel % CONTROL_BLOCK_LEN,
        });
    }
    let rel = addr - SOCKET_BLOCK_START;
    let socket = rel / SOCKET_BLOCK_LEN + 1;
    if socket > count {
        return None;
    }
    Some(Register::Socket {
        socket,
        offset: rel % SOCKET_BLOCK_LEN,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_bases_follow_the_stride() {
        assert_eq!(socket_base(1), Some(100));
        assert_eq!(socket_base(2), Some(120));
        assert_eq!(socket_base(10), Some(280));
        assert_eq!(socket_base(0), None);
        assert_eq!(socket_base(MAX_SOCKETS + 1), None);
        assert_eq!(socket_register(2, SOCKET_TEMPERATURE), Some(127));
        assert_eq!(socket_register(2, SOCKET_BLOCK_LEN), None);
    }

    #[test]
    fn locate_maps_blocks_and_rejects_the_gap() {
        assert_eq!(locate(0, 4), Some(Register::Pile { offset: 0 }));
        assert_eq!(locate(4, 4), Some(Register::Pile { offset: 4 }));
        assert_eq!(locate(5, 4), None);
        assert_eq!(locate(99, 4), None);
        assert_eq!(
            locate(100, 4),
            Some(Register::Socket {
                socket: 1,
                offset: 0
            })
        );
        assert_eq!(
            locate(139, 4),
            Some(Register::Socket {
                socket: 2,
                offset: 19
            })
        );
        assert_eq!(
            locate(179, 4),
            Some(Register::Socket {
                socket: 4,
                offset: 19
            })
        );
        assert_eq!(locate(180, 4), None);
        assert_eq!(locate(1999, 4), None);
        assert_eq!(
            locate(2013, 4),
            Some(Register::Control {
                socket: 2,
                offset: 3
            })
        );
        assert_eq!(locate(2040, 4), None);
        assert_eq!(locate(u16::MAX, u16::MAX), None);
    }

    #[test]
    fn relay_coils_are_zero_based() {
        assert_eq!(relay_coil(1), Some(0));
        assert_eq!(relay_coil(0), None);
        assert_eq!(coil_socket(0, 10), Some(1));
        assert_eq!(coil_socket(9, 10), Some(10));
        assert_eq!(coil_socket(10, 10), None);
    }
}
