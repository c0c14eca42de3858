//! The pile as a Modbus slave: register and coil access over a
//! [`PileController`], and the RTU framing around it ([`rtu`]).
//!
//! Both the firmware's RTU slave and the simulator's TCP server answer
//! through these functions, so every client sees the same map, the same
//! validation and the same exceptions.

pub mod rtu;

use crate::controller::{PileController, Protections, SocketController};
use crate::pile_map::{
    self, Command, Register, CONTROL_COMMAND, CONTROL_MAX_CHARGING, CONTROL_OVERCURRENT_LIMIT,
    CONTROL_OVERPOWER_LIMIT,
};

/// Most registers one read may ask for (Modbus application protocol 6.3).
pub const MAX_READ_REGISTERS: u16 = 125;
/// Most registers one Write Multiple Registers may carry (6.12).
pub const MAX_WRITE_REGISTERS: u16 = 123;
/// Most coils one Read Coils may ask for (6.1).
pub const MAX_READ_COILS: u16 = 2000;
/// Most coils one Write Multiple Coils may carry (6.11).
pub const MAX_WRITE_COILS: u16 = 1968;

/// A Modbus exception, with its wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exception {
    /// Function not supported (0x01).
    IllegalFunction = 0x01,
    /// An address in the request is not mapped (0x02).
    IllegalDataAddress = 0x02,
    /// A quantity or value outside what is allowed (0x03).
    IllegalDataValue = 0x03,
    /// The firmware refused the command (0x04).
    ServerDeviceFailure = 0x04,
}

/// Range of an overcurrent limit write, in mA (0 disables).
const OVERCURRENT_MA: core::ops::RangeInclusive<u16> = 100..=16_000;
/// Range of an overpower limit write, in W (0 disables).
const OVERPOWER_W: core::ops::RangeInclusive<u16> = 10..=3_680;
/// Range of a maximum charging time write, in minutes (0 disables).
const MAX_CHARGING_MIN: core::ops::RangeInclusive<u16> = 1..=2_880;

fn check_quantity(count: usize, max: u16) -> Result<(), Exception> {
    if count == 0 || count > usize::from(max) {
        return Err(Exception::IllegalDataValue);
    }
    Ok(())
}

/// Reads `out.len()` holding registers from `start` (function 0x03).
pub fn read_holding<S>(
    pile: &PileController<S>,
    start: u16,
    out: &mut [u16],
) -> Result<(), Exception>
where
    S: AsRef<[SocketController]> + AsMut<[SocketController]>,
{
    check_quantity(out.len(), MAX_READ_REGISTERS)?;
    let count = pile.socket_count();
    let mut cached: Option<(u16, [u16; pile_map::SOCKET_BLOCK_LEN as usize])> = None;
    for (i, word) in out.iter_mut().enumerate() {
        let addr =
            u16::try_from(usize::from(start) + i).map_err(|_| Exception::IllegalDataAddress)?;
        *word = match pile_map::locate(addr, count) {
            None => return Err(Exception::IllegalDataAddress),
            Some(Register::Pile { offset }) => {
                pile_map::encode_pile_registers(&pile.snapshot())[usize::from(offset)]
            }
            Some(Register::Socket { socket, offset }) => {
                let words = match cached {
                    Some((n, words)) if n == socket => words,
                    _ => {
                        let c = pile
                            .socket(socket)
                            .map_err(|_| Exception::IllegalDataAddress)?;
                        let words = pile_map::encode_socket_registers(&c.snapshot());
                        cached = Some((socket, words));
                        words
                    }
                };
                words[usize::from(offset)]
            }
            Some(Register::Control { socket, offset }) => {
                let c = pile
                    .socket(socket)
                    .map_err(|_| Exception::IllegalDataAddress)?;
                read_control(c.protections(), offset)
            }
        };
    }
    Ok(())
}

fn read_control(p: &Protections, offset: u16) -> u16 {
    let saturate = |x: f32| x as u16; // `as` saturates and maps NaN to 0
    match offset {
        CONTROL_OVERCURRENT_LIMIT => p.overcurrent_a.map_or(0, |a| saturate(a * 1000.0 + 0.5)),
        CONTROL_OVERPOWER_LIMIT => p.overpower_w.map_or(0, |w| saturate(w + 0.5)),
        CONTROL_MAX_CHARGING => p
            .max_charging_ms
            .map_or(0, |ms| u16::try_from(ms / 60_000).unwrap_or(u16::MAX)),
        _ => 0,
    }
}

/// Writes holding registers from `start` (functions 0x06 and 0x10). Every
/// address must be a writable control register and every value valid, or
/// nothing changes. Commands run in address order.
pub fn write_holding<S>(
    pile: &mut PileController<S>,
    start: u16,
    values: &[u16],
) -> Result<(), Exception>
where
    S: AsRef<[SocketController]> + AsMut<[SocketController]>,
{
    check_quantity(values.len(), MAX_WRITE_REGISTERS)?;
    let count = pile.socket_count();
    // First pass: validate everything, so a bad word changes nothing.
    for (i, &value) in values.iter().enumerate() {
        let addr =
            u16::try_from(usize::from(start) + i).map_err(|_| Exception::IllegalDataAddress)?;
        let Some(Register::Control { offset, .. }) = pile_map::locate(addr, count) else {
            return Err(Exception::IllegalDataAddress);
        };
        let valid = match offset {
            CONTROL_COMMAND => Command::from_u16(value).is_some(),
            CONTROL_OVERCURRENT_LIMIT => value == 0 || OVERCURRENT_MA.contains(&value),
            CONTROL_OVERPOWER_LIMIT => value == 0 || OVERPOWER_W.contains(&value),
            CONTROL_MAX_CHARGING => value == 0 || MAX_CHARGING_MIN.contains(&value),
            _ => return Err(Exception::IllegalDataAddress),
        };
        if !valid {
            return Err(Exception::IllegalDataValue);
        }
    }
    for (i, &value) in values.iter().enumerate() {
        let addr = start + i as u16; // checked above
        let Some(Register::Control { socket, offset }) = pile_map::locate(addr, count) else {
            return Err(Exception::IllegalDataAddress);
        };
        write_control(pile, socket, offset, value)?;
    }
    Ok(())
}

fn write_control<S>(
    pile: &mut PileController<S>,
    socket: u16,
    offset: u16,
    value: u16,
) -> Result<(), Exception>
where
    S: AsRef<[SocketController]> + AsMut<[SocketController]>,
{
    let refused = |_| Exception::ServerDeviceFailure;
    if offset == CONTROL_COMMAND {
        return match Command::from_u16(value) {
            Some(Command::Start) => pile.start(socket).map_err(refused),
            Some(Command::Stop) => pile.stop(socket).map_err(refused),
            Some(Command::ResetFault) => pile.reset_fault(socket).map_err(refused),
            None => Err(Exception::IllegalDataValue),
        };
    }
    let c = pile
        .socket_mut(socket)
        .map_err(|_| Exception::IllegalDataAddress)?;
    let mut p = *c.protections();
    let on = |v: u16| (v != 0).then_some(v);
    match offset {
        CONTROL_OVERCURRENT_LIMIT => p.overcurrent_a = on(value).map(|ma| f32::from(ma) / 1000.0),
        CONTROL_OVERPOWER_LIMIT => p.overpower_w = on(value).map(f32::from),
        CONTROL_MAX_CHARGING => p.max_charging_ms = on(value).map(|min| u64::from(min) * 60_000),
        _ => return Err(Exception::IllegalDataAddress),
    }
    c.set_protections(p)
        .map_err(|_| Exception::IllegalDataValue)
}

/// Reads `out.len()` relay coils from `start` (function 0x01).
pub fn read_coils<S>(
    pile: &PileController<S>,
    start: u16,
    out: &mut [bool],
) -> Result<(), Exception>
where
    S: AsRef<[SocketController]> + AsMut<[SocketController]>,
{
    check_quantity(out.len(), MAX_READ_COILS)?;
    check_coils(pile.socket_count(), start, out.len())?;
    for (i, bit) in out.iter_mut().enumerate() {
        let socket = start + i as u16 + 1;
        *bit = pile
            .socket(socket)
            .map_err(|_| Exception::IllegalDataAddress)?
            .relay_on();
    }
    Ok(())
}

/// Writes relay coils from `start` (functions 0x05 and 0x0F): 1 starts a
/// socket, 0 stops it. All addresses must be mapped or nothing changes; a
/// start the firmware refuses is a Server Device Failure (the coils before
/// it have switched).
pub fn write_coils<S>(
    pile: &mut PileController<S>,
    start: u16,
    values: &[bool],
) -> Result<(), Exception>
where
    S: AsRef<[SocketController]> + AsMut<[SocketController]>,
{
    check_quantity(values.len(), MAX_WRITE_COILS)?;
    check_coils(pile.socket_count(), start, values.len())?;
    for (i, &on) in values.iter().enumerate() {
        let socket = start + i as u16 + 1;
        let result = if on {
            pile.start(socket)
        } else {
            pile.stop(socket)
        };
        result.map_err(|_| Exception::ServerDeviceFailure)?;
    }
    Ok(())
}

fn check_coils(sockets: u16, start: u16, count: usize) -> Result<(), Exception> {
    if usize::from(start) + count > usize::from(sockets) {
        return Err(Exception::IllegalDataAddress);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
