//! Reader figures for docs/BENCHMARKS.md: cost per sighting of mapping a
//! camera's JSON, of the HMAC pseudonym, and of decoding serial lines.
//!
//! ```sh
//! cargo bench -p gridwatch-gateway --bench readers
//! ```

use gridwatch_gateway::pseudonym::{IdentityKind, SiteKey};
use gridwatch_gateway::readers::line::{encode_tag, LineDecoder};
use gridwatch_gateway::readers::mapping::{JsonMapping, JsonMappingConfig};
use gridwatch_gateway::readers::Direction;

fn main() {
    divan::main();
}

const MESSAGE: &[u8] = br#"{"device":"gate-cam-1","ts":"2026-03-01T22:15:03.120+08:00","result":{"plate":"B12345","dir":"0","confidence":0.97,"colour":"blue"}}"#;

fn mapping() -> JsonMapping {
    let c: JsonMappingConfig = toml::from_str(
        r#"
        identity = "/result/plate"
        direction = "result.dir"
        direction_map = { "0" = "in", "1" = "out" }
        time = "/ts"
        time_format = "rfc3339"
        "#,
    )
    .expect("parses");
    JsonMapping::build(&c).expect("valid")
}

fn key() -> SiteKey {
    SiteKey::from_bytes(b"benchmark site key, 32 bytes long".to_vec()).expect("key")
}

/// JSON message → raw sighting.
#[divan::bench]
fn map_camera_message(b: divan::Bencher) {
    let m = mapping();
    b.counter(divan::counter::ItemsCount::new(1usize))
        .bench(|| m.apply(divan::black_box(MESSAGE)).expect("maps"));
}

/// Normalise + HMAC-SHA256 of one plate.
#[divan::bench]
fn pseudonym_of_a_plate(b: divan::Bencher) {
    let k = key();
    b.counter(divan::counter::ItemsCount::new(1usize))
        .bench(|| k.pseudonym(IdentityKind::Plate, divan::black_box("粤B 12345")));
}

/// 1,000 serial lines through the decoder.
#[divan::bench]
fn decode_1000_serial_lines(b: divan::Bencher) {
    let text: String = (0..1000)
        .map(|i| encode_tag(&format!("E2003412{i:04X}"), Some(Direction::In)))
        .collect();
    b.counter(divan::counter::ItemsCount::new(1000usize))
        .bench(|| {
            let mut d = LineDecoder::default();
            let mut out = Vec::with_capacity(1000);
            d.feed(divan::black_box(text.as_bytes()), &mut out);
            out
        });
}
