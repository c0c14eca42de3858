//! The pile seen through Modbus: holding registers and relay coils.
//!
//! Every access goes through the firmware's own slave
//! ([`gridwatch_firmware::slave`]) over the pile's controller, so the
//! simulator answers exactly as the firmware would: the same map, the same
//! validation of commands and limits, the same exceptions. Errors carry what
//! a Modbus server answers as an exception.

use gridwatch_firmware::slave::{self, Exception};

use super::model::PileModel;

pub use gridwatch_firmware::slave::{
    MAX_READ_COILS, MAX_READ_REGISTERS, MAX_WRITE_COILS, MAX_WRITE_REGISTERS,
};

/// Why a register or coil access was refused; maps one-to-one onto a Modbus
/// exception code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// Some address in the range is not mapped, or not writable
    /// (exception 0x02).
    #[error("a request for {count} from {start} touches an address that is not mapped")]
    IllegalDataAddress {
        /// First address of the request.
        start: u16,
        /// Quantity requested.
        count: u16,
    },
    /// The quantity is 0 or above the protocol's limit, or a written value
    /// is outside its valid range (exception 0x03).
    #[error("a request for {count} from {start} has a quantity or value outside the valid range")]
    IllegalDataValue {
        /// First address of the request.
        start: u16,
        /// Quantity requested.
        count: u16,
    },
    /// The firmware refused the command (exception 0x04): a start on a
    /// socket with a latched fault or on a pile at its limit, or a fault
    /// reset while its cause is present.
    #[error("the pile's firmware refused the command written from {start}")]
    Refused {
        /// First address of the request.
        start: u16,
        /// Quantity requested.
        count: u16,
    },
    /// The function is not supported (exception 0x01).
    #[error("function not supported")]
    IllegalFunction,
}

fn error(e: Exception, start: u16, count: usize) -> RegisterError {
    let count = u16::try_from(count).unwrap_or(u16::MAX);
    match e {
        Exception::IllegalFunction => RegisterError::IllegalFunction,
        Exception::IllegalDataAddress => RegisterError::IllegalDataAddress { start, count },
        Exception::IllegalDataValue => RegisterError::IllegalDataValue { start, count },
        Exception::ServerDeviceFailure => RegisterError::Refused { start, count },
    }
}

impl PileModel {
    /// Reads `count` holding registers from `start`, as function 0x03 does.
    ///
    /// Every address must be mapped: the pile block (0..=4), a socket's
    /// block (reserved offsets read as 0) or a socket's control block. The
    /// gap 5..=99 and anything past the last socket is
    /// [`RegisterError::IllegalDataAddress`].
    pub fn read_holding(&self, start: u16, count: u16) -> Result<Vec<u16>, RegisterError> {
        let mut out = vec![0; usize::from(count)];
        slave::read_holding(self.controller(), start, &mut out)
            .map_err(|e| error(e, start, out.len()))?;
        Ok(out)
    }

    /// Writes holding registers from `start` (functions 0x06 and 0x10):
    /// commands and limits in the control block. Either every value is
    /// valid and written, or nothing changes.
    pub fn write_registers(&mut self, start: u16, values: &[u16]) -> Result<(), RegisterError> {
        self.with_firmware(|c| slave::write_holding(c, start, values))
            .map_err(|e| error(e, start, values.len()))
    }

    /// Reads `count` relay coils from `start` (function 0x01).
    pub fn read_coils(&self, start: u16, count: u16) -> Result<Vec<bool>, RegisterError> {
        let mut out = vec![false; usize::from(count)];
        slave::read_coils(self.controller(), start, &mut out)
            .map_err(|e| error(e, start, out.len()))?;
        Ok(out)
    }

    /// Writes one relay coil (function 0x05): `true` starts the socket.
    pub fn write_coil(&mut self, addr: u16, on: bool) -> Result<(), RegisterError> {
        self.write_coils(addr, &[on])
    }

    /// Writes consecutive relay coils from `start` (function 0x0F). If an
    /// address is not mapped, no relay switches.
    pub fn write_coils(&mut self, start: u16, values: &[bool]) -> Result<(), RegisterError> {
        self.with_firmware(|c| slave::write_coils(c, start, values))
            .map_err(|e| error(e, start, values.len()))
    }
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
        for (start, count) in [
            (5, 1),
            (3, 4),
            (99, 2),
            (150, 20),
            (1999, 1),
            (2030, 1),
            (u16::MAX, 2),
        ] {
            assert_eq!(
                p.read_holding(start, count),
                Err(RegisterError::IllegalDataAddress { start, count })
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
            Err(RegisterError::IllegalDataAddress { start: 1, count: 3 })
        ));
        assert_eq!(p.read_coils(0, 3), Ok(vec![false, true, false]));
        assert!(p.read_coils(3, 1).is_err());
    }

    #[test]
    fn commands_and_limits_go_through_the_firmware() {
        use gridwatch_firmware::pile_map::{control_base, Command, CONTROL_OVERPOWER_LIMIT};
        let mut p = pile();
        let base = control_base(2).expect("socket 2");
        p.write_registers(base, &[Command::Stop as u16])
            .expect("valid");
        assert_eq!(p.socket(2).expect("socket 2").state, SocketState::Finished);
        assert_eq!(p.socket(2).expect("socket 2").power_w, 0.0);
        p.write_registers(base, &[Command::Start as u16])
            .expect("valid");
        assert_eq!(p.socket(2).expect("socket 2").state, SocketState::Charging);
        let limit = base + CONTROL_OVERPOWER_LIMIT;
        assert_eq!(
            p.write_registers(limit, &[5]),
            Err(RegisterError::IllegalDataValue {
                start: limit,
                count: 1
            })
        );
        p.write_registers(limit, &[800]).expect("valid");
        assert_eq!(p.read_holding(limit, 1), Ok(vec![800]));
        assert_eq!(p.protections(2).expect("socket 2").overpower_w, Some(800.0));
    }
}
