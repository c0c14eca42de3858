//! Register codec figures for docs/BENCHMARKS.md: points decoded and encoded
//! per second on one core, for the real profiles (f32 meters, scaled
//! integers of the pile) and for one point of each type.
//!
//! ```sh
//! cargo bench -p gridwatch-gateway --bench codec
//! ```
//!
//! A "point" is one value: its words out of a poll's register image, decoded
//! by type, byte and word order, scaled, and put into the reading's map.
//! Divide the reported time per iteration by the points per iteration.

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use gridwatch_gateway::bus::ReadRequest;
use gridwatch_gateway::devices::modbus::decode::{decode_block, decode_value, RegisterImage};
use gridwatch_gateway::devices::modbus::encode::encode;
use gridwatch_gateway::devices::modbus::plan;
use gridwatch_gateway::profile::{Profile, ProfileLibrary};
use std::sync::Arc;

fn main() {
    divan::main();
}

fn profile(name: &str) -> Arc<Profile> {
    ProfileLibrary::built_in()
        .get(name)
        .expect("built-in profile")
}

/// The register image of one poll of `p`, with every value set to a
/// plausible number through the encoder.
fn image(p: &Profile) -> RegisterImage {
    let mut words = std::collections::BTreeMap::new();
    for (i, r) in p.registers.iter().enumerate() {
        let v = r.expect.map_or(200.0 + i as f64 * 1.25, |e| e as f64);
        for (k, w) in encode(r, v).expect("encodable").into_iter().enumerate() {
            words.insert((r.function, r.address + k as u16), w);
        }
    }
    let mut image = RegisterImage::new();
    for req in plan::device_requests(p, p.max_gap_registers) {
        let block: Vec<u16> = (0..req.count)
            .map(|a| {
                words
                    .get(&(req.function, req.start + a))
                    .copied()
                    .unwrap_or(0)
            })
            .collect();
        image.insert(&req, &block);
    }
    image
}

const METERS: [&str; 4] = [
    "eastron-sdm630",
    "chint-dtsu666",
    "tuf-2000m",
    "panametrics-gf868",
];

/// Decoding a whole poll of a meter into its reading's values.
#[divan::bench(args = METERS)]
fn decode_poll(bencher: Bencher, name: &str) {
    let p = profile(name);
    let image = image(&p);
    let points = p.registers.iter().filter(|r| r.is_emitted()).count();
    bencher
        .counter(ItemsCount::new(points))
        .bench(|| decode_block(black_box(&p.registers), black_box(&image), 0).expect("decodes"));
}

/// Encoding every value of a meter into words (the simulators' side).
#[divan::bench(args = METERS)]
fn encode_poll(bencher: Bencher, name: &str) {
    let p = profile(name);
    let points = p.registers.len();
    bencher.counter(ItemsCount::new(points)).bench(|| {
        for (i, r) in p.registers.iter().enumerate() {
            black_box(encode(r, black_box(200.0 + i as f64)).ok());
        }
    });
}

/// Storing a poll's responses into the image (the step before decoding).
#[divan::bench]
fn image_insert_sdm630(bencher: Bencher) {
    let p = profile("eastron-sdm630");
    let reqs: Vec<ReadRequest> = plan::device_requests(&p, p.max_gap_registers);
    let words: Vec<Vec<u16>> = reqs
        .iter()
        .map(|r| vec![0x4366; usize::from(r.count)])
        .collect();
    let registers: usize = reqs.iter().map(|r| usize::from(r.count)).sum();
    bencher.counter(ItemsCount::new(registers)).bench(|| {
        let mut image = RegisterImage::new();
        for (r, w) in reqs.iter().zip(&words) {
            image.insert(r, w);
        }
        image
    });
}

/// One value of each kind: f32 (shortest-decimal widening), scaled u16.
#[divan::bench]
fn decode_one_f32(bencher: Bencher) {
    let p = profile("eastron-sdm630");
    let r = p.register("voltage_l1_v").expect("register").clone();
    bencher.bench(|| decode_value(black_box(&r), black_box(&[0x4366, 0x3333])));
}

#[divan::bench]
fn decode_one_scaled_u16(bencher: Bencher) {
    let p = profile("gridwatch-ebp12");
    let r = p.channel.as_ref().expect("channel").registers[1].clone();
    bencher.bench(|| decode_value(black_box(&r), black_box(&[2301])));
}
