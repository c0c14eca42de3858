//! The alert and the closing action the store tests share.

#![allow(dead_code)]

use gridwatch_analytics::lifecycle::{Action, Disposition};
use gridwatch_analytics::store::{Scope, Store};
use gridwatch_telemetry::{Alert, AlertState, Evidence, Severity, Timestamp};
use std::collections::BTreeMap;

pub const H: i64 = 3_600_000;

pub fn alert(rule: &str, entity: &str, cell: &str, ts: i64, peak: f64) -> Alert {
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

pub fn close(store: &Store, id: i64, at: i64, d: Disposition) {
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
