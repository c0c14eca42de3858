//! Throughput of the DL/T 645 codec: encoding read requests and decoding
//! meter answers, as frames per second on one core. Run with
//! `cargo bench -p gridwatch-dlt645 --bench codec`; figures in
//! docs/BENCHMARKS.md.

use divan::{black_box, Bencher};
use gridwatch_dlt645::{decode, Address, Answer, Control, DataId, Frame, Function, Receiver};

fn main() {
    divan::main();
}

const FRAMES: usize = 1000;

fn meter() -> Address {
    Address::parse("000012345678").unwrap()
}

/// An answer with a 4-byte energy value, as a meter sends it.
fn energy_answer() -> Vec<u8> {
    let mut data = DataId::FORWARD_ACTIVE_ENERGY.to_wire().to_vec();
    data.extend_from_slice(&[0x56, 0x34, 0x12, 0x00]);
    let f = Frame::new(meter(), Control::answer(Function::ReadData, false), &data).unwrap();
    let mut out = [0u8; 64];
    let n = f.encode(4, &mut out).unwrap();
    out[..n].to_vec()
}

#[divan::bench(items_count = FRAMES)]
fn encode_read_request(b: Bencher) {
    let mut out = [0u8; 64];
    b.bench_local(|| {
        for i in 0..FRAMES {
            let di = DataId::VOLTAGE_A.phase((i % 3) as u8 + 1);
            let n = Frame::read(black_box(meter()), di)
                .encode(4, &mut out)
                .unwrap();
            black_box(&out[..n]);
        }
    });
}

#[divan::bench(items_count = FRAMES)]
fn decode_answer_and_value(b: Bencher) {
    let wire = energy_answer();
    b.bench_local(|| {
        for _ in 0..FRAMES {
            let (f, _) = decode(black_box(&wire)).unwrap();
            if let Ok(Answer::Data { di, value, .. }) = f.answer() {
                black_box(di.format().unwrap().decode(value).unwrap().to_f64());
            }
        }
    });
}

#[divan::bench(items_count = FRAMES)]
fn receiver_stream_in_8_byte_chunks(b: Bencher) {
    let one = energy_answer();
    let stream: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * FRAMES)
        .collect();
    b.bench_local(|| {
        let mut r = Receiver::new();
        let mut n = 0;
        for chunk in black_box(&stream).chunks(8) {
            r.push(chunk);
            while let Some(f) = r.next_frame() {
                n += usize::from(f.is_ok());
            }
        }
        assert_eq!(n, FRAMES);
    });
}
