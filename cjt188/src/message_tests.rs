use super::*;
use crate::frame::decode;
use crate::value::{Unit, Valve};

fn addr(text: &str) -> Address {
    Address::parse(text).unwrap()
}

fn wire(f: &Frame) -> std::vec::Vec<u8> {
    extern crate std;
    let mut out = std::vec![0u8; f.encoded_len(0)];
    f.encode(0, &mut out).unwrap();
    out
}

extern crate std;

const T: MeterTime = MeterTime {
    year: 2026,
    month: 12,
    day: 5,
    hour: 23,
    minute: 59,
    second: 58,
};

/// The read of metering data in a public worked example of the protocol
/// (hftangyu.com/563.html, "CJ/T-188水表协议的解析"): cold water meter
/// 0011223344 of manufacturer 7833, SER 00, four preamble bytes.
#[test]
fn encodes_the_published_read_request() {
    let request = Request {
        meter_type: MeterType::COLD_WATER,
        address: addr("78330011223344"),
        ser: 0,
        command: Command::ReadMeterData,
    };
    let mut out = [0u8; 32];
    let n = encode(&request, &mut out).unwrap();
    assert_eq!(
        &out[..n],
        &[
            0xFE, 0xFE, 0xFE, 0xFE, 0x68, 0x10, 0x44, 0x33, 0x22, 0x11, 0x00, 0x33, 0x78, 0x01,
            0x03, 0x1F, 0x90, 0x00, 0x80, 0x16
        ]
    );
    let (f, _) = decode(&out[..n]).unwrap();
    assert_eq!(f.request(), Ok(request));
}

/// The answer printed in the same example. Its checksum byte (08H) does not
/// match its bytes (they sum to 13H): the decoder says so; with the sum
/// corrected, the fields read as the example explains them.
#[test]
fn decodes_the_published_answer_layout() {
    let mut answer = [
        0xFE, 0xFE, 0xFE, 0xFE, 0x68, 0x10, 0x44, 0x33, 0x22, 0x11, 0x00, 0x33, 0x78, 0x81, 0x16,
        0x1F, 0x90, 0x00, 0x00, 0x77, 0x66, 0x55, 0x2C, 0x00, 0x77, 0x66, 0x55, 0x2C, 0x31, 0x01,
        0x22, 0x11, 0x05, 0x15, 0x20, 0x21, 0x84, 0x08, 0x16,
    ];
    assert_eq!(
        decode(&answer).unwrap_err(),
        crate::DecodeError::Checksum {
            at: 4,
            computed: 0x13,
            received: 0x08
        }
    );
    answer[37] = 0x13;
    let (f, used) = decode(&answer).unwrap();
    assert_eq!(used, answer.len());
    assert_eq!(f.address, addr("78330011223344"));
    let Ok(Answer::MeterData {
        ser: 0,
        data: MeterData::Flow(d),
    }) = f.answer()
    else {
        panic!("{:?}", f.answer())
    };
    assert_eq!(d.current, Reading::hundredths(55_667_700, Unit::M3));
    assert_eq!(d.current.value(), 556_677.0);
    assert_eq!(d.settlement, Reading::hundredths(55_667_700, Unit::M3));
    assert_eq!(
        d.time,
        MeterTime {
            year: 2015,
            month: 5,
            day: 11,
            hour: 22,
            minute: 1,
            second: 31
        }
    );
    assert_eq!(d.status.0, [0x21, 0x84]);
}

#[test]
fn flow_data_round_trips() {
    let data = MeterData::Flow(FlowData {
        current: Reading::hundredths(Reading::MAX_REGISTER, Unit::M3),
        settlement: Reading::hundredths(12, Unit::L),
        time: T,
        status: Status::new(Valve::Closed, true),
    });
    let gas = addr("00000000000030");
    let f = Frame::meter_data_answer(MeterType::GAS, gas, 7, &data).unwrap();
    assert_eq!(f.control, Control(0x81));
    assert_eq!(f.data().len(), 22);
    let (back, _) = decode(&wire(&f)).unwrap();
    assert_eq!(back.answer(), Ok(Answer::MeterData { ser: 7, data }));
    let too_big = MeterData::Flow(FlowData {
        current: Reading::hundredths(Reading::MAX_REGISTER + 1, Unit::M3),
        ..match data {
            MeterData::Flow(d) => d,
            MeterData::Heat(_) => unreachable!(),
        }
    });
    assert!(matches!(
        Frame::meter_data_answer(MeterType::GAS, gas, 7, &too_big),
        Err(ValueError::TooLarge { .. })
    ));
}

#[test]
fn heat_data_round_trips() {
    let data = MeterData::Heat(HeatData {
        settlement_heat: Reading::hundredths(100_000, Unit::KWH),
        current_heat: Reading::hundredths(123_456, Unit::KWH),
        power: Reading::hundredths(350, Unit::KW),
        flow_rate: Reading {
            register: 12_345,
            decimals: 4,
            unit: Unit::M3_PER_H,
        },
        cumulative_flow: Reading::hundredths(45_678, Unit::M3),
        supply_centi_c: 6543,
        return_centi_c: 4521,
        working_hours: 8760,
        time: T,
        status: Status::new(Valve::Open, false),
    });
    let f = Frame::meter_data_answer(MeterType::HEAT, addr("00000000000020"), 9, &data).unwrap();
    assert_eq!(f.data().len(), 46);
    let (back, _) = decode(&wire(&f)).unwrap();
    assert_eq!(back.answer(), Ok(Answer::MeterData { ser: 9, data }));
}

#[test]
fn meter_data_of_the_wrong_length_is_named() {
    let f = Frame::new(
        MeterType::COLD_WATER,
        addr("00000000000001"),
        Control::answer(Function::ReadData),
        &[0x1F, 0x90, 0, 1, 2, 3],
    )
    .unwrap();
    let e = f.answer().unwrap_err();
    assert_eq!(e, AnswerError::MeterDataLength { found: 3 });
    assert!(std::string::ToString::to_string(&e).contains("water and gas meters send 19"));
    // A clock that is not BCD names the field.
    let data = MeterData::Flow(FlowData {
        current: Reading::hundredths(1, Unit::M3),
        settlement: Reading::hundredths(1, Unit::M3),
        time: T,
        status: Status([0, 0]),
    });
    let good =
        Frame::meter_data_answer(MeterType::COLD_WATER, addr("00000000000001"), 0, &data).unwrap();
    let mut bad = std::vec::Vec::from(good.data());
    bad[14] = 0x1A;
    let f = Frame::new(good.meter_type, good.address, good.control, &bad).unwrap();
    assert!(matches!(
        f.answer(),
        Err(AnswerError::Value {
            field: "real time",
            ..
        })
    ));
}

#[test]
fn address_read_with_wildcards() {
    let req = Request::read_address(3);
    let f = req.frame();
    assert_eq!(f.meter_type, MeterType::WILDCARD);
    assert_eq!(f.address, Address::WILDCARD);
    assert_eq!(f.control, Control(0x03));
    assert_eq!(f.data(), &[0x0A, 0x81, 3]);
    assert_eq!(f.request(), Ok(req));
    let meter = addr("20261205000042");
    let answer = Frame::address_answer(MeterType::COLD_WATER, meter, 3);
    let (back, _) = decode(&wire(&answer)).unwrap();
    assert_eq!(back.answer(), Ok(Answer::Address { ser: 3 }));
    assert_eq!(back.address, meter);
    assert_eq!(back.control, Control(0x83));
}

#[test]
fn valve_commands() {
    let meter = addr("00000000000001");
    for (cmd, byte) in [(ValveCommand::Open, 0x55), (ValveCommand::Close, 0x99)] {
        let req = Request {
            meter_type: MeterType::GAS,
            address: meter,
            ser: 1,
            command: Command::Valve(cmd),
        };
        let f = req.frame();
        assert_eq!(f.control, Control(0x04));
        assert_eq!(f.data(), &[0x17, 0xA0, 1, byte]);
        assert_eq!(f.request(), Ok(req));
    }
    let odd = Frame::new(MeterType::GAS, meter, Control(0x04), &[0x17, 0xA0, 1, 0x12]).unwrap();
    assert_eq!(odd.request(), Err(RequestError::ValveByte(0x12)));
    let closed = Status::new(Valve::Closed, false);
    let a = Frame::valve_answer(MeterType::GAS, meter, 1, closed);
    assert_eq!(a.control, Control(0x84));
    assert_eq!(
        a.answer(),
        Ok(Answer::Valve {
            ser: 1,
            status: Some(closed)
        })
    );
}

/// Valve control for the meter of the published read example (cold water
/// meter 78330011223344, SER 00), laid out as the standard's write-data
/// frame: control 04H, length 04H, DI A017H low byte first, SER, 55H
/// (open) or 99H (close); the checksum is the byte sum from 68H.
#[test]
fn encodes_valve_control_for_the_published_meter() {
    for (cmd, byte, cs) in [
        (ValveCommand::Open, 0x55, 0xE1),
        (ValveCommand::Close, 0x99, 0x25),
    ] {
        let request = Request {
            meter_type: MeterType::COLD_WATER,
            address: addr("78330011223344"),
            ser: 0,
            command: Command::Valve(cmd),
        };
        let mut out = [0u8; 32];
        let n = encode(&request, &mut out).unwrap();
        assert_eq!(
            &out[..n],
            &[
                0xFE, 0xFE, 0xFE, 0xFE, 0x68, 0x10, 0x44, 0x33, 0x22, 0x11, 0x00, 0x33, 0x78, 0x04,
                0x04, 0x17, 0xA0, 0x00, byte, cs, 0x16
            ]
        );
        let (f, _) = decode(&out[..n]).unwrap();
        assert_eq!(f.request(), Ok(request));
    }
}

#[test]
fn abnormal_answers_carry_ser_and_status() {
    let meter = addr("00000000000001");
    let st = Status::new(Valve::Abnormal, true);
    let f = Frame::abnormal_answer(MeterType::GAS, meter, Function::WriteData, 4, st);
    assert_eq!(f.control, Control(0xC4));
    assert_eq!(
        f.answer(),
        Ok(Answer::Abnormal {
            function: Function::WriteData,
            ser: Some(4),
            status: Some(st)
        })
    );
    // Some meters send a single error byte: still an abnormal answer.
    let one = Frame::new(MeterType::GAS, meter, Control(0xC1), &[0x01]).unwrap();
    assert_eq!(
        one.answer(),
        Ok(Answer::Abnormal {
            function: Function::ReadData,
            ser: None,
            status: None
        })
    );
}

#[test]
fn requests_and_answers_are_told_apart() {
    let req = Request::read_address(0).frame();
    assert_eq!(req.answer(), Err(AnswerError::NotAnAnswer));
    let a = Frame::address_answer(MeterType::GAS, addr("00000000000001"), 0);
    assert_eq!(a.request(), Err(RequestError::NotARequest));
    let short = Frame::new(MeterType::GAS, a.address, Control(0x81), &[0x1F]).unwrap();
    assert_eq!(short.answer(), Err(AnswerError::TooShort { found: 1 }));
    let other = Request {
        meter_type: MeterType::GAS,
        address: a.address,
        ser: 2,
        command: Command::Read(DataId(0x8102)),
    };
    assert_eq!(other.frame().request(), Ok(other));
    let price = Frame::new(
        MeterType::GAS,
        a.address,
        Control(0x81),
        &[0x02, 0x81, 2, 0x11],
    )
    .unwrap();
    assert_eq!(
        price.answer(),
        Ok(Answer::Data {
            function: Function::ReadData,
            di: DataId(0x8102),
            ser: 2,
            value: &[0x11]
        })
    );
}
