//! A flat's register history: each day is judged against the entry in
//! force that day.

use super::*;

fn entry(occupants: u8, since: Option<&str>) -> FlatEntry {
    FlatEntry {
        since: since.map(str::to_owned),
        ..FlatEntry::new("s/b/101", occupants)
    }
}

#[test]
fn each_day_takes_the_entry_in_force_that_day() {
    let r = Register::from_file(RegisterFile {
        flats: vec![
            entry(8, Some("2026-12-01")),
            entry(2, None),
            entry(5, Some("2026-11-15")),
        ],
        ..Default::default()
    });
    let day = |d: &str| dates::parse_date(d).unwrap();
    assert_eq!(
        r.flat_on("s/b/101", day("2026-01-01")).unwrap().occupants,
        2
    );
    assert_eq!(
        r.flat_on("s/b/101", day("2026-11-15")).unwrap().occupants,
        5
    );
    assert_eq!(
        r.flat_on("s/b/101", day("2026-11-30")).unwrap().occupants,
        5
    );
    let dec = r.flat_on("s/b/101", day("2026-12-01")).unwrap();
    assert_eq!(
        (dec.occupants, dec.since_label()),
        (8, "since 2026-12-01".to_owned())
    );
    assert_eq!(r.flat("s/b/101").unwrap().occupants, 8, "the latest entry");
    assert_eq!(r.history("s/b/101").len(), 3);
    assert_eq!(r.history("s/b/101")[0].occupants, 2, "oldest first");
    assert!(r.history("s/b/999").is_empty());
}

#[test]
fn a_flat_registered_later_has_no_entry_before() {
    let r = Register::from_file(RegisterFile {
        flats: vec![entry(3, Some("2026-12-01"))],
        ..Default::default()
    });
    let nov = dates::parse_date("2026-11-30").unwrap();
    assert!(r.flat_on("s/b/101", nov).is_none());
    assert_eq!(r.flat_on("s/b/101", nov + 1).unwrap().occupants, 3);
}

#[test]
fn two_entries_for_one_date_or_a_bad_date_are_refused_naming_the_flat() {
    let two = RegisterFile {
        flats: vec![entry(2, Some("2026-12-01")), entry(3, Some("2026-12-01"))],
        ..Default::default()
    };
    let e = two.check().unwrap_err();
    assert!(e.contains("s/b/101") && e.contains("2026-12-01"), "{e}");
    let bad = RegisterFile {
        flats: vec![entry(2, Some("2026-12-32"))],
        ..Default::default()
    };
    let e = bad.check().unwrap_err();
    assert!(e.contains("s/b/101") && e.contains("2026-12-32"), "{e}");
}

#[test]
fn an_undated_register_reads_as_before() {
    let file: RegisterFile =
        serde_json::from_str(r#"{"flats": [{"flat": "s/b/1", "occupants": 2, "business": true}]}"#)
            .unwrap();
    file.check().unwrap();
    let text = serde_json::to_string(&file).unwrap();
    for absent in ["since", "landlord", "town"] {
        assert!(!text.contains(absent), "{text}");
    }
    let r = Register::from_file(file);
    let f = r.flat_on("s/b/1", 0).unwrap();
    assert!(f.business);
    assert_eq!(f.since_label(), "(undated)");
}
