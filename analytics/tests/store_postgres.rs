//! Several processes on one PostgreSQL store, as several analytics workers
//! and API instances of one city are: the same alert recorded by two of
//! them is one case; each escalation and re-check is claimed by exactly one
//! sweep; two people acting on one case at once act one after the other.
//! Each "instance" is a `Store` handle with its own connection, racing from
//! its own thread. Also: the store works inside a tokio runtime, reads its
//! password from a file, migrates once, and reconnects after losing its
//! connection.

#[path = "support/store_fixture.rs"]
mod fixture;
#[path = "support/backends.rs"]
#[macro_use]
mod backends;

use gridwatch_analytics::lifecycle::{AckWithin, Action, AlertsConfig, Disposition};
use gridwatch_analytics::store::{
    migrations, AlertFilter, Backend, RecordedKind, Scope, Store, StoreConfig, StoreError,
};
use gridwatch_telemetry::Timestamp;
use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use fixture::*;

/// `n` handles on the database of `url`, each with its own connection.
fn instances(url: &str, n: usize) -> Vec<Store> {
    (0..n).map(|_| Store::open_postgres(url).unwrap()).collect()
}

/// Runs `f(i, item)` for each item in its own thread, all released at
/// once; the results in item order.
fn race<S: Send + 'static, T: Send + 'static>(
    items: Vec<S>,
    f: impl Fn(usize, S) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let start = Arc::new(Barrier::new(items.len()));
    let f = Arc::new(f);
    let threads: Vec<_> = items
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let (start, f) = (Arc::clone(&start), Arc::clone(&f));
            std::thread::spawn(move || {
                start.wait();
                f(i, s)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn two_workers_recording_the_same_alerts_open_each_case_once() {
    let Some(pg) = backends::postgres_store() else {
        return;
    };
    let stores = instances(&pg.server.url(), 2);
    // 10 sockets, 5 alerts each (a raise and 4 folds), both workers
    // recording all 50 in the same order, as after a partition handover.
    let alerts: Vec<_> = (0..5)
        .flat_map(|k| {
            (0..10).map(move |e| alert("r", &format!("yard-a/gw/p#{e}"), "c7", k * 1000, 1.0))
        })
        .collect();
    let results = race(stores, move |_, s| {
        let c = AlertsConfig::default();
        alerts
            .iter()
            .map(|a| s.record(a, &c).unwrap())
            .collect::<Vec<_>>()
    });
    let raised: Vec<i64> = results
        .iter()
        .flatten()
        .filter(|r| r.kind == RecordedKind::Raised)
        .map(|r| r.id)
        .collect();
    assert_eq!(
        raised.len(),
        10,
        "one raise (one notice) per socket: {raised:?}"
    );
    let notified = results.iter().flatten().filter(|r| r.notify()).count();
    assert_eq!(notified, 10);
    let dups = results
        .iter()
        .flatten()
        .filter(|r| r.kind == RecordedKind::Duplicate)
        .count();
    assert_eq!(dups, 50, "every alert recorded twice is a duplicate once");
    let cases = pg.store.list(&Scope::All, &AlertFilter::default()).unwrap();
    assert_eq!(cases.len(), 10);
    assert!(cases.iter().all(|c| c.count == 5), "{cases:?}");
    // Both workers got the same case id for the same alert.
    for (a, b) in results[0].iter().zip(&results[1]) {
        assert_eq!(a.id, b.id);
    }
    assert_eq!(pg.store.episodes().unwrap().len(), 50);
}

#[test]
fn each_escalation_and_recheck_is_claimed_by_one_instance() {
    let Some(pg) = backends::postgres_store() else {
        return;
    };
    let c = AlertsConfig::default();
    let ids: BTreeSet<i64> = (0..20)
        .map(|e| {
            pg.store
                .record(&alert("r", &format!("yard-a/gw/p#{e}"), "c7", 0, 1.0), &c)
                .unwrap()
                .id
        })
        .collect();
    let stores = instances(&pg.server.url(), 3);
    for (minutes, level) in [(10, 1), (20, 2)] {
        let got = race(stores.clone(), move |_, s| {
            s.escalate_due(Timestamp(minutes * 60_000), &AckWithin::default())
                .unwrap()
        });
        let mut all: Vec<i64> = got.iter().flatten().map(|c| c.id).collect();
        assert!(got.iter().flatten().all(|c| c.escalation_level == level));
        all.sort();
        assert_eq!(
            all,
            ids.iter().copied().collect::<Vec<_>>(),
            "level {level}: each case escalated (and notified) by exactly one instance"
        );
    }
    for id in &ids {
        close(&pg.store, *id, H, Disposition::Rectified);
    }
    let got = race(stores, |_, s| s.verify_due(Timestamp(9 * 24 * H)).unwrap());
    let mut all: Vec<i64> = got.into_iter().flatten().collect();
    all.sort();
    assert_eq!(all, ids.iter().copied().collect::<Vec<_>>());
    let trail = pg.store.audit(&Scope::All, *ids.first().unwrap()).unwrap();
    let escalations = trail.iter().filter(|e| e.action == "escalate").count();
    let verifies = trail.iter().filter(|e| e.action == "verify").count();
    assert_eq!((escalations, verifies), (2, 1), "{trail:?}");
}

#[test]
fn two_people_acknowledging_one_case_at_once_act_one_after_the_other() {
    let Some(pg) = backends::postgres_store() else {
        return;
    };
    let id = pg
        .store
        .record(
            &alert("r", "yard-a/gw/p#1", "c7", 0, 1.0),
            &AlertsConfig::default(),
        )
        .unwrap()
        .id;
    let stores = instances(&pg.server.url(), 2);
    let got = race(stores, move |i, s| {
        s.act(
            &Scope::All,
            id,
            &format!("person-{i}"),
            &Action::Acknowledge,
            Timestamp(5),
            1,
        )
    });
    let ok = got.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{got:?}");
    assert!(got
        .iter()
        .any(|r| matches!(r, Err(StoreError::Transition(_)))));
    let acks = pg
        .store
        .audit(&Scope::All, id)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "acknowledge")
        .count();
    assert_eq!(acks, 1);
}

#[tokio::test]
async fn the_store_answers_inside_a_current_thread_runtime() {
    let Some(pg) = backends::postgres_store() else {
        return;
    };
    // The service calls the store from its tasks; a client that ran its
    // own runtime on this thread would panic here.
    let s = pg.store.clone();
    let task = tokio::spawn(async move {
        let r = s
            .record(
                &alert("r", "yard-a/gw/p#1", "c7", 0, 1.0),
                &AlertsConfig::default(),
            )
            .unwrap();
        s.get(&Scope::All, r.id).unwrap().count
    });
    assert_eq!(task.await.unwrap(), 1);
    assert_eq!(pg.store.backend(), Backend::Postgres);
}

#[test]
fn the_config_reads_the_password_from_its_file_and_never_shows_it() {
    let Some(pg) = backends::postgres_store() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store-password");
    std::fs::write(&file, format!("{}\n", pg.server.password())).unwrap();
    let config = StoreConfig {
        url: Some(pg.server.url_without_password()),
        password_file: Some(file),
        ..StoreConfig::default()
    };
    let s = Store::open(&config).unwrap();
    assert_eq!(s.schema_version().unwrap(), migrations::POSTGRES.len());
    let without = StoreConfig {
        password_file: None,
        ..config.clone()
    };
    let e = Store::open(&without).unwrap_err().to_string();
    assert!(e.contains("password"), "{e}");
    assert!(
        e.contains(&format!("127.0.0.1:{}", pg.server.port())),
        "{e}"
    );
    let inline = StoreConfig {
        url: Some(pg.server.url()),
        ..StoreConfig::default()
    };
    let e = Store::open(&inline).unwrap_err().to_string();
    assert!(e.contains("password_file"), "{e}");
    assert!(
        !e.contains(pg.server.password()),
        "the password leaked: {e}"
    );
}

#[test]
fn instances_starting_together_migrate_once_and_cases_survive_a_restart() {
    let Some(server) = gridwatch_testkit::Postgres::start() else {
        return;
    };
    let url = server.url();
    let opened = race(vec![url; 3], |_, url| {
        Store::open_postgres(&url).and_then(|s| s.schema_version())
    });
    for o in opened {
        assert_eq!(o.unwrap(), migrations::POSTGRES.len());
    }
    let c = AlertsConfig::default();
    let id = {
        let s = Store::open_postgres(&server.url()).unwrap();
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
    let s = Store::open_postgres(&server.url()).unwrap();
    assert_eq!(s.audit(&Scope::All, id).unwrap().len(), 2);
    let r = s
        .record(&alert("r", "yard-a/gw/p#1", "c7", 100, 7.0), &c)
        .unwrap();
    assert_eq!((r.kind, r.id), (RecordedKind::Folded, id));
}

#[test]
fn a_lost_connection_is_made_again_on_a_later_call() {
    let Some(pg) = backends::postgres_store() else {
        return;
    };
    let c = AlertsConfig::default();
    pg.store
        .record(&alert("r", "yard-a/gw/p#1", "c7", 0, 1.0), &c)
        .unwrap();
    // Another session ends every store connection, as a server restart does.
    let psql = gridwatch_testkit::Server::Postgres
        .find()
        .and_then(|p| p.parent().map(|d| d.join("psql")))
        .unwrap();
    let out = std::process::Command::new(psql)
        .args(["-X", "-A", "-t", "-c"])
        .arg(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'gridwatch-analytics'",
        )
        .arg(pg.server.url())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // The call that meets the dead connection may fail; the next connects
    // again and sees everything.
    let mut attempts = 0;
    let list = loop {
        attempts += 1;
        match pg.store.list(&Scope::All, &AlertFilter::default()) {
            Ok(l) => break l,
            Err(e) if attempts < 3 => {
                assert!(matches!(e, StoreError::Postgres { .. }), "{e}");
            }
            Err(e) => panic!("no new connection after {attempts} calls: {e}"),
        }
    };
    assert_eq!(list.len(), 1);
}

#[test]
fn an_unreachable_server_is_named_in_the_error() {
    let port = gridwatch_testkit::free_port();
    let e = Store::open_postgres(&format!(
        "postgres://gridwatch:pw-not-shown@127.0.0.1:{port}/city"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with(&format!(
            "alert store postgres://gridwatch@127.0.0.1:{port}/city: "
        )),
        "{e}"
    );
    assert!(e.contains("connect"), "{e}");
    assert!(!e.contains("pw-not-shown"), "{e}");
}
