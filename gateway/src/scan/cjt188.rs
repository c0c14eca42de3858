//! `scan --protocol cjt188`: which CJ/T 188 meters are on a serial line.
//!
//! The standard's read-address request (control `03H`, DI `810AH`) to
//! meter type `AAH` and an address of `AAH` wildcard bytes is answered by
//! every meter the unfixed bytes match. One meter answers cleanly; several
//! answer at once, and their frames collide into bytes that do not add up.
//! So the search starts from the all-wildcard address and, wherever answers
//! collide, fixes the next wildcard byte (A0 first, the digits that differ
//! most between the meters of one building) to each of its 100 BCD values
//! and asks again: a tree of 100 branches per byte, as M-Bus masters search
//! secondary addresses. A clean answer is confirmed by asking that address
//! alone, so a collision that happens to look like a frame is no meter.
//!
//! The scan only reads: it never writes a meter or changes its settings.
//! [`Search`] is the pure search; [`scan`] asks a [`Cjt188Line`].

use crate::bus::cjt188::{Cjt188Line, LineError};
use gridwatch_cjt188::{Address, Command, MeterType, Request};
use std::time::Duration;

/// What one read-address request heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Nothing within the timeout: no meter matches.
    Nothing,
    /// One meter, confirmed at its own address.
    Meter(MeterType, Address),
    /// Bytes that are no single meter's answer: several answered at once.
    Collision,
}

/// A meter found on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundMeter {
    /// Its address.
    pub address: Address,
    /// Its type byte, from its answer.
    pub meter_type: MeterType,
}

/// The search over wildcard addresses: which address to ask next, and what
/// an answer means for the rest.
#[derive(Debug, Clone)]
pub struct Search {
    /// Addresses still to ask, the next last.
    pending: Vec<Address>,
    /// Meters found, in the order of their printed addresses.
    pub found: Vec<FoundMeter>,
    /// Fully fixed addresses where answers still collided: meters that
    /// share an address (a wiring or numbering fault to report).
    pub shared: Vec<Address>,
    /// Requests asked so far.
    pub asked: u32,
}

impl Default for Search {
    fn default() -> Self {
        Self::new()
    }
}

impl Search {
    /// A search of the whole line.
    pub fn new() -> Self {
        Self {
            pending: vec![Address::WILDCARD],
            found: Vec::new(),
            shared: Vec::new(),
            asked: 0,
        }
    }

    /// The address to ask next, or `None` when the search is over.
    pub fn next_mask(&mut self) -> Option<Address> {
        let next = self.pending.pop()?;
        self.asked += 1;
        Some(next)
    }

    /// Takes what asking `mask` heard.
    pub fn heard(&mut self, mask: Address, heard: Heard) {
        match heard {
            Heard::Nothing => {}
            Heard::Meter(meter_type, address) => {
                if !self.found.iter().any(|f| f.address == address) {
                    self.found.push(FoundMeter {
                        address,
                        meter_type,
                    });
                    // Printed most significant first; the wire is A0 first.
                    self.found.sort_by_key(|f| {
                        let mut printed = f.address.0;
                        printed.reverse();
                        printed
                    });
                }
            }
            Heard::Collision => match mask.0.iter().position(|b| *b == 0xAA) {
                Some(i) => {
                    // Pushed from 99 down, so 00 is asked first.
                    for v in (0..100u8).rev() {
                        let mut narrower = mask;
                        narrower.0[i] = ((v / 10) << 4) | (v % 10);
                        self.pending.push(narrower);
                    }
                }
                None => {
                    if !self.shared.contains(&mask) {
                        self.shared.push(mask);
                    }
                }
            },
        }
    }
}

/// Why a scan stopped before its end.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScanError(String);

/// What a scan of a line found.
#[derive(Debug, Clone)]
pub struct Scanned {
    /// The meters, by address.
    pub meters: Vec<FoundMeter>,
    /// Addresses more than one meter answers at.
    pub shared: Vec<Address>,
    /// Requests sent.
    pub asked: u32,
}

/// Reads the address at `mask` (wildcards allowed) and what it means.
async fn ask(
    line: &Cjt188Line,
    mask: Address,
    ser: u8,
    preamble: usize,
    timeout: Duration,
) -> Result<Heard, ScanError> {
    let read = |meter_type, address| {
        Request {
            meter_type,
            address,
            ser,
            command: Command::ReadAddress,
        }
        .frame()
    };
    let heard = |r: Result<gridwatch_cjt188::Frame, LineError>| match r {
        Ok(f) => Ok(Some(f)),
        Err(LineError::Timeout { received: 0, .. }) => Ok(None),
        // Bytes that make no answer: answers on top of each other.
        Err(LineError::Timeout { .. }) => Err(None),
        Err(e) => Err(Some(ScanError(e.to_string()))),
    };
    let first = match heard(
        line.transact(&read(MeterType::WILDCARD, mask), preamble, timeout)
            .await,
    ) {
        Ok(None) => return Ok(Heard::Nothing),
        Ok(Some(f)) => f,
        Err(None) => return Ok(Heard::Collision),
        Err(Some(e)) => return Err(e),
    };
    if !first.address.is_valid() || first.address.has_wildcard() {
        return Ok(Heard::Collision);
    }
    // Confirmed only if that address alone answers as itself.
    let again = line
        .transact(&read(first.meter_type, first.address), preamble, timeout)
        .await;
    match heard(again) {
        Ok(Some(f)) if f.address == first.address => Ok(Heard::Meter(f.meter_type, f.address)),
        Ok(_) | Err(None) => Ok(Heard::Collision),
        Err(Some(e)) => Err(e),
    }
}

/// Searches `line` for every meter on it, each request after `preamble`
/// `FEH` bytes and given `timeout` to be answered. `progress` hears each
/// meter as it is found.
pub async fn scan(
    line: &Cjt188Line,
    preamble: usize,
    timeout: Duration,
    mut progress: impl FnMut(&FoundMeter),
) -> Result<Scanned, ScanError> {
    let mut search = Search::new();
    let mut ser = 0u8;
    while let Some(mask) = search.next_mask() {
        ser = ser.wrapping_add(1);
        let heard = ask(line, mask, ser, preamble, timeout).await?;
        let before = search.found.len();
        search.heard(mask, heard);
        if search.found.len() > before {
            if let Heard::Meter(meter_type, address) = heard {
                progress(&FoundMeter {
                    address,
                    meter_type,
                });
            }
        }
    }
    Ok(Scanned {
        meters: search.found,
        shared: search.shared,
        asked: search.asked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Address {
        Address::parse(text).unwrap()
    }

    /// Runs the search against meters at `on_line`, heard as a bus hears
    /// them: none, one, or a collision.
    fn search(on_line: &[Address]) -> Search {
        let mut s = Search::new();
        while let Some(mask) = s.next_mask() {
            assert!(s.asked < 10_000, "the search does not end");
            let matching: Vec<&Address> = on_line.iter().filter(|a| a.accepts(&mask)).collect();
            let heard = match matching.as_slice() {
                [] => Heard::Nothing,
                [one] => Heard::Meter(MeterType::COLD_WATER, **one),
                _ => Heard::Collision,
            };
            s.heard(mask, heard);
        }
        s
    }

    #[test]
    fn a_lone_meter_is_found_with_one_request() {
        let s = search(&[addr("12345678901234")]);
        assert_eq!(s.found.len(), 1);
        assert_eq!(s.found[0].address, addr("12345678901234"));
        assert_eq!(s.asked, 1);
        assert!(search(&[]).found.is_empty());
    }

    #[test]
    fn colliding_meters_are_told_apart_by_narrowing() {
        let meters = [
            addr("00000000000101"),
            addr("00000000000201"),
            addr("00000000000002"),
            addr("33000000000003"),
            addr("34000000000003"),
        ];
        let s = search(&meters);
        let mut want = meters.to_vec();
        want.sort_by_key(|a| a.to_string());
        let got: Vec<Address> = s.found.iter().map(|f| f.address).collect();
        assert_eq!(got, want);
        assert!(s.shared.is_empty());
        // All, A0 (100), A1 under 01 (100), A1..A6 under 03 (600).
        assert_eq!(s.asked, 1 + 100 + 100 + 600);
    }

    #[test]
    fn two_meters_at_one_address_are_reported_not_lost() {
        let twin = addr("00000000000007");
        let s = search(&[twin, twin, addr("00000000000008")]);
        assert_eq!(s.shared, vec![twin]);
        assert_eq!(s.found.len(), 1);
    }
}
