//! The behaviours of store_lifecycle.rs (folding, cool-down, recurrence,
//! escalation, re-check, silences, precision, scoping, filters) on both
//! backends, SQLite and PostgreSQL: each behaviour below runs as
//! `name::sqlite` and `name::postgres`.

#[path = "support/store_fixture.rs"]
mod fixture;
#[path = "support/backends.rs"]
#[macro_use]
mod backends;

use gridwatch_analytics::lifecycle::{AckWithin, Action, AlertsConfig, Disposition};
use gridwatch_analytics::store::{AlertFilter, NewSilence, RecordedKind, Scope, Store, StoreError};
use gridwatch_telemetry::{AlertState, Timestamp};

use fixture::*;

on_both_backends! {
    repeats_fold_into_one_case_with_count_last_seen_and_peak,
    the_same_alert_delivered_twice_changes_nothing,
    a_return_within_the_cooldown_reopens_and_after_it_is_a_recurrence,
    every_transition_is_in_the_audit_trail,
    an_action_the_state_does_not_allow_is_refused,
    unacknowledged_alerts_escalate_once_per_level_and_acknowledged_ones_do_not,
    a_resolved_case_is_verified_closed_only_when_the_recheck_is_due,
    a_silence_suppresses_notification_only_while_it_lasts,
    precision_per_rule_and_site_comes_from_dispositions,
    an_alert_outside_the_scope_does_not_exist_for_the_caller,
    filters_narrow_the_list,
}

fn repeats_fold_into_one_case_with_count_last_seen_and_peak(s: Store) {
    let c = AlertsConfig::default();
    let a = s
        .record(&alert("r", "yard-a/gw/p#1", "c7", 1000, 7.0), &c)
        .unwrap();
    let b = s
        .record(&alert("r", "yard-a/gw/p#1", "c7", 5000, 9.0), &c)
        .unwrap();
    let d = s
        .record(&alert("r", "yard-a/gw/p#1", "c7", 9000, 8.0), &c)
        .unwrap();
    assert_eq!(a.kind, RecordedKind::Raised);
    assert_eq!((b.kind, b.id), (RecordedKind::Folded, a.id));
    assert_eq!(d.kind, RecordedKind::Folded);
    assert!(a.notify() && !b.notify());
    let case = s.get(&Scope::All, a.id).unwrap();
    assert_eq!(case.count, 3);
    assert_eq!(case.last_seen, Timestamp(9000));
    assert_eq!(case.first_seen, Timestamp(1000));
    assert_eq!(case.peak, Some(9.0));
    assert_eq!(
        case.snapshot.ts,
        Timestamp(1000),
        "the snapshot stays frozen"
    );
    assert_eq!(case.evidence.values["peak"], 8.0, "evidence is the latest");
}

fn the_same_alert_delivered_twice_changes_nothing(s: Store) {
    let c = AlertsConfig::default();
    let x = alert("r", "yard-a/gw/p#1", "c7", 1000, 7.0);
    s.record(&x, &c).unwrap();
    assert_eq!(s.record(&x, &c).unwrap().kind, RecordedKind::Duplicate);
    assert_eq!(s.get(&Scope::All, 1).unwrap().count, 1);
}

fn a_return_within_the_cooldown_reopens_and_after_it_is_a_recurrence(s: Store) {
    let c = AlertsConfig::default(); // 24 h
    let first = s
        .record(&alert("r", "yard-a/gw/p#1", "c7", 0, 7.0), &c)
        .unwrap()
        .id;
    close(&s, first, H, Disposition::Rectified);
    assert_eq!(
        s.get(&Scope::All, first).unwrap().state,
        AlertState::Resolved
    );

    let back = s
        .record(&alert("r", "yard-a/gw/p#1", "c7", 5 * H, 7.0), &c)
        .unwrap();
    assert_eq!((back.kind, back.id), (RecordedKind::Reopened, first));
    let case = s.get(&Scope::All, first).unwrap();
    assert_eq!((case.state, case.reopened), (AlertState::Open, 1));
    assert_eq!(case.opened_at, Timestamp(5 * H));

    close(&s, first, 6 * H, Disposition::Rectified);
    let later = s
        .record(&alert("r", "yard-a/gw/p#1", "c7", 40 * H, 7.0), &c)
        .unwrap();
    assert_eq!(later.kind, RecordedKind::Recurrence { of: first });
    assert_ne!(later.id, first);
    assert_eq!(
        s.get(&Scope::All, later.id).unwrap().recurrence_of,
        Some(first)
    );
}

fn every_transition_is_in_the_audit_trail(s: Store) {
    let c = AlertsConfig::default();
    let id = s
        .record(&alert("r", "yard-a/gw/p#1", "c7", 0, 7.0), &c)
        .unwrap()
        .id;
    s.record(&alert("r", "yard-a/gw/p#1", "c7", 10, 7.0), &c)
        .unwrap();
    s.act(
        &Scope::All,
        id,
        "wang.li",
        &Action::Acknowledge,
        Timestamp(20),
        1,
    )
    .unwrap();
    s.act(
        &Scope::All,
        id,
        "wang.li",
        &Action::Comment("on my way".into()),
        Timestamp(30),
        1,
    )
    .unwrap();
    s.act(&Scope::All, id, "wang.li", &Action::Start, Timestamp(40), 1)
        .unwrap();
    close(&s, id, 50, Disposition::PileFault);
    let trail: Vec<(String, String, Option<String>)> = s
        .audit(&Scope::All, id)
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.action, e.to_state))
        .collect();
    let expect = [
        ("pipeline", "raise", Some("open")),
        ("pipeline", "fold", None),
        ("wang.li", "acknowledge", Some("acknowledged")),
        ("wang.li", "comment", None),
        ("wang.li", "start", Some("in_progress")),
        ("wang.li", "close", Some("resolved")),
    ];
    let expect: Vec<_> = expect
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.map(str::to_owned)))
        .collect();
    assert_eq!(trail, expect);
    let case = s.get(&Scope::All, id).unwrap();
    assert_eq!(case.disposition, Some(Disposition::PileFault));
    assert_eq!(case.photos, ["photo-1.jpg"]);
    assert_eq!(case.assignee.as_deref(), Some("wang.li"));
}

fn an_action_the_state_does_not_allow_is_refused(s: Store) {
    let id = s
        .record(
            &alert("r", "yard-a/gw/p#1", "c7", 0, 7.0),
            &AlertsConfig::default(),
        )
        .unwrap()
        .id;
    close(&s, id, 1, Disposition::Rectified);
    let e = s
        .act(&Scope::All, id, "x", &Action::Acknowledge, Timestamp(2), 1)
        .unwrap_err();
    assert!(matches!(e, StoreError::Transition(_)), "{e}");
}

fn unacknowledged_alerts_escalate_once_per_level_and_acknowledged_ones_do_not(s: Store) {
    let c = AlertsConfig::default();
    let ack = AckWithin::default(); // critical: 10 min
    let a = s
        .record(&alert("r", "yard-a/gw/p#1", "c7", 0, 7.0), &c)
        .unwrap()
        .id;
    let b = s
        .record(&alert("r", "yard-a/gw/p#2", "c7", 0, 7.0), &c)
        .unwrap()
        .id;
    s.act(
        &Scope::All,
        b,
        "wang.li",
        &Action::Acknowledge,
        Timestamp(60_000),
        1,
    )
    .unwrap();
    assert!(s
        .escalate_due(Timestamp(9 * 60_000), &ack)
        .unwrap()
        .is_empty());
    let first = s.escalate_due(Timestamp(10 * 60_000), &ack).unwrap();
    assert_eq!(
        first
            .iter()
            .map(|c| (c.id, c.escalation_level))
            .collect::<Vec<_>>(),
        [(a, 1)]
    );
    assert!(s
        .escalate_due(Timestamp(11 * 60_000), &ack)
        .unwrap()
        .is_empty());
    let second = s.escalate_due(Timestamp(20 * 60_000), &ack).unwrap();
    assert_eq!(second[0].escalation_level, 2);
    assert!(s
        .escalate_due(Timestamp(90 * 60_000), &ack)
        .unwrap()
        .is_empty());
}

fn a_resolved_case_is_verified_closed_only_when_the_recheck_is_due(s: Store) {
    let id = s
        .record(
            &alert("r", "yard-a/gw/p#1", "c7", 0, 7.0),
            &AlertsConfig::default(),
        )
        .unwrap()
        .id;
    close(&s, id, H, Disposition::Rectified);
    assert!(s.verify_due(Timestamp(7 * 24 * H)).unwrap().is_empty());
    assert_eq!(s.verify_due(Timestamp(8 * 24 * H)).unwrap(), [id]);
    assert_eq!(s.get(&Scope::All, id).unwrap().state, AlertState::Closed);
}

fn a_silence_suppresses_notification_only_while_it_lasts(s: Store) {
    let c = AlertsConfig::default();
    let silence = NewSilence {
        cell: Some("c7".into()),
        site: None,
        rule: None,
        entity: Some("yard-a/gw/p#1".into()),
        starts: None,
        ends: Timestamp(H),
        reason: "socket under repair".into(),
    };
    let made = s.add_silence(&silence, "wang.li", Timestamp(0)).unwrap();
    let r = s
        .record(&alert("r", "yard-a/gw/p#1", "c7", 1000, 7.0), &c)
        .unwrap();
    assert_eq!(r.silenced_by, Some(made.id));
    assert!(!r.notify());
    let other = s
        .record(&alert("r", "yard-a/gw/p#2", "c7", 1000, 7.0), &c)
        .unwrap();
    assert!(other.notify());
    assert_eq!(
        s.silences(&Scope::Cells(vec!["c8".into()]), Timestamp(0))
            .unwrap(),
        []
    );
    assert_eq!(
        s.silences(&Scope::Cells(vec!["c7".into()]), Timestamp(0))
            .unwrap()
            .len(),
        1
    );
    s.expire_silence(&Scope::All, made.id, Timestamp(2000))
        .unwrap();
    let later = s
        .record(&alert("r", "yard-a/gw/p#3", "c7", 3000, 7.0), &c)
        .unwrap();
    assert!(later.silenced_by.is_none());
}

fn precision_per_rule_and_site_comes_from_dispositions(s: Store) {
    let c = AlertsConfig::default();
    let outcomes = [
        ("yard-a/gw/p#1", Disposition::Rectified),
        ("yard-a/gw/p#2", Disposition::FalsePositive),
        ("yard-b/gw/p#1", Disposition::PileFault),
        ("yard-b/gw/p#2", Disposition::NoAccess),
    ];
    for (entity, d) in outcomes {
        let id = s.record(&alert("r", entity, "c7", 0, 1.0), &c).unwrap().id;
        close(&s, id, 1, d);
    }
    let p = s.precision(&Scope::All).unwrap();
    let overall = p.iter().find(|p| p.site.is_none()).unwrap();
    assert_eq!(
        (
            overall.true_positives,
            overall.false_positives,
            overall.no_access
        ),
        (2, 1, 1)
    );
    assert!((overall.precision.unwrap() - 2.0 / 3.0).abs() < 1e-9);
    let a = p
        .iter()
        .find(|p| p.site.as_deref() == Some("yard-a"))
        .unwrap();
    assert_eq!(a.precision, Some(0.5));
    let only_b = s.precision(&Scope::Sites(vec!["yard-b".into()])).unwrap();
    assert_eq!(only_b[0].precision, Some(1.0));
}

fn an_alert_outside_the_scope_does_not_exist_for_the_caller(s: Store) {
    let c = AlertsConfig::default();
    let id = s
        .record(&alert("r", "yard-a/gw/p#1", "c7", 0, 7.0), &c)
        .unwrap()
        .id;
    let other = Scope::Cells(vec!["c8".into()]);
    assert!(matches!(s.get(&other, id), Err(StoreError::NotFound(_))));
    assert!(matches!(s.audit(&other, id), Err(StoreError::NotFound(_))));
    assert!(matches!(
        s.act(&other, id, "x", &Action::Acknowledge, Timestamp(1), 1),
        Err(StoreError::NotFound(_))
    ));
    assert!(s.list(&other, &AlertFilter::default()).unwrap().is_empty());
    assert_eq!(s.get(&Scope::All, id).unwrap().state, AlertState::Open);
    assert_eq!(
        s.list(
            &Scope::Sites(vec!["yard-a".into()]),
            &AlertFilter::default()
        )
        .unwrap()
        .len(),
        1
    );
}

fn filters_narrow_the_list(s: Store) {
    let c = AlertsConfig::default();
    s.record(&alert("overcurrent", "yard-a/gw/p#1", "c7", 0, 7.0), &c)
        .unwrap();
    let id = s
        .record(&alert("overpower", "yard-a/gw/p#2", "c7", 0, 7.0), &c)
        .unwrap()
        .id;
    close(&s, id, 1, Disposition::Rectified);
    let f = |state: Option<&str>, rule: Option<&str>| AlertFilter {
        state: state.map(Into::into),
        rule: rule.map(Into::into),
        ..AlertFilter::default()
    };
    assert_eq!(
        s.list(&Scope::All, &f(Some("active"), None)).unwrap().len(),
        1
    );
    assert_eq!(
        s.list(&Scope::All, &f(Some("resolved"), None)).unwrap()[0].id,
        id
    );
    assert_eq!(
        s.list(&Scope::All, &f(None, Some("overcurrent")))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s.list(&Scope::All, &f(None, None)).unwrap().len(), 2);
}
