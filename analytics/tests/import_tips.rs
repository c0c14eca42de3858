//! The 12345 hotline's export into the case loop: each call a tip-off case
//! on its flat in the flat's cell, the caller's number kept for the office
//! only, unplaceable calls rejected by line, and a second import of the
//! same export changing nothing.

mod support;

use gridwatch_analytics::register::{FlatEntry, RegisterFile};
use gridwatch_analytics::store::{Scope, Store};
use gridwatch_analytics::AnalyticsConfig;
use std::process::Command;

#[test]
fn hotline_calls_become_cases_once_and_unplaceable_ones_are_rejected_by_line() {
    let dir = gridwatch_testkit::TempDir::new("import-tips");
    let d = dir.path();
    let config = support::office_config(
        d,
        &RegisterFile {
            flats: vec![FlatEntry {
                address: Some("城东镇幸福路1号1幢301室".into()),
                ..FlatEntry::new("yard-a/b1/0301", 2)
            }],
            ..Default::default()
        },
    );
    let mapping = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/tips/hotline-12345.toml"
    ))
    .unwrap()
    .replace("encoding = \"gbk\"", "encoding = \"utf-8\"");
    std::fs::write(d.join("hotline.toml"), mapping).unwrap();
    let export = d.join("calls.csv");
    std::fs::write(
        &export,
        "工单编号,受理时间,事发地址,问题分类,诉求内容,来电号码\n\
         T001,2026-11-20 09:15,城东镇幸福路1号1幢301室,群租房,一套房住了十几个人,13800000000\n\
         T002,2026-11-20 10:00,城东镇幸福路1号1幢301室,电动车入户充电,楼道里充电,\n\
         T003,2026-11-20 10:30,不知道哪里,群租房,,13900000000\n\
         T004,2026-13-40 10:30,城东镇幸福路1号1幢301室,其他,,\n",
    )
    .unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_gridwatch-analytics"))
            .args(["import", "tips", "--mapping"])
            .arg(d.join("hotline.toml"))
            .arg("-c")
            .arg(&config)
            .arg("--reject")
            .arg(d.join("rejects.tsv"))
            .arg(&export)
            .output()
            .unwrap()
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("4 rows, 2 new, 0 imported before, 2 rejected"),
        "{stdout}"
    );
    let rejects = std::fs::read_to_string(d.join("rejects.tsv")).unwrap();
    assert!(
        rejects.contains("\t4\tunmatched\t") && rejects.contains("\t5\ttimestamp\t"),
        "{rejects}"
    );

    let cfg = AnalyticsConfig::load(&config).unwrap();
    let store = Store::open_file(&d.join("alerts.db")).unwrap();
    let tips = store.tips(&Scope::All, true, &cfg.alerts).unwrap();
    assert_eq!(tips.len(), 2);
    assert!(tips
        .iter()
        .all(|t| t.flat == "yard-a/b1/0301" && t.cell == "cell-07" && t.channel == "hotline"));
    assert_eq!(tips[0].hazard, "group_rental");
    assert_eq!(tips[0].contact.as_deref(), Some("13800000000"));
    assert_eq!(tips[1].hazard, "indoor_charging");
    let staff = store
        .tips(&Scope::Cells(vec!["cell-07".into()]), false, &cfg.alerts)
        .unwrap();
    assert!(
        staff.iter().all(|t| t.contact.is_none()),
        "grid staff never see callers"
    );
    drop(store);

    let again = run();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains("4 rows, 0 new, 2 imported before, 2 rejected"),
        "{stdout}"
    );
    let store = Store::open_file(&d.join("alerts.db")).unwrap();
    assert_eq!(
        store.tips(&Scope::All, false, &cfg.alerts).unwrap().len(),
        2
    );
}
