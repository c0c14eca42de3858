//! The pile seen through Modbus: holding registers and relay coils.
//!
//! Addresses resolve through [`pile_map::locate`] and values encode through
//! [`pile_map`]'s encoders, so the simulator cannot drift from the firmware's
//! map. Errors carry what a Modbus server answers as an exception.

use gridwatch_firmware::pile_map::{self, Register};

use super::model::PileModel;

/// Most registers one Read Holding Registers request may ask for (Modbus
/// application protocol v1.1b3, 6.3).
pub const MAX_READ_REGISTERS: u16 = 125;
/// Most coils one Read Coils request may ask for (6.1).
pub const MAX_READ_COILS: u16 = 2000;
/// Most coils one Write Multiple Coils request may carry (6.11).
pub const MAX_WRITE_COILS: u16 = 1968;

/// Why a register or coil access was refused; maps one-to-one onto a Modbus
/// exception code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// Some address in the range is not mapped (exception 0x02).
    #[error("address {addr} (in a request for {count} from {start}) is not mapped")]
    IllegalDataAddress {
        /// First address of the request.
        start: u16,
        /// Quantity requested.
        count: u16,
        /// First unmapped address.
        addr: u32,
    },
    /// The quantity is 0 or above the protocol's limit (exception 0x03).
    #[error("quantity {count} is outside 1..={max}")]
    IllegalDataValue {
        /// Quantity requested.
        count: u16,
        /// Protocol limit for this function.
        max: u16,
    },
}

impl PileModel {
    /// Reads `count` holding registers from `start`, as function 0x03 does.
    ///
    /// Every address must be mapped: the pile block (0..=4) or a socket's
    /// block (reserved offsets read as 0). The gap 5..=99 and anything past
    /// the last socket is [`RegisterError::IllegalDataAddress`].
    pub fn read_holding(&self, start: u16, count: u16) -> Result<Vec<u16>, RegisterError> {
        check_quantity(count, MAX_READ_REGISTERS)?;
        let sockets = self.socket_count();
        let mut pile_words = None;
        let mut socket_words: Option<(u16, [u16; pile_map::SOCKET_BLOCK_LEN as usize])> = None;
        let mut out = Vec::with_capacity(usize::from(count));
        for addr in u32::from(start)..u32::from(start) + u32::from(count) {
            let located = u16::try_from(addr)
                .ok()
                .and_then(|a| pile_map::locate(a, sockets));
            let word = match located {
                None => return Err(RegisterError::IllegalDataAddress { start, count, addr }),
                Some(Register::Pile { offset }) => {
                    let words = pile_words.get_or_insert_with(|| {
                        pile_map::encode_pile_registers(&self.pile_snapshot())
                    });
                    words[usize::from(offset)]
                }
                Some(Register::Socket { socket, offset }) => {
                    let words = match socket_words {
                        Some((n, words)) if n == socket => words,
                        _ => {
                            // `locate` only returns sockets that exist.
                            let snapshot = self.socket(socket).map_err(|_| {
                                RegisterError::IllegalDataAddress { start, count, addr }
                            })?;
                            let words = pile_map::encode_socket_registers(&snapshot);
                            socket_words = Some((socket, words));
                            words
                        }
                    };
                    words[usize::from(offset)]
                }
            };
            out.push(word);
        }
        Ok(out)
    }

    /// Reads `count` relay coils from `start` (function 0x01).
    pub fn read_coils(&self, start: u16, count: u16) -> Result<Vec<bool>, RegisterError> {
        check_quantity(count, MAX_READ_COILS)?;
        self.coil_sockets(start, count)?
            .map(|socket| {
                self.relay(socket)
                    .map_err(|_| RegisterError::IllegalDataAddress {
                        start,
                        count,
                        addr: u32::from(socket - 1),
                    })
            })
            .collect()
    }

    /// Writes one relay coil (function 0x05): `true` closes the relay.
    pub fn write_coil(&mut self, addr: u16, on: bool) -> Result<(), RegisterError> {
        self.write_coils(addr, &[on])
    }

    /// Writes consecutive relay coils from `start` (function 0x0F). Either
    /// all addresses are mapped and every relay switches, or none does.
    pub fn write_coils(&mut self, start: u16, values: &[bool]) -> Result<(), RegisterError> {
        let count = u16::try_from(values.len()).unwrap_or(u16::MAX);
        check_quantity(count, MAX_WRITE_COILS)?;
        let sockets: Vec<u16> = self.coil_sockets(start, count)?.collect();
        for (socket, &on) in sockets.into_iter().zip(values) {
            self.set_relay(socket, on)
                .map_err(|_| RegisterError::IllegalDataAddress {
                    start,
                    count,
                    addr: u32::from(socket - 1),
                })?;
        }
        Ok(())
    }

    /// The sockets behind coils `start..start + count`, or the first
    /// unmapped coil.
    fn coil_sockets(
        &self,
        start: u16,
        count: u16,
    ) -> Result<impl Iterator<Item = u16>, RegisterError> {
        let sockets = self.socket_count();
        let end = u32::from(start) + u32::from(count);
        if end > u32::from(sockets) {
            let addr = u32::from(start).max(u32::from(sockets));
            return Err(RegisterError::IllegalDataAddress { start, count, addr });
        }
        Ok((start..start + count).filter_map(move |coil| pile_map::coil_socket(coil, sockets)))
    }
}

fn check_quantity(count: u16, max: u16) -> Result<(), RegisterError> {
    if count == 0 || count > max {
        return Err(RegisterError::IllegalDataValue { count, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use gridwatch_firmware::pile_map::{
        decode_pile_registers, decode_socket_registers, socket_base, SocketState, MAP_VERSION,
        SOCKET_BLOCK_LEN, SOCKET_USED_LEN,
    };

    use super::*;
    use crate::pile::{ChargerKind, PileConfig};

    fn pile() -> PileModel {
        let mut p = PileModel::new(PileConfig {
            sockets: 3,
            ..PileConfig::default()
        })
        .expect("valid config");
        p.plug_in(2, ChargerKind::Lithium).expect("free socket");
        p.step(60_000);
        p
    }

    #[test]
    fn pile_block_reads_version_and_count() {
        let r = pile().read_holding(0, 5).expect("mapped");
        let block = decode_pile_registers(&r).expect("decodes");
        assert_eq!((r[0], block.socket_count), (MAP_VERSION, 3));
        assert!(block.total_power_w > 100.0);
    }

    #[test]
    fn socket_block_decodes_to_the_model_values() {
        let p = pile();
        let base = socket_base(2).expect("mapped");
        let r = p.read_holding(base, SOCKET_BLOCK_LEN).expect("mapped");
        let s = decode_socket_registers(&r).expect("decodes");
        let truth = p.socket(2).expect("socket 2");
        assert_eq!(s.state, SocketState::Charging);
        assert!((s.power_w - truth.power_w).abs() <= 0.05);
        assert!((s.voltage_v - truth.voltage_v).abs() <= 0.05);
        assert!(r[usize::from(SOCKET_USED_LEN)..].iter().all(|&w| w == 0));
    }

    #[test]
    fn one_read_may_span_several_sockets() {
        let p = pile();
        let all = p.read_holding(100, 60).expect("mapped");
        assert_eq!(all[20..40], p.read_holding(120, 20).expect("mapped")[..]);
    }

    #[test]
    fn unmapped_addresses_are_illegal() {
        let p = pile();
        for (start, count, addr) in [
            (5, 1, 5),
            (3, 4, 5),
            (99, 2, 99),
            (150, 20, 160),
            (u16::MAX, 2, 65535),
        ] {
            assert_eq!(
                p.read_holding(start, count),
                Err(RegisterError::IllegalDataAddress { start, count, addr })
            );
        }
    }

    #[test]
    fn quantities_outside_the_protocol_are_illegal_values() {
        let p = pile();
        assert!(matches!(
            p.read_holding(100, 0),
            Err(RegisterError::IllegalDataValue { .. })
        ));
        assert!(matches!(
            p.read_holding(100, 126),
            Err(RegisterError::IllegalDataValue { .. })
        ));
        assert!(matches!(
            p.read_coils(0, 0),
            Err(RegisterError::IllegalDataValue { .. })
        ));
    }

    #[test]
    fn relay_coils_follow_and_switch_the_relays() {
        let mut p = pile();
        assert_eq!(p.read_coils(0, 3), Ok(vec![false, true, false]));
        p.write_coil(1, false).expect("mapped");
        assert_eq!(p.socket(2).expect("socket 2").power_w, 0.0);
        p.write_coils(0, &[true, true, true]).expect("mapped");
        assert_eq!(p.read_coils(0, 3), Ok(vec![true, true, true]));
    }

    #[test]
    fn coil_writes_past_the_last_socket_change_nothing() {
        let mut p = pile();
        assert!(matches!(
            p.write_coils(1, &[false, false, false]),
            Err(RegisterError::IllegalDataAddress { addr: 3, .. })
        ));
        assert_eq!(p.read_coils(0, 3), Ok(vec![false, true, false]));
        assert!(p.read_coils(3, 1).is_err());
    }
}
