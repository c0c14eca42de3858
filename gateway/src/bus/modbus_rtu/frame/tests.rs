use super::*;
use proptest::prelude::*;

fn holding(start: u16, count: u16) -> RtuRequest {
    RtuRequest::Read(ReadRequest {
        function: Function::Holding,
        start,
        count,
    })
}

/// A response frame with a valid CRC.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = body.to_vec();
    v.extend_from_slice(&crc16(body).to_le_bytes());
    v
}

#[test]
fn a_read_request_matches_the_spec_example() {
    // Modbus over serial line, example: unit 1, read holding 0x006B..+3.
    let adu = encode(0x01, &holding(0x006B, 3));
    assert_eq!(adu, vec![0x01, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x74, 0x17]);
    let coil = encode(
        0x11,
        &RtuRequest::WriteCoil {
            address: 0x00AC,
            on: true,
        },
    );
    assert_eq!(&coil[..6], &[0x11, 0x05, 0x00, 0xAC, 0xFF, 0x00]);
}

#[test]
fn a_read_response_decodes_to_words() {
    let req = holding(0x006B, 3);
    let frame = framed(&[0x01, 0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64]);
    let mut r = ResponseReader::new(1, req);
    assert_eq!(r.push(&frame[..4]), Progress::Incomplete);
    assert_eq!(
        r.push(&frame[4..]),
        Progress::Done(Ok(Answer::Words(vec![0x022B, 0, 0x64])))
    );
}

#[test]
fn an_exception_is_an_answer() {
    let req = holding(0, 2);
    let frame = framed(&[0x01, 0x83, 0x02]);
    assert_eq!(decode(1, &req, &frame), Ok(Answer::Exception(2)));
    let mut r = ResponseReader::new(1, req);
    assert_eq!(r.push(&frame), Progress::Done(Ok(Answer::Exception(2))));
}

#[test]
fn a_damaged_frame_is_a_crc_error() {
    let req = holding(0, 1);
    let mut frame = framed(&[0x01, 0x03, 0x02, 0x12, 0x34]);
    frame[3] ^= 0x01;
    assert!(matches!(
        decode(1, &req, &frame),
        Err(FrameError::Crc { .. })
    ));
    // A damaged frame may be noise before the real answer: the reader
    // waits for it, and reports the damage if nothing better comes.
    let mut r = ResponseReader::new(1, req);
    assert_eq!(r.push(&frame), Progress::Incomplete);
    assert!(matches!(r.give_up(), Some(FrameError::Crc { .. })));
}

#[test]
fn a_truncated_frame_says_how_much_came() {
    let req = holding(0, 4);
    let frame = framed(&[0x01, 0x03, 0x08, 0, 1, 0, 2, 0, 3, 0, 4]);
    let mut r = ResponseReader::new(1, req);
    assert_eq!(r.push(&frame[..7]), Progress::Incomplete);
    let e = r.give_up().expect("an account of the partial frame");
    assert_eq!(e.to_string(), "the response stopped after 7 of 13 bytes");
}

#[test]
fn wrong_unit_function_and_count_are_refused() {
    let req = holding(0, 1);
    assert_eq!(
        decode(1, &req, &framed(&[0x02, 0x03, 0x02, 0, 1])),
        Err(FrameError::Unit { got: 2, want: 1 })
    );
    assert_eq!(
        decode(1, &req, &framed(&[0x01, 0x04, 0x02, 0, 1])),
        Err(FrameError::Function { got: 4, want: 3 })
    );
    assert!(matches!(
        decode(1, &req, &framed(&[0x01, 0x03, 0x04, 0, 1, 0, 2])),
        Err(FrameError::Length(_))
    ));
    let write = RtuRequest::WriteCoil {
        address: 3,
        on: false,
    };
    assert_eq!(
        decode(1, &write, &framed(&[0x01, 0x05, 0x00, 0x03, 0xFF, 0x00])),
        Err(FrameError::Echo)
    );
    assert_eq!(
        decode(1, &write, &framed(&[0x01, 0x05, 0x00, 0x03, 0x00, 0x00])),
        Ok(Answer::Written)
    );
}

/// docs/pitfalls.md: a stray byte anywhere before the answer costs nothing.
#[test]
fn a_stray_byte_at_any_position_before_the_answer_is_skipped() {
    let req = holding(100, 2);
    let frame = framed(&[0x07, 0x03, 0x04, 0x00, 0x2A, 0x01, 0x00]);
    for stray in [0x00, 0x07, 0x03, 0xFF] {
        for noise_len in 1..=3 {
            let mut bytes = vec![stray; noise_len];
            bytes.extend_from_slice(&frame);
            // Delivered in every split, as a UART might.
            for split in 0..bytes.len() {
                let mut r = ResponseReader::new(7, req);
                let first = r.push(&bytes[..split]);
                let done = match first {
                    Progress::Done(d) => d,
                    Progress::Incomplete => match r.push(&bytes[split..]) {
                        Progress::Done(d) => d,
                        Progress::Incomplete => {
                            panic!("stray {stray:#x}×{noise_len}, split {split}: incomplete")
                        }
                    },
                };
                assert_eq!(
                    done,
                    Ok(Answer::Words(vec![42, 256])),
                    "stray {stray:#x}×{noise_len} split {split}"
                );
            }
        }
    }
}

proptest! {
    /// Arbitrary bytes never panic the reader and never grow it past its cap.
    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        unit in any::<u8>(),
        count in 1u16..=125,
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
    ) {
        let req = holding(0, count);
        let mut r = ResponseReader::new(unit, req);
        for c in &chunks {
            let _ = r.push(c);
            prop_assert!(r.pending().len() <= 2 * MAX_ADU + 300);
        }
        let _ = r.give_up();
        for c in &chunks {
            let _ = decode(unit, &req, c);
        }
    }

    /// Whatever the words, a response encoded by the spec decodes to them.
    #[test]
    fn valid_responses_round_trip(
        unit in 1u8..=247,
        words in proptest::collection::vec(any::<u16>(), 1..=125),
    ) {
        let req = holding(0, words.len() as u16);
        let mut body = vec![unit, 0x03, (2 * words.len()) as u8];
        for w in &words {
            body.extend_from_slice(&w.to_be_bytes());
        }
        let mut r = ResponseReader::new(unit, req);
        prop_assert_eq!(r.push(&framed(&body)), Progress::Done(Ok(Answer::Words(words))));
    }
}

#[test]
fn coil_reads_unpack_bits_and_register_writes_echo() {
    let req = RtuRequest::Read(ReadRequest {
        function: Function::Coils,
        start: 0,
        count: 10,
    });
    assert_eq!(req.response_len(), 7);
    let frame = framed(&[0x01, 0x01, 0x02, 0b1000_0101, 0b10]);
    assert_eq!(
        decode(1, &req, &frame),
        Ok(Answer::Words(vec![1, 0, 1, 0, 0, 0, 0, 1, 0, 1]))
    );
    let write = RtuRequest::WriteRegister {
        address: 2000,
        value: 2,
    };
    let adu = encode(1, &write);
    assert_eq!(&adu[..6], &[0x01, 0x06, 0x07, 0xD0, 0x00, 0x02]);
    assert_eq!(decode(1, &write, &adu), Ok(Answer::Written));
}
