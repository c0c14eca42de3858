//! Properties of the codec over arbitrary input: bytes from a serial line
//! never make it panic or grow, and everything it encodes decodes back.

use gridwatch_cjt188::{
    decode, encode, Address, Answer, Command, Control, FlowData, Frame, MeterData, MeterTime,
    MeterType, Reading, Receiver, Request, Status, Unit, ValveCommand, MAX_DATA_LEN, MAX_FRAME_LEN,
};
use proptest::prelude::*;

fn address() -> impl Strategy<Value = Address> {
    proptest::array::uniform7(0u8..100)
        .prop_map(|pairs| Address(pairs.map(|p| ((p / 10) << 4) | (p % 10))))
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        any::<u8>(),
        address(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..=MAX_DATA_LEN),
    )
        .prop_map(|(t, a, c, d)| Frame::new(MeterType(t), a, Control(c), &d).unwrap())
}

fn encoded(f: &Frame, preamble: usize) -> Vec<u8> {
    let mut out = vec![0u8; f.encoded_len(preamble)];
    let n = f.encode(preamble, &mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

fn time() -> impl Strategy<Value = MeterTime> {
    (2000u16..2100, 1u8..=12, 1u8..=28, 0u8..24, 0u8..60, 0u8..60).prop_map(
        |(year, month, day, hour, minute, second)| MeterTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok((f, used)) = decode(&bytes) {
            prop_assert!(used <= bytes.len());
            prop_assert!(f.data().len() <= MAX_DATA_LEN);
            let _ = f.answer();
            let _ = f.request();
        }
        let mut r = Receiver::new();
        let mut rest: &[u8] = &bytes;
        // Bounded: each round takes at least one byte or drains a frame.
        for _ in 0..2 * bytes.len() + 2 {
            rest = r.push(rest);
            while let Some(got) = r.next_frame() {
                if let Ok(f) = got {
                    let _ = f.answer();
                    let _ = f.request();
                }
            }
            prop_assert!(r.pending().len() < MAX_FRAME_LEN, "held {} bytes", r.pending().len());
            if rest.is_empty() {
                break;
            }
        }
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn arbitrary_answers_never_panic(
        t in any::<u8>(),
        c in any::<u8>(),
        data in proptest::collection::vec(any::<u8>(), 0..=MAX_DATA_LEN),
    ) {
        // Right lengths for both 901FH layouts, arbitrary contents.
        let mut d = vec![0x1F, 0x90, 0];
        d.extend_from_slice(&data);
        for len in [3, 3 + MeterData::FLOW_LEN, 3 + MeterData::HEAT_LEN, d.len()] {
            let len = len.min(d.len()).min(MAX_DATA_LEN);
            let f = Frame::new(MeterType(t), Address([0; 7]), Control(c | 0x80), &d[..len]).unwrap();
            let _ = f.answer();
        }
    }

    #[test]
    fn frames_round_trip(f in frame(), preamble in 0usize..=16) {
        let wire = encoded(&f, preamble);
        let (back, used) = decode(&wire).unwrap();
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(back, f);
    }

    #[test]
    fn requests_round_trip(
        t in any::<u8>(),
        a in address(),
        ser in any::<u8>(),
        which in 0u8..4,
    ) {
        let command = match which {
            0 => Command::ReadMeterData,
            1 => Command::ReadAddress,
            2 => Command::Valve(ValveCommand::Open),
            _ => Command::Valve(ValveCommand::Close),
        };
        let request = Request { meter_type: MeterType(t), address: a, ser, command };
        let mut out = [0u8; 64];
        let n = encode(&request, &mut out).unwrap();
        let (f, _) = decode(&out[..n]).unwrap();
        prop_assert_eq!(f.request(), Ok(request));
    }

    #[test]
    fn flow_answers_round_trip(
        a in address(),
        ser in any::<u8>(),
        current in 0u32..=Reading::MAX_REGISTER,
        settlement in 0u32..=Reading::MAX_REGISTER,
        unit in prop::sample::select(vec![Unit::M3, Unit::L]),
        time in time(),
        st in any::<[u8; 2]>(),
    ) {
        let data = MeterData::Flow(FlowData {
            current: Reading::hundredths(current, unit),
            settlement: Reading::hundredths(settlement, unit),
            time,
            status: Status(st),
        });
        let f = Frame::meter_data_answer(MeterType::GAS, a, ser, &data).unwrap();
        let (back, _) = decode(&encoded(&f, 2)).unwrap();
        prop_assert_eq!(back.answer(), Ok(Answer::MeterData { ser, data }));
    }

    #[test]
    fn one_flipped_bit_never_passes_as_the_same_frame(f in frame(), bit in 0usize..8 * 16) {
        let mut wire = encoded(&f, 0);
        let bit = bit % (8 * wire.len());
        wire[bit / 8] ^= 1 << (bit % 8);
        if let Ok((g, _)) = decode(&wire) {
            prop_assert_ne!(g, f);
        }
    }
}
