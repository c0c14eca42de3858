//! Property tests of the wire formats: any reading survives JSON, and any
//! point survives line protocol as exactly one point.

use gridwatch_telemetry::lineproto::{encode_point, normalise, parse_lines, FieldValue, Point};
use gridwatch_telemetry::{codec, DeviceKind, Reading, Timestamp};
use proptest::prelude::*;

/// Strings rich in the characters that break naive encoders.
fn nasty() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(' '),
            Just(','),
            Just('='),
            Just('"'),
            Just('\\'),
            Just('\n'),
            Just('\r'),
            Just('\t'),
            Just('#'),
            Just('南'),
            Just('区'),
            Just('电'),
            Just('é'),
            Just('🔥'),
            any::<char>(),
            proptest::char::range('a', 'z'),
        ],
        0..24,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn kind() -> impl Strategy<Value = DeviceKind> {
    proptest::sample::select(DeviceKind::ALL.to_vec())
}

fn reading() -> impl Strategy<Value = Reading> {
    (
        any::<i64>(),
        nasty(),
        nasty(),
        nasty(),
        kind(),
        any::<u64>(),
        proptest::option::of(any::<u16>()),
        proptest::option::of(nasty()),
        proptest::collection::btree_map(
            nasty().prop_filter("names are validated non-empty", |k| !k.is_empty()),
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
            0..8,
        ),
    )
        .prop_map(|(ts, gw, dev, site, kind, seq, socket, unit, values)| {
            let mut r = Reading::new(Timestamp(ts), gw, dev, kind, seq);
            r.site = site.into();
            r.socket = socket;
            r.unit = unit;
            r.values = values;
            r
        })
}

fn field_value() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(FieldValue::Float),
        any::<i64>().prop_map(FieldValue::Int),
        any::<u64>().prop_map(FieldValue::UInt),
        any::<bool>().prop_map(FieldValue::Bool),
        nasty().prop_map(FieldValue::Str),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_reading_round_trips_through_json(r in reading()) {
        let bytes = codec::encode(&r).unwrap();
        let back: Reading = codec::decode(&bytes).unwrap();
        prop_assert_eq!(back, r);
    }

    #[test]
    fn any_point_is_exactly_one_parseable_point(
        measurement in nasty().prop_filter("writable", |m| !normalise(m).is_empty() && !m.starts_with('#')),
        tags in proptest::collection::vec((nasty().prop_filter("key", |k| !k.is_empty()), nasty()), 0..5),
        fields in proptest::collection::vec((nasty().prop_filter("key", |k| !k.is_empty()), field_value()), 1..5),
        ts in proptest::option::of(any::<i64>()),
    ) {
        let p = Point { measurement, tags, fields, ts: ts.map(Timestamp) };
        let mut out = String::new();
        encode_point(&p, &mut out).unwrap();
        let parsed = parse_lines(&out).unwrap();
        prop_assert_eq!(parsed.len(), 1);
        let expected = Point {
            measurement: normalise(&p.measurement),
            tags: p.tags.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (normalise(k), normalise(v))).collect(),
            fields: p.fields.iter().map(|(k, v)| (normalise(k), match v {
                FieldValue::Str(s) => FieldValue::Str(normalise(s)),
                other => other.clone(),
            })).collect(),
            ts: p.ts,
        };
        prop_assert_eq!(&parsed[0], &expected);
    }

    #[test]
    fn any_reading_with_values_is_one_point(r in reading()) {
        let point = r.to_point();
        let mut out = String::new();
        encode_point(&point, &mut out).unwrap();
        let parsed = parse_lines(&out).unwrap();
        prop_assert_eq!(parsed.len(), 1);
        prop_assert_eq!(parsed[0].measurement.as_str(), r.kind.as_str());
        prop_assert_eq!(parsed[0].ts, Some(r.ts));
        prop_assert_eq!(parsed[0].fields.len(), r.values.len() + 1);
    }

    #[test]
    fn parser_never_panics_on_arbitrary_text(s in nasty()) {
        let _ = parse_lines(&s);
    }
}
