//! The slave's register access and RTU framing, byte for byte.

use super::rtu::{crc16, respond, FrameReceiver, MAX_ADU};
use super::*;
use crate::controller::{PileLimits, Protections};
use crate::pile_map::{control_base, SocketState, CONTROL_OVERCURRENT_LIMIT};

type Pile = PileController<[SocketController; 2]>;

fn pile() -> Pile {
    let s = SocketController::new(Protections::default()).expect("valid");
    let mut p = PileController::new([s.clone(), s], PileLimits::default());
    p.socket_mut(1).expect("socket 1").plug_in();
    p
}

fn frame(bytes: &[u8]) -> ([u8; MAX_ADU], usize) {
    let mut f = [0u8; MAX_ADU];
    f[..bytes.len()].copy_from_slice(bytes);
    let crc = crc16(bytes).to_le_bytes();
    f[bytes.len()] = crc[0];
    f[bytes.len() + 1] = crc[1];
    (f, bytes.len() + 2)
}

fn ask(p: &mut Pile, bytes: &[u8]) -> ([u8; MAX_ADU], usize) {
    let (f, n) = frame(bytes);
    let mut out = [0u8; MAX_ADU];
    let len = respond(p, 1, &f[..n], &mut out);
    (out, len)
}

#[test]
fn crc_matches_the_modbus_reference_example() {
    // "01 03 00 00 00 0A C5 CD" (Modbus over serial line, CRC example).
    assert_eq!(
        crc16(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A]).to_le_bytes(),
        [0xC5, 0xCD]
    );
}

#[test]
fn read_pile_block_over_rtu() {
    let mut p = pile();
    let (out, len) = ask(&mut p, &[0x01, 0x03, 0x00, 0x00, 0x00, 0x05]);
    let (want, n) = frame(&[0x01, 0x03, 0x0A, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&out[..len], &want[..n]);
}

#[test]
fn unmapped_address_is_exception_2() {
    let mut p = pile();
    let (out, len) = ask(&mut p, &[0x01, 0x03, 0x00, 0x05, 0x00, 0x01]);
    let (want, n) = frame(&[0x01, 0x83, 0x02]);
    assert_eq!(&out[..len], &want[..n]);
    let (out, len) = ask(&mut p, &[0x01, 0x04, 0x00, 0x00, 0x00, 0x01]);
    assert_eq!(&out[..3], &[0x01, 0x84, 0x01]);
    assert_eq!(len, 5);
}

#[test]
fn start_command_closes_the_relay_and_coils_show_it() {
    let mut p = pile();
    let [hi, lo] = control_base(1).expect("socket 1").to_be_bytes();
    let (out, len) = ask(&mut p, &[0x01, 0x06, hi, lo, 0x00, 0x01]);
    assert_eq!(len, 8);
    assert_eq!(&out[..6], &[0x01, 0x06, hi, lo, 0x00, 0x01]);
    assert!(p.socket(1).expect("socket 1").relay_on());
    let (out, len) = ask(&mut p, &[0x01, 0x01, 0x00, 0x00, 0x00, 0x02]);
    assert_eq!(&out[..len - 2], &[0x01, 0x01, 0x01, 0b01]);
    // Coil 0 off again through 0x05.
    ask(&mut p, &[0x01, 0x05, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(p.socket(1).expect("socket 1").state(), SocketState::Plugged);
}

#[test]
fn limits_are_validated_and_read_back() {
    let mut p = pile();
    let addr = control_base(2).expect("socket 2") + CONTROL_OVERCURRENT_LIMIT;
    let mut words = [0u16; 3];
    read_holding(&p, addr, &mut words).expect("mapped");
    assert_eq!(words, [5500, 1200, 720]);
    // 3 A, 600 W, 4 h, in one 0x10 write.
    let [hi, lo] = addr.to_be_bytes();
    let (out, _) = ask(
        &mut p,
        &[1, 0x10, hi, lo, 0, 3, 6, 0x0B, 0xB8, 0x02, 0x58, 0x00, 0xF0],
    );
    assert_eq!(&out[..6], &[1, 0x10, hi, lo, 0, 3]);
    read_holding(&p, addr, &mut words).expect("mapped");
    assert_eq!(words, [3000, 600, 240]);
    // 99 mA is below the valid range: nothing changes, not even the first word.
    assert_eq!(
        write_holding(&mut p, addr, &[2000, 9]),
        Err(Exception::IllegalDataValue)
    );
    read_holding(&p, addr, &mut words).expect("mapped");
    assert_eq!(words, [3000, 600, 240]);
    assert_eq!(
        write_holding(&mut p, addr, &[99]),
        Err(Exception::IllegalDataValue)
    );
    assert_eq!(
        write_holding(&mut p, addr + 3, &[1]),
        Err(Exception::IllegalDataAddress)
    );
    assert_eq!(
        write_holding(&mut p, 100, &[1]),
        Err(Exception::IllegalDataAddress)
    );
    // 0 switches a protection off.
    write_holding(&mut p, addr, &[0]).expect("valid");
    assert_eq!(
        p.socket(2).expect("socket 2").protections().overcurrent_a,
        None
    );
}

#[test]
fn refused_command_is_exception_4() {
    let mut p = pile();
    p.start(1).expect("starts");
    let leak = crate::controller::Measurement {
        residual_ma: 40,
        ..Default::default()
    };
    p.tick(0, |_| leak, |_, _| {});
    let base = control_base(1).expect("socket 1");
    assert_eq!(
        write_holding(&mut p, base, &[1]),
        Err(Exception::ServerDeviceFailure)
    );
    assert_eq!(
        write_holding(&mut p, base, &[7]),
        Err(Exception::IllegalDataValue)
    );
    assert_eq!(
        write_coils(&mut p, 0, &[true]),
        Err(Exception::ServerDeviceFailure)
    );
}

#[test]
fn other_units_bad_crc_and_broadcasts_get_no_reply() {
    let mut p = pile();
    let (mut f, n) = frame(&[0x02, 0x03, 0x00, 0x00, 0x00, 0x01]);
    let mut out = [0u8; MAX_ADU];
    assert_eq!(respond(&mut p, 1, &f[..n], &mut out), 0);
    f[0] = 1; // CRC now wrong
    assert_eq!(respond(&mut p, 1, &f[..n], &mut out), 0);
    let (b, n) = frame(&[0x00, 0x05, 0x00, 0x00, 0xFF, 0x00]);
    assert_eq!(respond(&mut p, 1, &b[..n], &mut out), 0);
    assert!(
        p.socket(1).expect("socket 1").relay_on(),
        "broadcast executed"
    );
}

#[test]
fn any_prefix_or_corruption_of_a_frame_never_panics() {
    let (f, n) = frame(&[
        1, 0x10, 0x07, 0xD1, 0, 3, 6, 0x0B, 0xB8, 0x02, 0x58, 0x00, 0xF0,
    ]);
    let mut out = [0u8; MAX_ADU];
    for len in 0..=n {
        let mut p = pile();
        let _ = respond(&mut p, 1, &f[..len], &mut out);
    }
    for pos in 0..n {
        for bit in 0..8 {
            let mut g = f;
            g[pos] ^= 1 << bit;
            let mut p = pile();
            assert_eq!(
                respond(&mut p, 1, &g[..n], &mut out),
                0,
                "CRC catches a flipped bit"
            );
        }
    }
    // Lengths and counts that lie, with a valid CRC.
    for body in [
        &[1u8, 0x10, 0x07, 0xD1, 0, 3, 2, 0, 0][..],
        &[1, 0x0F, 0, 0, 0, 9, 1, 0xFF],
        &[1, 0x01, 0, 0, 0xFF, 0xFF],
    ] {
        let mut p = pile();
        let (g, m) = frame(body);
        let len = respond(&mut p, 1, &g[..m], &mut out);
        assert_eq!(out[1] & 0x80, 0x80, "{body:?} is an exception");
        assert_eq!(len, 5);
    }
}

#[test]
fn receiver_splits_frames_on_silence_and_drops_a_stray_byte() {
    let mut rx = FrameReceiver::new(9600); // 3.5 chars = 4010 µs
    rx.push(0x55, 0); // stray byte
    let (f, n) = frame(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x05]);
    let mut t = 5_000;
    for &b in &f[..n] {
        rx.push(b, t);
        t += 1_146; // one character at 9600 baud
    }
    assert_eq!(rx.poll(t), None, "not silent long enough yet");
    let got = rx.poll(t + 4_010).expect("frame after silence");
    assert_eq!(got, &f[..n]);
    assert_eq!(rx.poll(t + 10_000), None);
}

#[test]
fn receiver_keeps_a_stray_byte_inside_a_frame_for_the_crc_to_reject() {
    let mut rx = FrameReceiver::new(9600);
    let (f, n) = frame(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x05]);
    let mut t = 0;
    for (i, &b) in f[..n].iter().enumerate() {
        rx.push(b, t);
        if i == 2 {
            t += 100;
            rx.push(0xAA, t);
        }
        t += 1_146;
    }
    let got = rx.poll(t + 5_000).expect("a frame");
    let mut p = pile();
    let mut out = [0u8; MAX_ADU];
    assert_eq!(
        respond(&mut p, 1, got, &mut out),
        0,
        "costs one poll, no reply"
    );
}

mod arbitrary_bytes {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes, with or without a valid CRC, get at most a
        /// well-formed reply and never a panic.
        #[test]
        fn respond_never_panics(mut body in proptest::collection::vec(any::<u8>(), 0..260), fix_crc in any::<bool>()) {
            let mut p = pile();
            let mut out = [0u8; MAX_ADU];
            let len = if fix_crc && body.len() <= MAX_ADU - 2 {
                // Addressed to this unit, so every function code is dispatched.
                if let Some(unit) = body.first_mut() {
                    *unit = 1;
                }
                let (f, n) = frame(&body);
                respond(&mut p, 1, &f[..n], &mut out)
            } else {
                respond(&mut p, 1, &body, &mut out)
            };
            prop_assert!(len <= MAX_ADU);
            if len > 0 {
                prop_assert_eq!(crc16(&out[..len - 2]).to_le_bytes(), [out[len - 2], out[len - 1]]);
            }
        }

        /// Any byte timing gives frames no longer than an ADU.
        #[test]
        fn receiver_never_panics(bytes in proptest::collection::vec((any::<u8>(), 0u64..10_000), 0..600)) {
            let mut rx = FrameReceiver::new(19_200);
            let mut t = 0u64;
            for (b, gap) in bytes {
                t += gap;
                if let Some(f) = rx.poll(t) {
                    prop_assert!(f.len() <= MAX_ADU);
                }
                rx.push(b, t);
            }
        }

        /// Any 23 bytes decode or fail cleanly as a BL0942 packet.
        #[test]
        fn bl0942_decode_never_panics(bytes in proptest::array::uniform23(any::<u8>())) {
            let _ = crate::drivers::bl0942::decode_frame(&bytes, crate::drivers::bl0942::CMD_READ);
        }
    }
}
