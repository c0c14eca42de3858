//! Decoding of every type in every byte and word order, against register
//! values worked out by hand or printed in vendors' documents (each test
//! says which), and round trips through [`encode`](super::super::encode).

use super::*;
use crate::devices::modbus::encode::{encode, encode_text, merge_bit};
use proptest::prelude::*;

fn reg(value_type: ValueType) -> Register {
    Register {
        name: "x".into(),
        function: Function::Holding,
        address: 0,
        value_type,
        byte_order: ByteOrder::Big,
        word_order: WordOrder::HighFirst,
        scale: 1.0,
        offset: 0.0,
        unit: None,
        meanings: BTreeMap::new(),
        expect: None,
        expect_text: None,
        bit: None,
        deadband: 0.0,
        line: 1,
    }
}

fn ordered(value_type: ValueType, byte_order: ByteOrder, word_order: WordOrder) -> Register {
    Register {
        byte_order,
        word_order,
        ..reg(value_type)
    }
}

const ORDERS: [(ByteOrder, WordOrder); 4] = [
    (ByteOrder::Big, WordOrder::HighFirst),    // ABCD
    (ByteOrder::Big, WordOrder::LowFirst),     // CDAB
    (ByteOrder::Little, WordOrder::HighFirst), // BADC
    (ByteOrder::Little, WordOrder::LowFirst),  // DCBA
];

/// The words a value whose big-endian bytes are `bytes` occupies in each
/// of the four orders, built independently of the decoder: the bytes are
/// split into words, the words reversed for low-first, and each word's
/// bytes swapped for little.
fn layouts(bytes: &[u8]) -> Vec<(ByteOrder, WordOrder, Vec<u16>)> {
    ORDERS
        .iter()
        .map(|&(b, w)| {
            let mut words: Vec<[u8; 2]> = bytes.chunks(2).map(|c| [c[0], c[1]]).collect();
            if w == WordOrder::LowFirst {
                words.reverse();
            }
            let words = words
                .into_iter()
                .map(|[hi, lo]| match b {
                    ByteOrder::Big => u16::from_be_bytes([hi, lo]),
                    ByteOrder::Little => u16::from_be_bytes([lo, hi]),
                })
                .collect();
            (b, w, words)
        })
        .collect()
}

fn check_all_orders(value_type: ValueType, bytes: &[u8], expected: Raw) {
    for (b, w, words) in layouts(bytes) {
        let r = ordered(value_type, b, w);
        assert_eq!(
            decode_raw(&r, &words),
            Ok(expected.clone()),
            "{value_type} {b:?}/{w:?} words {words:04x?}"
        );
        // Above 2^53 an f64 cannot carry every digit of a 64-bit integer.
        if let Some(x) = expected.as_f64().filter(|x| x.abs() < 9.0e15) {
            assert_eq!(
                encode(&r, x).unwrap(),
                words,
                "encode {value_type} {b:?}/{w:?}"
            );
        }
    }
}

#[test]
fn layouts_match_the_textbook_abcd_names() {
    // 0x11223344 in the four orders as Modbus tools name them.
    let l = layouts(&[0x11, 0x22, 0x33, 0x44]);
    assert_eq!(l[0].2, [0x1122, 0x3344]); // ABCD
    assert_eq!(l[1].2, [0x3344, 0x1122]); // CDAB
    assert_eq!(l[2].2, [0x2211, 0x4433]); // BADC
    assert_eq!(l[3].2, [0x4433, 0x2211]); // DCBA
}

#[test]
fn u16_and_i16_in_both_byte_orders() {
    check_all_orders(ValueType::U16, &[0xFF, 0x9C], Raw::Int(65_436));
    check_all_orders(ValueType::I16, &[0xFF, 0x9C], Raw::Int(-100));
    // The simulated pile: socket voltage 2301 × 0.1 V (docs/devices/gridwatch-ebp12.md).
    let v = Register {
        scale: 0.1,
        ..reg(ValueType::U16)
    };
    assert_eq!(decode_value(&v, &[0x08FD]), Ok(Some(230.1)));
}

#[test]
fn u32_and_i32_in_all_four_orders() {
    check_all_orders(
        ValueType::U32,
        &[0x00, 0x01, 0x00, 0x02],
        Raw::Int(0x0001_0002),
    );
    check_all_orders(ValueType::I32, &[0xFF, 0xFF, 0xFF, 0xFE], Raw::Int(-2));
    // Panametrics GF868 Modbus guide, note under Table 3: "Reg 24 is 0019,
    // Reg 25 is ED30 ... 1699120 ... 3 decimal places ... 1699.120".
    let sound_speed = Register {
        scale: 0.001,
        ..reg(ValueType::I32)
    };
    assert_eq!(
        decode_value(&sound_speed, &[0x0019, 0xED30]),
        Ok(Some(1699.12))
    );
}

#[test]
fn u64_and_i64_in_all_four_orders() {
    let big: u64 = 0x0102_0304_0506_0708;
    check_all_orders(ValueType::U64, &big.to_be_bytes(), Raw::UInt(big));
    let energy: u64 = 0x0000_0102_0304_0506; // below 2^53: round trips exactly
    check_all_orders(ValueType::U64, &energy.to_be_bytes(), Raw::UInt(energy));
    check_all_orders(ValueType::U64, &u64::MAX.to_be_bytes(), Raw::UInt(u64::MAX));
    check_all_orders(ValueType::I64, &(-5i64).to_be_bytes(), Raw::Int(-5));
}

#[test]
fn f32_in_all_four_orders() {
    // Panametrics GF868 Modbus guide, note under Table 3: "Reg 14 reading is
    // 44d7, Reg 15 reading is 4000, Mass Flow is 44d74000, which
    // corresponds to 1722".
    check_all_orders(
        ValueType::F32,
        &[0x44, 0xD7, 0x40, 0x00],
        Raw::Float(1722.0),
    );
    // Eastron SDM630: phase 1 voltage 230.2 V at input register 0 is
    // 0x4366 0x3333 (IEEE 754, high word first); read as the decimal the
    // meter meant, not 230.1999969482422.
    check_all_orders(ValueType::F32, &[0x43, 0x66, 0x33, 0x33], Raw::Float(230.2));
    // Chint DTSU666: Ua is a float in units of 0.1 V; 2301.0 is 230.1 V.
    let ua = Register {
        scale: 0.1,
        ..reg(ValueType::F32)
    };
    assert_eq!(decode_value(&ua, &[0x450F, 0xD000]), Ok(Some(230.1)));
}

#[test]
fn f64_in_all_four_orders() {
    check_all_orders(
        ValueType::F64,
        &1_234_567.89f64.to_be_bytes(),
        Raw::Float(1_234_567.89),
    );
    check_all_orders(ValueType::F64, &(-0.5f64).to_be_bytes(), Raw::Float(-0.5));
}

#[test]
fn bcd_reads_decimal_digits_and_refuses_hex_ones() {
    check_all_orders(ValueType::Bcd16, &[0x12, 0x34], Raw::Int(1234));
    check_all_orders(
        ValueType::Bcd32,
        &[0x00, 0x12, 0x34, 0x56],
        Raw::Int(123_456),
    );
    let r = reg(ValueType::Bcd16);
    assert!(matches!(
        decode_raw(&r, &[0x12A4]),
        Err(DecodeError::NotBcd { .. })
    ));
    let e = decode_raw(&r, &[0x00F0]).unwrap_err().to_string();
    assert!(
        e.contains("0x00f0") && e.contains("not binary-coded decimal"),
        "{e}"
    );
}

#[test]
fn bits_in_registers_and_bit_tables() {
    // ebp12 fault_bits = 0b10: bit 0 (a socket fault) clear, bit 1 (overload) set.
    let overload = Register {
        bit: Some(1),
        ..reg(ValueType::Bool)
    };
    let any_fault = Register {
        bit: Some(0),
        ..reg(ValueType::Bool)
    };
    assert_eq!(decode_raw(&overload, &[0x0002]), Ok(Raw::Int(1)));
    assert_eq!(decode_raw(&any_fault, &[0x0002]), Ok(Raw::Int(0)));
    let high = Register {
        bit: Some(15),
        ..reg(ValueType::Bool)
    };
    assert_eq!(decode_raw(&high, &[0x8000]), Ok(Raw::Int(1)));
    // Little byte order: bit 15 of the value sits in the first byte on the wire.
    let swapped = Register {
        byte_order: ByteOrder::Little,
        ..high.clone()
    };
    assert_eq!(decode_raw(&swapped, &[0x0080]), Ok(Raw::Int(1)));
    assert_eq!(encode(&swapped, 1.0).unwrap(), [0x0080]);
    // Without `bit`, the whole word: non-zero is true.
    assert_eq!(
        decode_raw(&reg(ValueType::Bool), &[0x0100]),
        Ok(Raw::Int(1))
    );
    // Coils and discrete inputs arrive as 0/1 words.
    let coil = Register {
        function: Function::Coils,
        ..reg(ValueType::Bool)
    };
    assert_eq!(decode_raw(&coil, &[1]), Ok(Raw::Int(1)));
    assert_eq!(decode_raw(&coil, &[0]), Ok(Raw::Int(0)));
    // Flags sharing a word keep each other.
    let word = merge_bit(&overload, 0b01, true);
    assert_eq!(word, 0b11);
    assert_eq!(merge_bit(&any_fault, word, false), 0b10);
}

#[test]
fn strings_read_two_characters_per_register() {
    let r = reg(ValueType::String { words: 4 });
    // "SDM630" NUL-padded to 8 bytes.
    let words = [0x5344, 0x4D36, 0x3330, 0x0000];
    assert_eq!(decode_raw(&r, &words), Ok(Raw::Text("SDM630".into())));
    assert_eq!(encode_text(&r, "SDM630").unwrap(), words);
    // Byte-swapped devices put the second character first.
    let swapped = Register {
        byte_order: ByteOrder::Little,
        ..r.clone()
    };
    assert_eq!(
        decode_raw(&swapped, &[0x4453, 0x364D, 0x3033, 0x0000]),
        Ok(Raw::Text("SDM630".into()))
    );
    // Space padding is trimmed; control bytes are refused, not passed on.
    assert_eq!(
        decode_raw(&r, &[0x4142, 0x2020, 0x2020, 0x2020]),
        Ok(Raw::Text("AB".into()))
    );
    assert!(matches!(
        decode_raw(&r, &[0x4107, 0, 0, 0]),
        Err(DecodeError::NotAscii {
            byte: 0x07,
            position: 1,
            ..
        })
    ));
    assert!(encode_text(&r, "longer than eight").is_err());
}

#[test]
fn i16_negatives_scale_and_decimal_scales_stay_decimal() {
    let r = Register {
        scale: 0.1,
        ..reg(ValueType::I16)
    };
    assert_eq!(decode_value(&r, &[0xFF9C]), Ok(Some(-10.0)));
    let ma = Register {
        scale: 0.001,
        ..reg(ValueType::U16)
    };
    assert_eq!(scale(&ma, 1234.0), 1.234);
    let offset = Register {
        scale: 2.0,
        offset: -40.0,
        ..reg(ValueType::U16)
    };
    assert_eq!(scale(&offset, 30.0), 20.0);
    assert_eq!(encode(&offset, 20.0).unwrap(), [30]);
}

#[test]
fn wrong_word_count_and_nan_are_errors_not_panics() {
    let r = reg(ValueType::U32);
    assert!(matches!(
        decode_raw(&r, &[1]),
        Err(DecodeError::WrongLength { got: 1, .. })
    ));
    let f = reg(ValueType::F32);
    assert!(matches!(
        decode_raw(&f, &[0x7FC0, 0]),
        Err(DecodeError::NotFinite { .. })
    ));
    let d = reg(ValueType::F64);
    assert!(matches!(
        decode_raw(&d, &[0x7FF0, 0, 0, 0]),
        Err(DecodeError::NotFinite { .. })
    ));
}

#[test]
fn encoding_refuses_values_the_type_cannot_hold() {
    assert!(encode(&reg(ValueType::U16), 65_536.0).is_err());
    assert!(encode(&reg(ValueType::U16), -1.0).is_err());
    assert!(encode(&reg(ValueType::I16), -32_769.0).is_err());
    assert!(encode(&reg(ValueType::Bcd16), 10_000.0).is_err());
    assert!(encode(&reg(ValueType::F32), f64::NAN).is_err());
    assert!(encode(&reg(ValueType::String { words: 2 }), 1.0).is_err());
}

#[test]
fn blocks_decode_relative_to_their_start_and_check_expectations() {
    let mut image = RegisterImage::new();
    let req = ReadRequest {
        function: Function::Holding,
        start: 100,
        count: 7,
    };
    image.insert(&req, &[1, 0, 7, 0x4142, 0x4300, 0x5859, 0x0000]);
    let version = Register {
        name: "version".into(),
        expect: Some(1),
        ..reg(ValueType::U16)
    };
    let power = Register {
        name: "power_w".into(),
        address: 1,
        ..reg(ValueType::U32)
    };
    let model = Register {
        name: "model".into(),
        address: 3,
        expect_text: Some("ABC".into()),
        ..reg(ValueType::String { words: 2 })
    };
    let serial = Register {
        name: "serial".into(),
        address: 5,
        ..reg(ValueType::String { words: 2 })
    };
    let all = [
        version.clone(),
        power.clone(),
        model.clone(),
        serial.clone(),
    ];
    let values = decode_block(&all, &image, 100).unwrap();
    assert_eq!(
        values.len(),
        1,
        "checks and text are not emitted: {values:?}"
    );
    assert_eq!(values["power_w"], 7.0);
    assert_eq!(
        decode_labels(&all, &image, 100),
        vec![("serial".to_owned(), "XY".to_owned())]
    );

    let strict = Register {
        expect: Some(2),
        ..version
    };
    assert!(matches!(
        decode_block(&[strict], &image, 100),
        Err(DecodeError::Unexpected { .. })
    ));
    let other_model = Register {
        expect_text: Some("SDM630".into()),
        ..model
    };
    let e = decode_block(&[other_model], &image, 100)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"ABC\"") && e.contains("\"SDM630\""), "{e}");
    assert!(matches!(
        decode_block(&[power], &image, 200),
        Err(DecodeError::Missing { .. })
    ));
}

fn numeric_type() -> impl Strategy<Value = ValueType> {
    prop_oneof![
        Just(ValueType::U16),
        Just(ValueType::I16),
        Just(ValueType::U32),
        Just(ValueType::I32),
        Just(ValueType::U64),
        Just(ValueType::I64),
        Just(ValueType::F32),
        Just(ValueType::F64),
        Just(ValueType::Bcd16),
        Just(ValueType::Bcd32),
        Just(ValueType::Bool),
    ]
}

proptest! {
    /// Whatever words a device sends, decoding returns a value or an error.
    #[test]
    fn arbitrary_words_never_panic(
        t in numeric_type(),
        order in 0usize..4,
        words in proptest::collection::vec(any::<u16>(), 0..6),
        bit in proptest::option::of(0u8..16),
    ) {
        let (b, w) = ORDERS[order];
        let r = Register { bit: bit.filter(|_| t == ValueType::Bool), ..ordered(t, b, w) };
        let _ = decode_raw(&r, &words);
        let s = ordered(ValueType::String { words: 3 }, b, w);
        let _ = decode_raw(&s, &words);
    }

    /// Every word pattern that decodes encodes back to the same words
    /// (except NaN, refused, and bools, which normalise to 0/1).
    #[test]
    fn decode_then_encode_gives_the_same_words(
        t in numeric_type(),
        order in 0usize..4,
        seed in any::<u64>(),
    ) {
        prop_assume!(t != ValueType::Bool);
        let (b, w) = ORDERS[order];
        let r = ordered(t, b, w);
        let words: Vec<u16> = (0..r.len()).map(|i| (seed >> (16 * (i % 4))) as u16).collect();
        if let Ok(raw) = decode_raw(&r, &words) {
            let x = raw.as_f64().unwrap();
            // u64/i64 above 2^53 lose digits in f64; the rest must be exact.
            let exact = !matches!(t, ValueType::U64 | ValueType::I64) || x.abs() < 9.0e15;
            // f32 values are widened through their shortest decimal.
            if exact && t != ValueType::F32 {
                prop_assert_eq!(encode(&r, x).unwrap(), words);
            }
            if t == ValueType::F32 {
                let back = encode(&r, x).unwrap();
                prop_assert_eq!(decode_raw(&r, &back).unwrap(), raw);
            }
        }
    }
}
