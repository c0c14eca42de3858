//! The alert store surviving a restart of its SQLite file. The store's
//! behaviours (folding, cool-down, recurrence, escalation, re-check,
//! silences, precision, scoping, filters) run on both backends, SQLite and
//! PostgreSQL, in store_backends.rs; inhibition in store_backends_more.rs.

#[path = "support/store_fixture.rs"]
mod fixture;

use gridwatch_analytics::lifecycle::{Action, AlertsConfig};
use gridwatch_analytics::store::{RecordedKind, Scope, Store};
use gridwatch_telemetry::{AlertState, Timestamp};

use fixture::*;

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
