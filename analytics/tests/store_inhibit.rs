//! The alert store's inhibition: a root-cause case (a pile offline, a
//! device-wide fault) holds back its symptoms' notices until it is resolved.

#[path = "support/store_fixture.rs"]
mod fixture;
mod support;

use gridwatch_analytics::lifecycle::{AlertsConfig, Disposition, InhibitRule, InhibitScope};
use gridwatch_analytics::store::{AlertFilter, RecordedKind, Scope, Store};
use gridwatch_telemetry::{Alert, AlertState, Timestamp};

use fixture::*;

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
