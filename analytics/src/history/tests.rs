use super::*;
use crate::register::{FlatEntry, RegisterFile};

fn meter(kind: DeviceKind, unit: &str, ts: i64, key: &str, v: f64) -> Reading {
    let mut r = Reading::new(
        Timestamp(ts),
        "gw-1",
        format!("{unit}-{}", kind.as_str()),
        kind,
        ts as u64,
    );
    r.site = "s01".into();
    r.building = Some("b02".into());
    r.unit = Some(unit.into());
    r.values.insert(key.into(), v);
    r
}

const DAY: i64 = 86_400_000;
const MIN: i64 = 60_000;

#[test]
fn a_flat_day_is_the_sites_local_day() {
    let h = History::default();
    // 15:30 UTC is 23:30 in Shanghai; 16:30 UTC is 00:30 the next day.
    h.observe(&meter(
        DeviceKind::WaterMeter,
        "0301",
        DAY * 100 + 15 * 3_600_000 + 30 * MIN,
        "flow_l",
        10.0,
    ));
    h.observe(&meter(
        DeviceKind::WaterMeter,
        "0301",
        DAY * 100 + 16 * 3_600_000 + 30 * MIN,
        "flow_l",
        4.0,
    ));
    let days = h.flat("s01/b02/0301");
    assert_eq!(days.len(), 2);
    assert_eq!((days[0].day, days[0].water_l), (100, 10.0));
    assert_eq!((days[1].day, days[1].water_l), (101, 4.0));
}

#[test]
fn electricity_is_power_times_the_interval_and_night_water_is_kept_apart() {
    let h = History::default();
    let start = DAY * 200 - 480 * MIN; // local midnight of day 200
    for i in 0..=60 {
        h.observe(&meter(
            DeviceKind::ElectricityMeter,
            "0401",
            start + i * MIN,
            "power_w",
            600.0,
        ));
    }
    // A gap over an hour is not counted as use.
    h.observe(&meter(
        DeviceKind::ElectricityMeter,
        "0401",
        start + 200 * MIN,
        "power_w",
        600.0,
    ));
    for i in 0..4 {
        // 02:00–02:45 local: quiet hours; 12:00: not.
        h.observe(&meter(
            DeviceKind::WaterMeter,
            "0401",
            start + 120 * MIN + i * 15 * MIN,
            "flow_l",
            2.0,
        ));
    }
    h.observe(&meter(
        DeviceKind::WaterMeter,
        "0401",
        start + 720 * MIN,
        "flow_l",
        30.0,
    ));
    let d = h.flat("s01/b02/0401")[0];
    assert!((d.kwh - 0.6).abs() < 1e-4, "{}", d.kwh);
    assert_eq!(d.night_water_l, 8.0);
    assert_eq!(d.night_water_min, 45);
    assert_eq!(d.water_l, 38.0);
}

#[test]
fn the_building_band_is_per_person_and_needs_three_flats() {
    let register = Register::from_file(RegisterFile {
        flats: vec![FlatEntry {
            flat: "s01/b02/0403".into(),
            occupants: 1,
            area_m2: 60.0,
            business: false,
            ..Default::default()
        }],
        tags: vec![],
        meters: vec![],
    });
    let h = History::new(SiteZones::uniform(0), (1, 5), register, 2);
    let at = DAY * 10 + 12 * 3_600_000;
    for (unit, l) in [("0401", 200.0), ("0402", 300.0)] {
        h.observe(&meter(DeviceKind::WaterMeter, unit, at, "flow_l", l));
    }
    assert!(h
        .building_band("s01/b02/0401", FlatFeature::Water, &[10])
        .is_empty());
    h.observe(&meter(DeviceKind::WaterMeter, "0403", at, "flow_l", 400.0));
    h.observe(&meter(DeviceKind::WaterMeter, "0999", at, "flow_l", 9e9));
    let band = h.building_band("s01/b02/0403", FlatFeature::Water, &[10]);
    // Per person: 100, 150, 400 (one occupant), 4.5e9.
    assert_eq!(band.len(), 1);
    assert_eq!(band[0].flats, 4);
    assert_eq!(band[0].median, 275.0);
    assert_eq!(
        h.flat_per_person("s01/b02/0403", FlatFeature::Water),
        vec![(10, 400.0)]
    );
}

#[test]
fn bounded_in_sockets_and_saved_and_restored() {
    let h = History::default();
    for n in 0..(MAX_SOCKETS as u16 + 5) {
        let mut r = Reading::new(
            Timestamp(MIN),
            "gw-1",
            "pile-1",
            DeviceKind::ChargingSocket,
            1,
        );
        r.site = "yard".into();
        r.socket = Some(n);
        r.values.insert("power_w".into(), 100.0);
        h.observe(&r);
    }
    assert_eq!(h.stats().sockets, MAX_SOCKETS);
    assert_eq!(h.stats().refused, 5);
    let dir = tempfile::tempdir().unwrap();
    let path = file::beside(&dir.path().join("state.ckpt"));
    assert!(path.to_string_lossy().ends_with("state.ckpt.history"));
    h.save(&path).unwrap();
    let back = History::default();
    assert!(back.load(&path).unwrap());
    assert_eq!(back.stats().sockets, MAX_SOCKETS);
    let s = back.socket(
        "yard/gw-1/pile-1#3",
        SocketSeries::Power,
        Timestamp(0),
        Timestamp(2 * MIN),
    );
    assert_eq!(s.len(), 1);
    std::fs::write(&path, b"not a history").unwrap();
    assert!(matches!(
        back.load(&path),
        Err(file::HistoryFileError::Damaged { .. })
    ));
    back.restore(&path);
    assert!(!path.exists(), "a damaged file is set aside");
}
