//! Several meters on one RS-485 line: requests in, answer bytes out.
//!
//! Sans-IO, so the protocol behaviour (who answers what, how each
//! misbehaviour looks on the wire) is tested without a pseudo-terminal.

use super::meter::{Behaviour, Meter};
use gridwatch_dlt645::{Address, Control, DataId, ErrorWord, Frame, Function, DEFAULT_WAKE_UP};

/// The meters sharing a line.
#[derive(Debug, Clone, Default)]
pub struct Line {
    meters: Vec<Meter>,
    /// Requests answered, for tests and the simulator's summary.
    pub answered: u64,
}

impl Line {
    /// A line with `meters`.
    pub fn new(meters: Vec<Meter>) -> Self {
        Self {
            meters,
            answered: 0,
        }
    }

    /// The meters.
    pub fn meters(&self) -> &[Meter] {
        &self.meters
    }

    /// Sets the behaviour of the meter at `address`, or of every meter for
    /// `None`. Returns how many meters changed.
    pub fn set_behaviour(&mut self, address: Option<Address>, behaviour: Behaviour) -> usize {
        let mut n = 0;
        for m in self
            .meters
            .iter_mut()
            .filter(|m| address.is_none_or(|a| m.address == a))
        {
            m.behaviour = behaviour;
            n += 1;
        }
        n
    }

    /// The bytes the line carries back after `request` at `t_ms`: the
    /// answer of the first meter it is for, shaped by that meter's
    /// behaviour; nothing for broadcasts, frames from meters, or requests
    /// no meter here takes.
    pub fn respond(&mut self, request: &Frame, t_ms: i64) -> Option<Vec<u8>> {
        if request.control.from_meter() || request.address == Address::BROADCAST {
            return None;
        }
        let meter = self
            .meters
            .iter_mut()
            .find(|m| m.address.accepts(&request.address))?;
        let function = request.control.function();
        let answer = match function {
            Function::ReadData if request.data().len() == 4 => {
                let d = request.data();
                let di = DataId::from_wire([d[0], d[1], d[2], d[3]]);
                match meter.behaviour {
                    Behaviour::Abnormal(e) => Err(e),
                    _ => meter.read(di, t_ms).map(|value| {
                        let mut data = d.to_vec();
                        data.extend_from_slice(&value);
                        data
                    }),
                }
            }
            Function::ReadAddress => Ok(meter.address.0.to_vec()),
            _ => Err(ErrorWord(ErrorWord::OTHER)),
        };
        let frame = match answer {
            Ok(data) => Frame::new(meter.address, Control::answer(function, false), &data),
            Err(e) => Frame::new(meter.address, Control::abnormal(function), &[e.0]),
        }
        .ok()?;
        let mut wire = vec![0u8; frame.encoded_len(DEFAULT_WAKE_UP)];
        let n = frame.encode(DEFAULT_WAKE_UP, &mut wire).ok()?;
        wire.truncate(n);
        let wire = match meter.behaviour {
            Behaviour::Normal | Behaviour::Abnormal(_) => wire,
            Behaviour::Silent => return None,
            Behaviour::BadChecksum => {
                let cs = wire.len() - 2;
                wire[cs] = wire[cs].wrapping_add(1);
                wire
            }
            Behaviour::Truncated => {
                let keep = wire.len() / 2;
                wire[..keep].to_vec()
            }
            Behaviour::Noise => {
                let mut noisy = vec![0x00, 0x68, 0x12, 0xFF, 0x68, 0x01];
                noisy.extend_from_slice(&wire);
                noisy
            }
        };
        self.answered += 1;
        Some(wire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_dlt645::{decode, Answer, DecodeError, Receiver};

    fn line() -> Line {
        Line::new(vec![
            Meter::new(Address::parse("000000000001").unwrap(), 1, 100.0, 2.0),
            Meter::new(Address::parse("000000000002").unwrap(), 3, 200.0, 4.0),
        ])
    }

    fn addr(n: u64) -> Address {
        Address::parse(&format!("{n:012}")).unwrap()
    }

    fn read(line: &mut Line, to: Address, di: DataId) -> Option<Vec<u8>> {
        line.respond(&Frame::read(to, di), 0)
    }

    #[test]
    fn each_meter_answers_for_itself() {
        let mut l = line();
        for (n, kwh) in [(1, 100.0), (2, 200.0)] {
            let wire = read(&mut l, addr(n), DataId::FORWARD_ACTIVE_ENERGY).unwrap();
            assert_eq!(&wire[..4], &[0xFE; 4]);
            let (f, _) = decode(&wire).unwrap();
            assert_eq!(f.address, addr(n));
            let Ok(Answer::Data { di, value, .. }) = f.answer() else {
                panic!("{f:?}")
            };
            assert_eq!(di, DataId::FORWARD_ACTIVE_ENERGY);
            assert_eq!(di.format().unwrap().decode(value).unwrap().to_f64(), kwh);
        }
        assert!(read(&mut l, addr(3), DataId::VOLTAGE_A).is_none());
        assert!(read(&mut l, Address::BROADCAST, DataId::VOLTAGE_A).is_none());
        assert_eq!(l.answered, 2);
    }

    #[test]
    fn read_address_finds_the_first_meter() {
        let mut l = line();
        let wire = l.respond(&Frame::read_address(), 0).unwrap();
        let (f, _) = decode(&wire).unwrap();
        assert_eq!(f.answer(), Ok(Answer::Address(addr(1))));
    }

    #[test]
    fn misbehaviour_shows_on_the_wire() {
        let mut l = line();
        assert_eq!(l.set_behaviour(Some(addr(2)), Behaviour::Silent), 1);
        assert!(read(&mut l, addr(2), DataId::VOLTAGE_A).is_none());
        assert!(read(&mut l, addr(1), DataId::VOLTAGE_A).is_some());

        l.set_behaviour(None, Behaviour::BadChecksum);
        let wire = read(&mut l, addr(1), DataId::VOLTAGE_A).unwrap();
        assert!(matches!(decode(&wire), Err(DecodeError::Checksum { .. })));

        l.set_behaviour(None, Behaviour::Truncated);
        let wire = read(&mut l, addr(1), DataId::VOLTAGE_A).unwrap();
        assert_eq!(decode(&wire).unwrap_err(), DecodeError::Incomplete);

        l.set_behaviour(None, Behaviour::Abnormal(ErrorWord(0x04)));
        let wire = read(&mut l, addr(1), DataId::VOLTAGE_A).unwrap();
        let (f, _) = decode(&wire).unwrap();
        assert_eq!(f.answer(), Ok(Answer::Abnormal(ErrorWord(0x04))));

        l.set_behaviour(None, Behaviour::Noise);
        let wire = read(&mut l, addr(1), DataId::VOLTAGE_A).unwrap();
        let mut r = Receiver::new();
        r.push(&wire);
        let good = std::iter::from_fn(|| r.next_frame()).find_map(Result::ok);
        assert_eq!(good.map(|f| f.address), Some(addr(1)));
    }

    #[test]
    fn a_missing_identifier_is_an_abnormal_answer() {
        let mut l = line();
        let wire = read(&mut l, addr(1), DataId::VOLTAGE_A.phase(3)).unwrap();
        let (f, _) = decode(&wire).unwrap();
        assert_eq!(f.control, Control(0xD1));
        assert_eq!(f.answer(), Ok(Answer::Abnormal(ErrorWord(0x02))));
    }
}
