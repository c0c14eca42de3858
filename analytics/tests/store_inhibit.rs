//! The alert store's inhibition: a root-cause case (a pile offline, a
//! device-wide fault) holds back its symptoms' notices until it is resolved.
//! The behaviours that run on both backends are in store_backends_more.rs;
//! here, the config check and a pile offline raised through the pipeline.

#[path = "support/store_fixture.rs"]
mod fixture;
mod support;

use gridwatch_analytics::lifecycle::{AlertsConfig, Disposition, InhibitRule, InhibitScope};
use gridwatch_analytics::store::{Scope, Store};
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
