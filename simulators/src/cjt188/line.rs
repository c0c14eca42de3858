//! Several meters on one M-Bus or RS-485 line: requests in, answer bytes
//! out.
//!
//! Sans-IO, so the protocol behaviour (who answers what, how each
//! misbehaviour looks on the wire) is tested without a pseudo-terminal.

use super::meter::{Behaviour, Change, Meter};
use gridwatch_cjt188::{Address, Command, Frame, Valve, ValveCommand, DEFAULT_PREAMBLE};

/// The meters sharing a line.
#[derive(Debug, Clone, Default)]
pub struct Line {
    meters: Vec<Meter>,
    /// Requests answered, for tests and the simulator's summary.
    pub answered: u64,
    /// Write requests heard (valve commands and any other write), so a
    /// test can tell that a master only read.
    pub writes: u64,
}

impl Line {
    /// A line with `meters`.
    pub fn new(meters: Vec<Meter>) -> Self {
        Self {
            meters,
            answered: 0,
            writes: 0,
        }
    }

    /// The meters.
    pub fn meters(&self) -> &[Meter] {
        &self.meters
    }

    /// The meters, to move their registers in tests.
    pub fn meters_mut(&mut self) -> &mut [Meter] {
        &mut self.meters
    }

    /// Applies `change` to the meter at `address`, or to every meter for
    /// `None`. Returns how many meters changed.
    pub fn apply(&mut self, address: Option<Address>, change: Change) -> usize {
        let mut n = 0;
        for m in self
            .meters
            .iter_mut()
            .filter(|m| address.is_none_or(|a| m.address == a))
        {
            m.apply(change);
            n += 1;
        }
        n
    }

    /// The bytes the line carries back after `request` at `t_ms`: the
    /// answer of the meter whose type and address the request matches
    /// (wildcards included), shaped by that meter's behaviour; nothing for
    /// frames from meters or requests no meter here takes.
    ///
    /// When a wildcard matches several meters, each answers at once, as on
    /// a real bus, and their answers collide: the line carries their bytes
    /// ANDed together (on M-Bus and RS-485 alike a 0 bit from any meter
    /// wins over the idle 1), which no longer adds up to its checksum. A
    /// master narrows the wildcard until one meter answers (`scan`).
    pub fn respond(&mut self, frame: &Frame, t_ms: i64) -> Option<Vec<u8>> {
        if frame.control.from_meter() {
            return None;
        }
        use gridwatch_cjt188::Function;
        if !matches!(
            frame.control.function(),
            Function::ReadData | Function::ReadAddress | Function::ReadKeyVersion
        ) {
            self.writes += 1;
        }
        let mut answers: Vec<Vec<u8>> = self
            .meters
            .iter_mut()
            .filter(|m| m.meter_type.accepts(frame.meter_type) && m.address.accepts(&frame.address))
            .filter_map(|m| answer(m, frame, t_ms))
            .collect();
        self.answered += answers.len() as u64;
        let mut wire = answers.pop()?;
        for other in answers {
            if other.len() > wire.len() {
                wire.resize(other.len(), 0xFF);
            }
            for (w, o) in wire
                .iter_mut()
                .zip(other.iter().chain(std::iter::repeat(&0xFF)))
            {
                *w &= o;
            }
        }
        Some(wire)
    }
}

/// The bytes `meter` sends after `frame` at `t_ms` (it matches the
/// frame's type and address), shaped by its behaviour; `None` when silent.
fn answer(meter: &mut Meter, frame: &Frame, t_ms: i64) -> Option<Vec<u8>> {
    let (t, a) = (meter.meter_type, meter.address);
    let function = frame.control.function();
    let answer = match (frame.request(), meter.behaviour) {
        (_, Behaviour::Silent) => return None,
        (Ok(req), Behaviour::Abnormal) => {
            Frame::abnormal_answer(t, a, function, req.ser, meter.status())
        }
        (Ok(req), _) => match req.command {
            Command::ReadMeterData => {
                let data = meter.meter_data(t_ms);
                Frame::meter_data_answer(t, a, req.ser, &data).ok()?
            }
            Command::ReadAddress => Frame::address_answer(t, a, req.ser),
            Command::Valve(v) => {
                // A stuck valve stays stuck: the command fails.
                if meter.valve == Valve::Abnormal {
                    Frame::abnormal_answer(t, a, function, req.ser, meter.status())
                } else {
                    meter.register_at(t_ms);
                    meter.valve = match v {
                        ValveCommand::Open => Valve::Open,
                        ValveCommand::Close => Valve::Closed,
                    };
                    Frame::valve_answer(t, a, req.ser, meter.status())
                }
            }
            Command::Read(_) => Frame::abnormal_answer(t, a, function, req.ser, meter.status()),
        },
        // A request it cannot parse: answered abnormally, SER unknown.
        (Err(_), _) => Frame::abnormal_answer(
            t,
            a,
            function,
            frame.data().get(2).copied().unwrap_or(0),
            meter.status(),
        ),
    };
    let mut wire = vec![0u8; answer.encoded_len(DEFAULT_PREAMBLE)];
    let n = answer.encode(DEFAULT_PREAMBLE, &mut wire).ok()?;
    wire.truncate(n);
    Some(match meter.behaviour {
        Behaviour::Normal | Behaviour::Abnormal | Behaviour::Silent => wire,
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
            let mut noisy = vec![0x00, 0x68, 0x12, 0xFF, 0x68, 0x10, 0x16];
            noisy.extend_from_slice(&wire);
            noisy
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_cjt188::{
        decode, Answer, DecodeError, MeterData, MeterType, Receiver, Request, Unit,
    };

    fn addr(n: u64) -> Address {
        Address::parse(&format!("{n:014}")).unwrap()
    }

    fn line() -> Line {
        Line::new(vec![
            Meter::new(MeterType::COLD_WATER, addr(1), 100.0, 0.5),
            Meter::new(MeterType::GAS, addr(2), 200.0, 1.0),
            Meter::new(MeterType::HEAT, addr(3), 300.0, 3.5),
        ])
    }

    fn read(line: &mut Line, t: MeterType, to: Address) -> Option<Vec<u8>> {
        let req = Request {
            meter_type: t,
            address: to,
            ser: 5,
            command: Command::ReadMeterData,
        };
        line.respond(&req.frame(), 0)
    }

    #[test]
    fn each_meter_answers_for_itself() {
        let mut l = line();
        let wire = read(&mut l, MeterType::GAS, addr(2)).unwrap();
        assert_eq!(&wire[..4], &[0xFE; 4]);
        let (f, _) = decode(&wire).unwrap();
        assert_eq!((f.meter_type, f.address), (MeterType::GAS, addr(2)));
        let Ok(Answer::MeterData {
            ser: 5,
            data: MeterData::Flow(d),
        }) = f.answer()
        else {
            panic!("{f:?}")
        };
        assert_eq!(d.current.value(), 200.0);
        assert_eq!(d.current.unit, Unit::M3);
        let (f, _) = decode(&read(&mut l, MeterType::HEAT, addr(3)).unwrap()).unwrap();
        assert!(matches!(
            f.answer(),
            Ok(Answer::MeterData {
                data: MeterData::Heat(_),
                ..
            })
        ));
        // The right address with the wrong type, or an unknown address: silence.
        assert!(read(&mut l, MeterType::COLD_WATER, addr(2)).is_none());
        assert!(read(&mut l, MeterType::GAS, addr(9)).is_none());
        assert_eq!(l.answered, 2);
    }

    #[test]
    fn a_wildcard_finds_a_lone_meter_and_collides_on_several() {
        let mut l = line();
        let wire = l.respond(&Request::read_address(1).frame(), 0).unwrap();
        assert!(
            matches!(decode(&wire), Err(DecodeError::Checksum { .. })),
            "three answers at once are garbled: {wire:02X?}"
        );
        assert_eq!(l.answered, 3);
        // Narrowed to the gas meter's last byte: it alone answers.
        let mut one = Request::read_address(2);
        one.address.0[0] = 0x02;
        let (f, _) = decode(&l.respond(&one.frame(), 0).unwrap()).unwrap();
        assert_eq!(f.answer(), Ok(Answer::Address { ser: 2 }));
        assert_eq!((f.meter_type, f.address), (MeterType::GAS, addr(2)));
        // A silent meter takes no part.
        l.apply(Some(addr(1)), Change::Behaviour(Behaviour::Silent));
        l.apply(Some(addr(3)), Change::Behaviour(Behaviour::Silent));
        let (f, _) = decode(&l.respond(&Request::read_address(3).frame(), 0).unwrap()).unwrap();
        assert_eq!(f.address, addr(2));
    }

    #[test]
    fn valve_commands_close_and_open() {
        let mut l = line();
        let close = Request {
            meter_type: MeterType::GAS,
            address: addr(2),
            ser: 2,
            command: Command::Valve(ValveCommand::Close),
        };
        let (f, _) = decode(&l.respond(&close.frame(), 0).unwrap()).unwrap();
        let Ok(Answer::Valve {
            status: Some(st), ..
        }) = f.answer()
        else {
            panic!("{f:?}")
        };
        assert_eq!(st.valve(), Valve::Closed);
        assert_eq!(l.meters()[1].valve, Valve::Closed);
        assert_eq!(l.writes, 1);
        l.apply(Some(addr(2)), Change::Valve(Valve::Abnormal));
        let (f, _) = decode(&l.respond(&close.frame(), 0).unwrap()).unwrap();
        assert!(f.control.is_abnormal());
    }

    #[test]
    fn misbehaviour_shows_on_the_wire() {
        let mut l = line();
        assert_eq!(
            l.apply(Some(addr(2)), Change::Behaviour(Behaviour::Silent)),
            1
        );
        assert!(read(&mut l, MeterType::GAS, addr(2)).is_none());
        assert!(read(&mut l, MeterType::COLD_WATER, addr(1)).is_some());

        l.apply(None, Change::Behaviour(Behaviour::BadChecksum));
        let wire = read(&mut l, MeterType::COLD_WATER, addr(1)).unwrap();
        assert!(matches!(decode(&wire), Err(DecodeError::Checksum { .. })));

        l.apply(None, Change::Behaviour(Behaviour::Truncated));
        let wire = read(&mut l, MeterType::COLD_WATER, addr(1)).unwrap();
        assert_eq!(decode(&wire).unwrap_err(), DecodeError::Incomplete);

        l.apply(None, Change::Behaviour(Behaviour::Abnormal));
        let wire = read(&mut l, MeterType::COLD_WATER, addr(1)).unwrap();
        let (f, _) = decode(&wire).unwrap();
        assert!(matches!(
            f.answer(),
            Ok(Answer::Abnormal { ser: Some(5), .. })
        ));

        l.apply(None, Change::Behaviour(Behaviour::Noise));
        let wire = read(&mut l, MeterType::COLD_WATER, addr(1)).unwrap();
        let mut r = Receiver::new();
        r.push(&wire);
        let good = std::iter::from_fn(|| r.next_frame()).find_map(Result::ok);
        assert_eq!(good.map(|f| f.address), Some(addr(1)));

        l.apply(None, Change::Behaviour(Behaviour::Normal));
        l.apply(Some(addr(1)), Change::BatteryLow(true));
        let (f, _) = decode(&read(&mut l, MeterType::COLD_WATER, addr(1)).unwrap()).unwrap();
        let Ok(Answer::MeterData { data, .. }) = f.answer() else {
            panic!()
        };
        assert!(data.status().battery_low());
        assert_eq!(data.status().valve(), Valve::Open);
    }
}
