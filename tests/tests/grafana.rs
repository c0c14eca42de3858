//! The Grafana dashboard in docs/grafana/ checked against what the gateway
//! really writes to InfluxDB: every panel's query must read a measurement
//! (a device kind) and a field (a register some built-in profile of that
//! kind emits), and filter or group only by tags a reading carries. A
//! register renamed in a profile, or a typo in a query, fails here rather
//! than as an empty panel at a customer's.

use gridwatch_gateway::ProfileLibrary;
use gridwatch_telemetry::{DeviceKind, Reading, Timestamp};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn docs() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/grafana"))
}

/// measurement → fields, from every built-in device profile.
fn written_fields() -> BTreeMap<String, BTreeSet<String>> {
    let mut lib = ProfileLibrary::built_in();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for model in lib.known() {
        let p = lib.get(&model).expect("built-in profile loads");
        let device = out.entry(p.kind.as_str().to_owned()).or_default();
        device.extend(
            p.registers
                .iter()
                .filter(|r| r.is_emitted())
                .map(|r| r.name.clone()),
        );
        if let Some(ch) = &p.channel {
            out.entry(ch.kind.as_str().to_owned()).or_default().extend(
                ch.registers
                    .iter()
                    .filter(|r| r.is_emitted())
                    .map(|r| r.name.clone()),
            );
        }
    }
    out
}

/// The tag keys of a reading with every identity field set.
fn written_tags() -> BTreeSet<String> {
    let mut r = Reading::new(Timestamp(1), "gw", "pile-1", DeviceKind::ChargingSocket, 1);
    r.site = "yard-a".into();
    r.building = Some("b1".into());
    r.unit = Some("101".into());
    r.socket = Some(2);
    r.values.insert("power_w".into(), 1.0);
    r.to_point().tags.into_iter().map(|(k, _)| k).collect()
}

/// Every `"quoted"` identifier after `word` in an InfluxQL query.
fn quoted_after<'a>(query: &'a str, word: &str) -> Vec<&'a str> {
    query
        .match_indices(word)
        .filter_map(|(i, _)| {
            let rest = query[i + word.len()..].trim_start();
            let rest = rest.strip_prefix('"')?;
            rest.split('"').next()
        })
        .collect()
}

#[test]
fn every_query_reads_what_the_gateway_writes() {
    let text = std::fs::read_to_string(docs().join("gridwatch.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dash["uid"], "gridwatch-overview");
    assert!(dash["title"].as_str().is_some_and(|t| !t.is_empty()));
    let fields = written_fields();
    let tags = written_tags();
    assert!(
        tags.contains("site") && tags.contains("socket"),
        "sanity: {tags:?}"
    );

    let datasource_yaml =
        std::fs::read_to_string(docs().join("provisioning/datasources/gridwatch.yaml")).unwrap();
    let ds_uid = "gridwatch-influxdb";
    assert!(
        datasource_yaml.contains(&format!("uid: {ds_uid}"))
            && datasource_yaml.contains("type: influxdb"),
        "the provisioned datasource has the uid the dashboard uses"
    );
    let dashboards_yaml =
        std::fs::read_to_string(docs().join("provisioning/dashboards/gridwatch.yaml")).unwrap();
    assert!(dashboards_yaml.contains("type: file") && dashboards_yaml.contains("path: /"));

    let panels = dash["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut queried = BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().unwrap_or("?");
        assert!(
            ids.insert(p["id"].as_i64().expect("panel id")),
            "duplicate id: {title}"
        );
        for k in ["h", "w", "x", "y"] {
            assert!(p["gridPos"][k].is_u64(), "{title}: gridPos.{k}");
        }
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], ds_uid, "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has a query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], ds_uid, "{title}");
            let q = t["query"].as_str().expect("an InfluxQL query");
            let measurements = quoted_after(q, "FROM");
            assert_eq!(measurements.len(), 1, "{title}: {q}");
            let m = measurements[0];
            let known = fields
                .get(m)
                .unwrap_or_else(|| panic!("{title}: measurement {m:?} is not written"));
            let read: Vec<&str> = ["mean(", "max(", "min(", "last("]
                .iter()
                .flat_map(|f| quoted_after(q, f))
                .collect();
            assert!(!read.is_empty(), "{title}: no field read in {q}");
            for f in read {
                assert!(
                    known.contains(f),
                    "{title}: {m} has no field {f:?}; written are {known:?}"
                );
                queried.insert(format!("{m}.{f}"));
            }
            let group_by = q.split("GROUP BY ").nth(1).unwrap_or("");
            let grouped = group_by
                .split(", ")
                .filter_map(|s| s.trim().strip_prefix('"').and_then(|s| s.split('"').next()));
            for tag in grouped.chain(quoted_after(q, "WHERE (")) {
                assert!(
                    tags.contains(tag),
                    "{title}: {tag:?} is not a tag the gateway writes ({tags:?})"
                );
            }
        }
    }
    for must in [
        "charging_socket.current_a",
        "charging_socket.temperature_c",
        "charging_socket.power_w",
        "electricity_meter.power_w",
        "water_meter.flow_m3h",
    ] {
        assert!(queried.contains(must), "the dashboard shows {must}");
    }
    // The site variable reads a tag the gateway writes.
    let vars = dash["templating"]["list"].as_array().expect("variables");
    assert!(vars.iter().any(|v| v["name"] == "site"
        && v["query"]
            .as_str()
            .is_some_and(|q| q.contains("WITH KEY = \"site\""))));
}
