//! The two migration sets define one schema: every table and column of
//! SQLite's set is in PostgreSQL's and the other way round, with the same
//! kind of type and the same NOT NULL, read back from the databases the
//! migrations built (not from the SQL text).

#[path = "support/backends.rs"]
mod backends;

use gridwatch_analytics::store::{migrations, Store};
use std::collections::BTreeMap;
use std::process::Command;

/// (table, column) → (kind of type, NOT NULL).
type Schema = BTreeMap<(String, String), (&'static str, bool)>;

/// The kind a declared type belongs to, as both databases treat it.
fn kind(declared: &str) -> &'static str {
    let t = declared.to_ascii_lowercase();
    if t.contains("int") {
        "integer"
    } else if t.contains("double") || t.contains("real") {
        "real"
    } else if t.contains("text") {
        "text"
    } else if t.contains("blob") || t.contains("bytea") {
        "bytes"
    } else if t.contains("bool") {
        // SQLite has no booleans: 0 and 1 in an INTEGER.
        "integer"
    } else {
        "other"
    }
}

fn sqlite_schema() -> Schema {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.db");
    let store = Store::open_file(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), migrations::SQLITE.len());
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT m.name, p.name, p.type, p.\"notnull\" OR p.pk > 0 FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
            (kind(&r.get::<_, String>(2)?), r.get::<_, bool>(3)?),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// PostgreSQL's schema, read with psql (beside the server's binaries).
fn postgres_schema(pg: &backends::PgStore) -> Schema {
    assert_eq!(
        pg.store.schema_version().unwrap(),
        migrations::POSTGRES.len()
    );
    let psql = gridwatch_testkit::Server::Postgres
        .find()
        .and_then(|p| p.parent().map(|d| d.join("psql")))
        .unwrap();
    let out = Command::new(psql)
        .args(["-X", "-A", "-t", "-F", "|", "-c"])
        .arg(
            "SELECT table_name, column_name, data_type, is_nullable = 'NO' \
             FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> 'schema_version'",
        )
        .arg(pg.server.url())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (
                (f[0].to_owned(), f[1].to_owned()),
                (kind(f[2]), f[3] == "t"),
            )
        })
        .collect()
}

#[test]
fn both_migration_sets_define_the_same_tables_and_columns() {
    let Some(pg) = backends::postgres_store() else {
        return;
    };
    let lite = sqlite_schema();
    let post = postgres_schema(&pg);
    assert!(lite.len() > 40, "read the SQLite schema: {lite:?}");
    let only = |a: &Schema, b: &Schema| -> Vec<String> {
        a.iter()
            .filter(|(k, v)| b.get(*k) != Some(v))
            .map(|((t, c), (k, n))| format!("{t}.{c} {k} not-null={n}"))
            .collect()
    };
    assert_eq!(
        only(&lite, &post),
        Vec::<String>::new(),
        "SQLite's, not PostgreSQL's"
    );
    assert_eq!(
        only(&post, &lite),
        Vec::<String>::new(),
        "PostgreSQL's, not SQLite's"
    );
}

#[test]
fn both_sets_have_the_same_migrations_in_the_same_order() {
    let names =
        |set: &[(&'static str, &'static str)]| set.iter().map(|(n, _)| *n).collect::<Vec<_>>();
    assert_eq!(names(migrations::SQLITE), names(migrations::POSTGRES));
}

/// A file written before the episodes table (schema 5) opens, gains it,
/// and still knows each case's latest alert as recorded.
#[test]
fn a_file_of_an_older_build_is_upgraded_and_keeps_recognising_its_alerts() {
    use gridwatch_analytics::lifecycle::AlertsConfig;
    use gridwatch_analytics::store::RecordedKind;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let old = gridwatch_telemetry::Alert {
        schema: 1,
        id: "r:yard-a/gw/p#1:0".into(),
        rule: "r".into(),
        entity: "yard-a/gw/p#1".into(),
        cell: "c7".into(),
        site: "yard-a".into(),
        severity: gridwatch_telemetry::Severity::Critical,
        state: gridwatch_telemetry::AlertState::Open,
        ts: gridwatch_telemetry::Timestamp(0),
        title: "t".into(),
        summary: "s".into(),
        evidence: Default::default(),
    };
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for (_, sql) in &migrations::SQLITE[..5] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch("PRAGMA user_version = 5").unwrap();
        conn.execute(
            "INSERT INTO alerts (rule, entity, site, cell, severity, state, title, summary, \
             first_seen_ms, last_seen_ms, opened_at_ms, count, evidence, snapshot, \
             last_episode, updated_at_ms) \
             VALUES ('r', 'yard-a/gw/p#1', 'yard-a', 'c7', 'critical', 'open', 't', 's', \
             0, 0, 0, 1, '{}', ?1, ?2, 0)",
            rusqlite::params![serde_json::to_string(&old).unwrap(), old.id],
        )
        .unwrap();
    }
    let store = Store::open_file(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), migrations::SQLITE.len());
    let again = store.record(&old, &AlertsConfig::default()).unwrap();
    assert_eq!((again.kind, again.id), (RecordedKind::Duplicate, 1));
    assert_eq!(store.case_of(&old.id).unwrap(), Some(1));
}
