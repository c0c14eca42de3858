//! The alert store: folding, cool-down, recurrence, escalation, re-check,
//! silences, precision, scoping, and surviving a restart.

mod support;

use gridwatch_analytics::alerts::lifecycle::{
    AckWithin, Action, AlertsConfig, Disposition, InhibitRule, InhibitScope,
};
use gridwatch_analytics::store::{AlertFilter, NewSilence, RecordedKind, Scope, Store, StoreError};
use gridwatch_telemetry::{Alert, AlertState, Evidence, Severity, Timestamp};
use std::collections::BTreeMap;

const H: i64 = 3_600_000;

fn alert(rule: &str, entity: &str, cell: &str, ts: i64, peak: f64) -> Alert {
    let site = entity.split('/').next().unwrap_or("").to_owned();
    Alert {
        schema: 1,
        id: format!("{rule}:{entity}:{ts}"),
        rule: rule.into(),
        entity: entity.into(),
        cell: cell.into(),
        site,
        severity: Severity::Critical,
        state: AlertState::Open,
        ts: Timestamp(ts),
        title: format!("{rule} at {ts}"),
        summary: "numbers".into(),
        evidence: Evidence {
            values: BTreeMap::from([("peak".into(), peak)]),
            ..Evidence::default()
        },
    }
}

fn close(store: &Store, id: i64, at: i64, d: Disposition) {
    let action = Action::Close {
        disposition: d,
        note: "checked on site".into(),
        photos: vec!["photo-1.jpg".into()],
    };
    store
        .act(
            &Scope::All,
            id,
            "wang.li",
            &action,
            Timestamp(at),
            7 * 24 * H,
        )
        .unwrap();
}

#[test]
fn repeats_fold_into_one_case_with_count_last_seen_and_peak() {
    let s = Store::open_in_memory().unwrap();
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

#[test]
fn the_same_alert_delivered_twice_changes_nothing() {
    let s = Store::open_in_memory().unwrap();
    let c = AlertsConfig::default();
    let x = alert("r", "yard-a/gw/p#1", "c7", 1000, 7.0);
    s.record(&x, &c).unwrap();
    assert_eq!(s.record(&x, &c).unwrap().kind, RecordedKind::Duplicate);
    assert_eq!(s.get(&Scope::All, 1).unwrap().count, 1);
}

#[test]
fn a_return_within_the_cooldown_reopens_and_after_it_is_a_recurrence() {
    let s = Store::open_in_memory().unwrap();
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

#[test]
fn every_transition_is_in_the_audit_trail() {
    let s = Store::open_in_memory().unwrap();
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

#[test]
fn an_action_the_state_does_not_allow_is_refused() {
    let s = Store::open_in_memory().unwrap();
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

#[test]
fn unacknowledged_alerts_escalate_once_per_level_and_acknowledged_ones_do_not() {
    let s = Store::open_in_memory().unwrap();
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

#[test]
fn a_resolved_case_is_verified_closed_only_when_the_recheck_is_due() {
    let s = Store::open_in_memory().unwrap();
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

#[test]
fn a_silence_suppresses_notification_only_while_it_lasts() {
    let s = Store::open_in_memory().unwrap();
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

#[test]
fn precision_per_rule_and_site_comes_from_dispositions() {
    let s = Store::open_in_memory().unwrap();
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

#[test]
fn an_alert_outside_the_scope_does_not_exist_for_the_caller() {
    let s = Store::open_in_memory().unwrap();
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

#[test]
fn filters_narrow_the_list() {
    let s = Store::open_in_memory().unwrap();
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

#[test]
fn alerts_and_their_trail_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.db");
    let c = AlertsConfig::default();
    let id = {
        let s = Store::open_file(&path).unwrap();
        let id = s
            .record(&alert("r", "yard-a/gw/p#1", "c7", 0, 7.0), &c)
            .unwrap()
            .id;
        s.act(
            &Scope::All,
            id,
            "wang.li",
            &Action::Acknowledge,
            Timestamp(5),
            1,
        )
        .unwrap();
        id
    };
    let s = Store::open_file(&path).unwrap();
    let case = s.get(&Scope::All, id).unwrap();
    assert_eq!(case.state, AlertState::Acknowledged);
    assert_eq!(s.audit(&Scope::All, id).unwrap().len(), 2);
    // The reopened store folds into the same case rather than opening another.
    let r = s
        .record(&alert("r", "yard-a/gw/p#1", "c7", 100, 7.0), &c)
        .unwrap();
    assert_eq!((r.kind, r.id), (RecordedKind::Folded, id));
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

#[test]
fn a_root_cause_case_inhibits_its_symptoms_until_it_is_resolved() {
    let s = Store::open_in_memory().unwrap();
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

#[test]
fn a_device_wide_cause_covers_every_socket_of_that_device_only() {
    let s = Store::open_in_memory().unwrap();
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

#[test]
fn an_inhibit_rule_naming_its_own_source_is_refused() {
    let mut c = inhibiting("a", &["a"], InhibitScope::Site);
    let e = c.validate().unwrap_err();
    assert_eq!(e.path.to_string(), "inhibit[0].target_rules");
    c.inhibit[0].target_rules.clear();
    c.inhibit[0].source_rule = " ".into();
    assert_eq!(
        c.validate().unwrap_err().path.to_string(),
        "inhibit[0].source_rule"
    );
}

#[test]
fn a_pile_its_gateway_reports_offline_inhibits_its_socket_alerts() {
    use gridwatch_analytics::config::AnalyticsConfig;
    use gridwatch_analytics::pipeline::Pipeline;
    use gridwatch_telemetry::{Event, EventKind};

    let s = Store::open_in_memory().unwrap();
    let c = inhibiting(
        "pile_offline",
        &["socket_overcurrent"],
        InhibitScope::Device,
    );
    let mut p = Pipeline::new(&AnalyticsConfig::default());
    let socket = |sec: i64, amps: f64| support::socket_reading(sec * 1000, sec as u64, amps);
    let availability = |sec: i64, kind: EventKind| Event {
        schema: 1,
        ts: Timestamp(sec * 1000),
        gateway: "gw-1".into(),
        site: "yard-a".into(),
        device: "pile-1".into(),
        seq: sec as u64,
        kind,
    };
    assert!(p.process(&socket(0, 2.0)).is_empty());
    let offline = EventKind::DeviceOffline {
        reason: "no answer after 3 tries".into(),
    };
    let raised = p.process_event(&availability(5, offline.clone()));
    assert_eq!(raised.len(), 1);
    assert_eq!(
        (raised[0].rule.as_str(), raised[0].entity.as_str()),
        ("pile_offline", "yard-a/gw-1/pile-1")
    );
    assert!(
        p.process_event(&availability(6, offline)).is_empty(),
        "once"
    );
    let cause = s.record(&raised[0], &c).unwrap();
    assert!(cause.notify());

    // A last overcurrent burst reaches analytics late: recorded, nobody paged.
    let symptoms: Vec<Alert> = (1..=12)
        .flat_map(|sec| p.process(&socket(sec, 7.0)))
        .collect();
    assert_eq!(symptoms.len(), 1);
    assert_eq!(symptoms[0].entity, "yard-a/gw-1/pile-1#3");
    let symptom = s.record(&symptoms[0], &c).unwrap();
    assert_eq!(symptom.inhibited_by, Some(cause.id));
    assert!(!symptom.notify());

    // Back online ends the condition but not the case; closing it lifts the mark.
    assert!(p
        .process_event(&availability(20, EventKind::DeviceOnline))
        .is_empty());
    assert_eq!(
        s.get(&Scope::All, cause.id).unwrap().state,
        AlertState::Open
    );
    close(&s, cause.id, 30_000, Disposition::PileFault);
    assert_eq!(s.get(&Scope::All, symptom.id).unwrap().inhibited_by, None);
}
