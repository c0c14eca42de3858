//! Tests of the scoring rules.

use super::*;
use gridwatch_telemetry::{AlertState, Evidence, Severity, Timestamp};
use truth::Case;

fn alert(rule: &str, entity: &str, ts: i64) -> Alert {
    Alert {
        schema: 1,
        id: format!("{rule}:{entity}:{ts}"),
        rule: rule.into(),
        entity: entity.into(),
        cell: "c".into(),
        site: "s".into(),
        severity: Severity::Minor,
        state: AlertState::Open,
        ts: Timestamp(ts),
        title: String::new(),
        summary: String::new(),
        evidence: Evidence::default(),
    }
}

fn case(kind: &str, entity: &str, start_ms: i64, end_ms: Option<i64>) -> Case {
    Case {
        kind: kind.into(),
        entity: entity.into(),
        start_ms,
        end_ms,
        note: String::new(),
        traits: BTreeMap::new(),
    }
}

/// The tables name rules by string: a detector's rule renamed without
/// them would silently score nothing.
#[test]
fn every_scored_rule_is_one_a_detector_raises() {
    use crate::detect::*;
    let mut raised: Vec<&str> = socket_session::RULES.to_vec();
    raised.extend([
        socket_safety::RULE_OVERCURRENT,
        socket_safety::RULE_OVERPOWER,
        socket_safety::RULE_OVERTEMPERATURE,
        meter_health::RULE_NO_DATA,
        meter_health::RULE_BUILDING_NO_DATA,
        meter_health::RULE_STUCK,
        meter_health::RULE_REVERSED,
        indoor_charging::RULE_SIGHTING,
        indoor_charging::RULE_SIGNATURE,
        indoor_charging::RULE_FUSED,
        group_rental::RULE_GROUP_RENTAL,
        utility_group_rental::RULE,
        three_in_one::RULE_THREE_IN_ONE,
        night_water::RULE_LEAK,
    ]);
    let scored = RULE_KINDS
        .iter()
        .map(|r| r.0)
        .chain(EPISODE_RULES.iter().map(|r| r.0));
    for rule in scored {
        assert!(
            raised.contains(&rule),
            "{rule} is scored but no detector raises it"
        );
    }
}

#[test]
fn precision_recall_and_time_to_detect_per_rule() {
    let case = |e: &str, start| case(kind::GROUP_RENTAL, e, start, None);
    let truth = GroundTruth {
        cases: vec![
            case("a", 0),
            case("b", 0),
            case("c", 100 * 3_600_000),
            case("d", 0),
        ],
        traits: BTreeMap::from([("x".to_owned(), vec!["night_plateau".to_owned()])]),
        ..GroundTruth::default()
    };
    let alerts = vec![
        alert("group_rental", "a", 10 * 3_600_000),
        alert("group_rental", "a", 50 * 3_600_000),
        alert("group_rental", "b", 30 * 3_600_000),
        // Before its case began: a false positive.
        alert("group_rental", "c", 50 * 3_600_000),
        alert("group_rental", "x", 0),
    ];
    let e = evaluate(&truth, &alerts);
    let g = &e.rules[0];
    assert_eq!(
        (g.cases, g.alerted, g.true_positives, g.false_positives),
        (4, 4, 2, 2)
    );
    assert_eq!(g.precision, Some(0.5));
    assert_eq!(g.recall, Some(0.5));
    assert_eq!(g.f1, Some(0.5));
    assert_eq!(g.median_ttd_h, Some(20.0));
    // Which flats the false positives were: "c" too early (no traits), "x" a night plateau.
    assert_eq!(
        g.false_positives_by_trait,
        BTreeMap::from([
            ("group_rental (too early)".to_owned(), 1),
            ("none".to_owned(), 1),
            ("night_plateau".to_owned(), 1),
        ])
    );
    assert!(e
        .table()
        .contains("false positives of group_rental by flat trait"));
    // A rule with no cases and no alerts has neither precision nor recall.
    let s = e
        .rules
        .iter()
        .find(|r| r.rule == "indoor_charging_fused")
        .unwrap();
    assert_eq!((s.precision, s.recall, s.median_ttd_h), (None, None, None));
    assert!(e.table().contains("group_rental"));
}

#[test]
fn a_lift_sighting_is_scored_against_bikes_indoors_and_indoor_charging() {
    let case = |k: &str, e: &str, start| case(k, e, start, None);
    let truth = GroundTruth {
        cases: vec![
            case(kind::BIKE_INDOORS, "a", 10),
            case(kind::INDOOR_CHARGING, "b", 10),
            // Both on one flat: one case, from the earlier start.
            case(kind::INDOOR_CHARGING, "c", 50),
            case(kind::BIKE_INDOORS, "c", 20),
        ],
        ..GroundTruth::default()
    };
    let alerts = vec![
        alert("indoor_sighting", "a", 10),
        alert("indoor_sighting", "c", 30),
        alert("indoor_sighting", "z", 30),
        alert("indoor_charging_signature", "a", 10),
    ];
    let e = evaluate(&truth, &alerts);
    let s = e
        .rules
        .iter()
        .find(|r| r.rule == "indoor_sighting")
        .unwrap();
    assert_eq!(s.kind, "indoor_charging+bike_indoors");
    assert_eq!(
        (s.cases, s.alerted, s.true_positives, s.false_positives),
        (3, 3, 2, 1)
    );
    // The signature rule looks for charging only: "a" is a false positive.
    let g = e
        .rules
        .iter()
        .find(|r| r.rule == "indoor_charging_signature")
        .unwrap();
    assert_eq!((g.cases, g.true_positives, g.false_positives), (2, 0, 1));
}

#[test]
fn episodes_are_found_inside_their_window_and_alerts_outside_are_false() {
    let h = 3_600_000;
    let ep = |e: &str, start: i64, end: i64| case("meter_gap", e, start, Some(end));
    let truth = GroundTruth {
        end_ms: 100 * h,
        cases: vec![
            ep("m1", 10 * h, 12 * h),
            ep("m1", 50 * h, 51 * h),
            ep("m2", 5 * h, 6 * h),
        ],
        ..GroundTruth::default()
    };
    let alerts = vec![
        // First episode of m1, twice: found once, 30 min after it was due.
        alert("meter_no_data", "m1", 10 * h + h / 2),
        alert("meter_no_data", "m1", 11 * h),
        // Within the grace after m1's second episode ended.
        alert("meter_no_data", "m1", 51 * h + h / 4),
        // Outside every window: a false positive, as is the other entity.
        alert("meter_no_data", "m1", 30 * h),
        alert("meter_no_data", "m3", 5 * h),
        // Another rule is not counted.
        alert("meter_stuck", "m2", 5 * h),
    ];
    let s = score_episodes(&truth, &alerts, "meter_no_data", "meter_gap", h / 2);
    assert_eq!(s.unit, unit::EPISODE);
    assert_eq!(
        (
            s.cases,
            s.detected,
            s.alerted,
            s.true_positives,
            s.false_positives
        ),
        (3, 2, 5, 3, 2)
    );
    assert_eq!(s.precision, Some(0.6));
    assert!((s.recall.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(s.median_ttd_h, Some(0.875));
    assert_eq!(s.max_ttd_h, Some(1.25));
    assert_eq!(
        s.false_positives_by_trait,
        BTreeMap::from([("none".to_owned(), 2)])
    );
}

/// `three_in_one` once showed "precision 1.00" with no alert on 20 cases,
/// and a case-free district a page of recall 1.000.
#[test]
fn a_rule_that_never_fired_has_no_precision_and_no_cases_no_recall() {
    let h = 3_600_000;
    let truth = GroundTruth {
        flats: 100,
        days: 30,
        cases: vec![case(kind::THREE_IN_ONE, "a", 0, None)],
        ..GroundTruth::default()
    };
    let e = evaluate(&truth, &[alert("group_rental", "x", h)]);
    let t = e.rules.iter().find(|r| r.rule == "three_in_one").unwrap();
    assert_eq!((t.precision, t.recall, t.f1), (None, Some(0.0), None));
    // No group-rental case on the district: recall undefined, precision 0.
    let g = &e.rules[0];
    assert_eq!((g.precision, g.recall, g.f1), (Some(0.0), None, None));
    let table = e.table();
    let line = table
        .lines()
        .find(|l| l.starts_with("three_in_one"))
        .unwrap();
    assert!(line.contains("—"), "{line}");
    assert!(!line.contains("1.000"), "{line}");
    assert!(e
        .markdown()
        .contains("| `three_in_one` | flat | 1 | 0 | 0 | 0 | 0 | — | 0.000 | — |"));
}

/// False alerts per 100 flats per month count every alert outside a case,
/// so that a case-free district gives the rate grid staff would live with.
#[test]
fn false_alerts_per_100_flats_per_month() {
    let d = 86_400_000;
    let truth = GroundTruth {
        flats: 200,
        days: 60,
        cases: vec![case(kind::GROUP_RENTAL, "a", 10 * d, None)],
        ..GroundTruth::default()
    };
    let alerts = vec![
        alert("group_rental", "x", d),
        alert("group_rental", "x", 9 * d),
        alert("group_rental", "y", d),
        // Before its case began: false, as is its repeat before the start.
        alert("group_rental", "a", d),
        alert("meter_stuck", "m", d),
    ];
    let e = evaluate(&truth, &alerts);
    let g = &e.rules[0];
    assert_eq!((g.false_positives, g.false_alerts), (3, 4));
    // 4 false alerts over 2 (hundred flats) × 2 months.
    assert_eq!(g.false_alerts_per_100_flats_month, Some(1.0));
    let m = e.rules.iter().find(|r| r.rule == "meter_stuck").unwrap();
    assert_eq!(m.false_alerts_per_100_flats_month, Some(0.25));
    assert_eq!(m.recall, None);
}

/// Misses broken down by the case's own traits, whatever keys they have;
/// time to detect as median, p90 (nearest rank) and max.
#[test]
fn misses_by_case_trait_and_time_to_detect_quantiles() {
    let h = 3_600_000;
    let with = |e: &str, traits: &[(&str, &str)]| {
        let mut c = case(kind::INDOOR_CHARGING, e, 0, None);
        c.traits = traits
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        c
    };
    let mut cases: Vec<Case> = (0..10)
        .map(|i| with(&format!("f{i}"), &[("charger", "lithium")]))
        .collect();
    cases.push(with(
        "m1",
        &[("charger", "lead_acid"), ("start_hour", "19")],
    ));
    cases.push(with(
        "m2",
        &[("charger", "lead_acid"), ("start_hour", "22")],
    ));
    cases.push(with("m3", &[]));
    let truth = GroundTruth {
        cases,
        traits: BTreeMap::from([
            ("m1".to_owned(), vec!["heating_ac".to_owned()]),
            ("f0".to_owned(), vec!["heating_ac".to_owned()]),
        ]),
        ..GroundTruth::default()
    };
    let alerts: Vec<Alert> = (0..10)
        .map(|i| alert("indoor_charging_signature", &format!("f{i}"), (i + 1) * h))
        .collect();
    let e = evaluate(&truth, &alerts);
    let s = e
        .rules
        .iter()
        .find(|r| r.rule == "indoor_charging_signature")
        .unwrap();
    assert_eq!(
        s.misses_by_trait,
        BTreeMap::from([
            ("charger=lead_acid".to_owned(), 2),
            ("start_hour=19".to_owned(), 1),
            ("start_hour=22".to_owned(), 1),
            ("none".to_owned(), 1),
        ])
    );
    // Every case by trait beside the misses: recall per trait.
    assert_eq!(s.cases_by_trait["charger=lithium"], 10);
    assert_eq!(s.cases_by_trait["charger=lead_acid"], 2);
    assert_eq!(s.cases_by_trait["none"], 1);
    assert!(!s.misses_by_trait.contains_key("charger=lithium"));
    // Misses by what else ran in the flat: only the missed flats count.
    assert_eq!(
        s.misses_by_flat_trait,
        BTreeMap::from([("heating_ac".to_owned(), 1), ("none".to_owned(), 2)])
    );
    assert_eq!(s.median_ttd_h, Some(5.5));
    assert_eq!(s.p90_ttd_h, Some(9.0));
    assert_eq!(s.max_ttd_h, Some(10.0));
    assert!(e
        .table()
        .contains("misses of indoor_charging_signature by case trait: charger=lead_acid 2 of 2, none 1 of 1, start_hour=19 1 of 1"));
    assert!(e
        .table()
        .contains("misses of indoor_charging_signature by flat trait: heating_ac 1, none 2"));
}

/// A gap that ends before the next 10-minute sweep cannot be seen by a
/// swept rule: not a miss, but counted apart; a longer one is a miss.
#[test]
fn the_sweep_period_is_part_of_the_window_of_swept_rules() {
    let m = 60_000;
    let truth = GroundTruth {
        end_ms: 1_000 * m,
        cases: vec![
            // 180 min plus seconds of silence: due, then back 5 s later.
            case(kind::METER_GAP, "m1", 100 * m, Some(100 * m + 5_000)),
            case(kind::METER_GAP, "m2", 100 * m, Some(130 * m)),
            case(kind::METER_GAP, "m3", 100 * m, Some(100 * m + 5_000)),
        ],
        ..GroundTruth::default()
    };
    // m3's short gap was seen (a sweep fell inside it): found, on time.
    let alerts = vec![alert("meter_no_data", "m3", 100 * m + 3_000)];
    let e = evaluate(&truth, &alerts);
    let s = e.rules.iter().find(|r| r.rule == "meter_no_data").unwrap();
    assert_eq!((s.cases, s.detected, s.below_sweep), (2, 1, 1));
    assert_eq!(s.recall, Some(0.5));
    assert!(e
        .table()
        .contains("1 episode(s) of meter_no_data shorter than the sweep period"));
    // A rule that fires on readings has no sweep: its short episodes count.
    let truth = GroundTruth {
        cases: vec![case(
            kind::METER_STUCK,
            "m1",
            100 * m,
            Some(100 * m + 5_000),
        )],
        ..truth
    };
    let s = evaluate(&truth, &[]);
    let s = s.rules.iter().find(|r| r.rule == "meter_stuck").unwrap();
    assert_eq!((s.cases, s.below_sweep, s.recall), (1, 0, Some(0.0)));
}
