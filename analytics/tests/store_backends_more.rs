//! More store behaviours on both backends (SQLite and PostgreSQL, each as
//! `name::sqlite` and `name::postgres`): inhibition, photos, imported
//! readings, the assessment report, and recording made idempotent for
//! replays from a checkpoint.

#[path = "support/store_fixture.rs"]
mod fixture;
#[path = "support/backends.rs"]
#[macro_use]
mod backends;

use gridwatch_analytics::lifecycle::{
    Action, AlertsConfig, Disposition, InhibitRule, InhibitScope,
};
use gridwatch_analytics::store::imported::{ImportedRow, Put, ValueKind};
use gridwatch_analytics::store::{
    AlertFilter, RecordedKind, ReportPeriod, Scope, Store, StoreError,
};
use gridwatch_telemetry::{AlertState, Timestamp};

use fixture::*;

on_both_backends! {
    a_root_cause_case_inhibits_its_symptoms_until_it_is_resolved,
    a_device_wide_cause_covers_every_socket_of_that_device_only,
    a_replay_of_alerts_already_recorded_changes_nothing,
    photos_are_kept_whole_and_scoped,
    imported_readings_insert_then_stay_then_correct,
    the_report_counts_found_acknowledged_and_closed,
    a_silence_expires_and_an_unknown_one_is_not_found,
}

fn inhibiting(source: &str, targets: &[&str], equal: InhibitScope) -> AlertsConfig {
    AlertsConfig {
        inhibit: vec![InhibitRule {
            source_rule: source.into(),
            target_rules: targets.iter().map(|t| t.to_string()).collect(),
            equal,
        }],
        ..AlertsConfig::default()
    }
}

fn a_root_cause_case_inhibits_its_symptoms_until_it_is_resolved(s: Store) {
    let c = inhibiting(
        "socket_overcurrent",
        &["socket_overpower"],
        InhibitScope::Entity,
    );
    let cause = s
        .record(
            &alert("socket_overcurrent", "yard-a/gw/p#2", "c7", 1000, 7.0),
            &c,
        )
        .unwrap();
    assert!(cause.notify() && cause.inhibited_by.is_none());

    // The symptom on the same socket: recorded and listed, but nobody is told.
    let symptom = s
        .record(
            &alert("socket_overpower", "yard-a/gw/p#2", "c7", 1000, 1530.0),
            &c,
        )
        .unwrap();
    assert_eq!(symptom.kind, RecordedKind::Raised);
    assert_eq!(symptom.inhibited_by, Some(cause.id));
    assert!(!symptom.notify(), "an inhibited case notifies nobody");
    let listed = s.list(&Scope::All, &AlertFilter::default()).unwrap();
    let row = listed.iter().find(|a| a.id == symptom.id).unwrap();
    assert_eq!(row.inhibited_by, Some(cause.id), "visible in the list");
    let trail = s.audit(&Scope::All, symptom.id).unwrap();
    let mark = trail
        .iter()
        .find(|e| e.action == "inhibit")
        .expect("audited");
    assert!(mark
        .note
        .as_deref()
        .unwrap()
        .contains(&format!("case {}", cause.id)));

    // Another socket, and a rule the inhibition does not name, are not covered.
    let other = s
        .record(
            &alert("socket_overpower", "yard-a/gw/p#3", "c7", 2000, 1400.0),
            &c,
        )
        .unwrap();
    assert!(other.inhibited_by.is_none() && other.notify());
    let hot = s
        .record(
            &alert("socket_overtemperature", "yard-a/gw/p#2", "c7", 2000, 70.0),
            &c,
        )
        .unwrap();
    assert!(hot.inhibited_by.is_none());

    // Resolving the cause lifts the mark, in the trail under who resolved it.
    close(&s, cause.id, 3000, Disposition::PileFault);
    let lifted = s.get(&Scope::All, symptom.id).unwrap();
    assert_eq!(lifted.inhibited_by, None);
    assert_eq!(
        lifted.state,
        AlertState::Open,
        "the symptom itself stays to be handled"
    );
    let trail = s.audit(&Scope::All, symptom.id).unwrap();
    let lift = trail.last().unwrap();
    assert_eq!(
        (lift.action.as_str(), lift.actor.as_str()),
        ("uninhibit", "wang.li")
    );
    // Its next repeat is no longer inhibited either.
    let again = s
        .record(
            &alert("socket_overpower", "yard-a/gw/p#2", "c7", 4000, 1530.0),
            &c,
        )
        .unwrap();
    assert_eq!(again.kind, RecordedKind::Folded);
    assert_eq!(again.inhibited_by, None);
}

fn a_device_wide_cause_covers_every_socket_of_that_device_only(s: Store) {
    let c = inhibiting("pile_offline", &[], InhibitScope::Device);
    let cause = s
        .record(
            &alert("pile_offline", "yard-a/gw/pile-1", "c7", 1000, 1.0),
            &c,
        )
        .unwrap();
    for socket in ["yard-a/gw/pile-1#1", "yard-a/gw/pile-1#12"] {
        let r = s
            .record(&alert("socket_data_gap", socket, "c7", 2000, 1.0), &c)
            .unwrap();
        assert_eq!(r.inhibited_by, Some(cause.id), "{socket}");
    }
    // pile-10 shares a prefix with pile-1 but is another device.
    let r = s
        .record(
            &alert("socket_data_gap", "yard-a/gw/pile-10#1", "c7", 2000, 1.0),
            &c,
        )
        .unwrap();
    assert_eq!(r.inhibited_by, None);
}

/// A worker restored from a checkpoint replays alerts the store already
/// has, older ones as well as the latest of each case: none of them folds
/// again, opens a case or notifies, and the episodes are the same.
fn a_replay_of_alerts_already_recorded_changes_nothing(s: Store) {
    let c = AlertsConfig::default();
    let run: Vec<_> = [0, 1000, 2000]
        .iter()
        .flat_map(|&t| ["yard-a/gw/p#1", "yard-a/gw/p#2"].map(|e| alert("r", e, "c7", t, t as f64)))
        .collect();
    let first: Vec<_> = run.iter().map(|a| s.record(a, &c).unwrap()).collect();
    let before = s.episodes().unwrap();
    let cases_before = s.list(&Scope::All, &AlertFilter::default()).unwrap();
    for (a, r) in run.iter().zip(&first) {
        let again = s.record(a, &c).unwrap();
        assert_eq!((again.kind, again.id), (RecordedKind::Duplicate, r.id));
        assert!(!again.notify());
    }
    assert_eq!(s.episodes().unwrap(), before);
    assert_eq!(
        s.list(&Scope::All, &AlertFilter::default()).unwrap(),
        cases_before
    );
    assert_eq!(before.len(), 6);
    assert!(
        before.iter().all(|e| e.case_opened_by.ends_with(":0")),
        "{before:?}"
    );
    assert_eq!(s.case_of(&run[4].id).unwrap(), Some(first[0].id));
    assert_eq!(s.case_of("never-recorded").unwrap(), None);
}

fn photos_are_kept_whole_and_scoped(s: Store) {
    let id = s
        .record(
            &alert("r", "yard-a/gw/p#1", "c7", 0, 1.0),
            &AlertsConfig::default(),
        )
        .unwrap()
        .id;
    let jpeg: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let p = s
        .add_photo(&Scope::All, id, "wang", "image/jpeg", &jpeg, Timestamp(5))
        .unwrap();
    let list = s.photos(&Scope::All, id).unwrap();
    assert_eq!((list.len(), list[0].bytes), (1, jpeg.len() as u64));
    assert_eq!(s.photo(&Scope::All, id, p).unwrap().bytes, jpeg);
    let elsewhere = Scope::Cells(vec!["c8".into()]);
    assert!(matches!(
        s.photo(&elsewhere, id, p),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.photo(&Scope::All, id, p + 1),
        Err(StoreError::PhotoNotFound(_))
    ));
    s.note(id, Timestamp(6), "gw-1", "socket_off_ack", "off")
        .unwrap();
    assert!(matches!(
        s.note(id + 100, Timestamp(6), "gw-1", "a", "n"),
        Err(StoreError::NotFound(_))
    ));
    let trail = s.audit(&Scope::All, id).unwrap();
    let actions: Vec<_> = trail.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["raise", "photo", "socket_off_ack"]);
}

fn imported_readings_insert_then_stay_then_correct(s: Store) {
    let row = |ts_ms, value, quality_bad| ImportedRow {
        ts_ms,
        meter: "m1",
        flat: "s/b/1",
        value_kind: ValueKind::Register,
        value,
        quality_bad,
    };
    let puts = s
        .import_into("utility", "electricity", |w| {
            Ok::<_, StoreError>([
                w.put(&row(1000, 1.5, false))?,
                w.put(&row(2000, 2.5, true))?,
                w.put(&row(1000, 1.5, false))?,
                w.put(&row(2000, 2.75, true))?,
                w.put(&row(2000, 2.75, false))?,
            ])
        })
        .unwrap();
    use Put::*;
    assert_eq!(puts, [Inserted, Inserted, Unchanged, Corrected, Corrected]);
    let rows = s.imported_readings("utility").unwrap();
    assert_eq!(
        rows,
        [
            (1000, "m1".into(), "s/b/1".into(), 1.5, false, 0),
            (2000, "m1".into(), "s/b/1".into(), 2.75, false, 2),
        ]
    );
    let e = s
        .import_into("utility", "water", |w| w.put(&row(3000, 1.0, false)))
        .unwrap_err();
    assert!(e.to_string().contains("imported as electricity"), "{e}");
    let failed: Result<(), StoreError> = s.import_into("utility", "electricity", |w| {
        w.put(&row(4000, 9.0, false))?;
        Err(StoreError::NotFound(0))
    });
    assert!(failed.is_err());
    assert_eq!(
        s.imported_readings("utility").unwrap().len(),
        2,
        "rolled back"
    );
}

fn the_report_counts_found_acknowledged_and_closed(s: Store) {
    let c = AlertsConfig::default();
    let a = s
        .record(&alert("r", "yard-a/gw/p#1", "c7", 0, 1.0), &c)
        .unwrap()
        .id;
    let b = s
        .record(&alert("r", "yard-a/gw/p#2", "c7", 0, 1.0), &c)
        .unwrap()
        .id;
    s.record(&alert("q", "yard-b/gw/p#1", "c8", 0, 1.0), &c)
        .unwrap();
    s.act(
        &Scope::All,
        a,
        "wang",
        &Action::Acknowledge,
        Timestamp(60_000),
        1,
    )
    .unwrap();
    close(&s, a, 2 * H, Disposition::Rectified);
    close(&s, b, 3 * H, Disposition::FalsePositive);
    let period = ReportPeriod {
        from: Timestamp(0),
        to: Timestamp(H),
        now: Timestamp(30 * 24 * H),
    };
    let rows = s
        .report(&Scope::Cells(vec!["c7".into()]), &period, &c)
        .unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!((r.cell.as_str(), r.rule.as_str(), r.found), ("c7", "r", 2));
    assert_eq!((r.acknowledged_in_time, r.median_ack_s), (1, Some(60.0)));
    assert_eq!(
        (r.false_alarms, r.judged, r.false_alarm_rate),
        (1, 2, Some(0.5))
    );
    assert_eq!(r.median_close_s, Some(2.5 * 3600.0));
    let all = s.report(&Scope::All, &period, &c).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].overdue, 1, "c8's case was never closed");
}

fn a_silence_expires_and_an_unknown_one_is_not_found(s: Store) {
    let new = gridwatch_analytics::store::NewSilence {
        cell: None,
        site: Some("yard-a".into()),
        rule: None,
        entity: None,
        starts: Some(Timestamp(100)),
        ends: Timestamp(H),
        reason: "works".into(),
    };
    let made = s.add_silence(&new, "li", Timestamp(50)).unwrap();
    assert_eq!(
        (made.starts, made.created_by.as_str()),
        (Timestamp(100), "li")
    );
    let yard_b = Scope::Sites(vec!["yard-b".into()]);
    assert!(matches!(
        s.expire_silence(&yard_b, made.id, Timestamp(200)),
        Err(StoreError::SilenceNotFound(_))
    ));
    s.expire_silence(
        &Scope::Sites(vec!["yard-a".into()]),
        made.id,
        Timestamp(200),
    )
    .unwrap();
    let left = s.silences(&Scope::All, Timestamp(0)).unwrap();
    assert_eq!(left[0].ends, Timestamp(200));
    assert!(s.silences(&Scope::All, Timestamp(200)).unwrap().is_empty());
    let covered = s
        .record(
            &alert("r", "yard-a/gw/p#1", "c7", 150, 1.0),
            &AlertsConfig::default(),
        )
        .unwrap();
    assert_eq!(covered.silenced_by, Some(made.id));
    assert_eq!(
        s.get(&Scope::All, covered.id).unwrap().state,
        AlertState::Open
    );
}
