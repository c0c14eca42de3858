//! Compliance renovation through the dashboard: premises found on a case
//! are registered, ordered, renovated and accepted (each step audited, no
//! step skipped), and the report's acceptance rate per town and street is
//! measured against the campaign's target in force.

mod support;

use gridwatch_analytics::alerts::directory::hex;
use gridwatch_analytics::register::{FlatEntry, RegisterFile};
use gridwatch_analytics::store::Store;
use gridwatch_analytics::{run_with, AnalyticsConfig, RunOptions};
use gridwatch_telemetry::{Alert, AlertState, Evidence, ManualClock, Severity, Timestamp};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use support::{Mosquitto, TempDir};
use tokio_util::sync::CancellationToken;

/// 2026-11-20 08:00 UTC.
const T0: i64 = 1795161600000;

fn config(port: u16, dir: &Path) -> AnalyticsConfig {
    let directory = dir.join("directory.toml");
    std::fs::write(
        &directory,
        format!(
            "[[cells]]\nid = \"cell-07\"\non_duty = [\"wang\"]\n[[sites]]\nid = \"yard-a\"\ncell = \"cell-07\"\n\
             [[users]]\nname = \"wang\"\nrole = \"grid_staff\"\ntoken_sha256 = \"{}\"\n",
            hex(&Sha256::digest(b"token-wang"))
        ),
    )
    .unwrap();
    let text = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nclient_id = \"analytics-renovation-test\"\n\
         [store]\npath = \"{}\"\n[directory]\npath = \"{}\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [register]\npath = \"{}\"\n\
         [[alerts.renovation.targets]]\nby = \"2026-06-30\"\npercent = 25\n\
         [[alerts.renovation.targets]]\nby = \"2026-12-31\"\npercent = 50\n\
         [[alerts.renovation.targets]]\nby = \"2027-06-30\"\npercent = 80\n",
        dir.join("alerts.db").display(),
        directory.display(),
        dir.join("register.json").display(),
    );
    AnalyticsConfig::from_toml_str(&text, "test.toml").unwrap()
}

fn case(store: &Store, flat: &str) -> i64 {
    let alert = Alert {
        schema: 1,
        id: format!("group_rental:{flat}:1"),
        rule: "group_rental".into(),
        entity: flat.into(),
        cell: "cell-07".into(),
        site: "yard-a".into(),
        severity: Severity::Minor,
        state: AlertState::Open,
        ts: Timestamp(T0),
        title: "Possible group rental".into(),
        summary: "far above the building".into(),
        evidence: Evidence::default(),
    };
    store.record(&alert, &Default::default()).unwrap().id
}

async fn call(addr: SocketAddr, method: &str, path: &str, form: &str) -> (u16, String) {
    let ct = "application/x-www-form-urlencoded";
    support::http(addr, method, path, Some("token-wang"), ct, form.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn premises_move_through_renovation_and_the_town_is_measured_against_its_target() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let dir = TempDir::new("renovation");
    let flat = |unit: &str, street: &str| FlatEntry {
        town: Some("城东镇".into()),
        street: Some(street.into()),
        ..FlatEntry::new(&format!("yard-a/b1/{unit}"), 2)
    };
    RegisterFile {
        flats: vec![
            flat("0301", "幸福街道"),
            flat("0302", "幸福街道"),
            flat("0401", "和平街道"),
        ],
        ..Default::default()
    }
    .save(&dir.path().join("register.json"))
    .unwrap();
    let store = Store::open_file(&dir.path().join("alerts.db")).unwrap();
    let (a, b, c) = (
        case(&store, "yard-a/b1/0301"),
        case(&store, "yard-a/b1/0302"),
        case(&store, "yard-a/b1/0401"),
    );
    drop(store);
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let options = RunOptions {
        api_ready: Some(tx),
        clock: Some(std::sync::Arc::new(ManualClock::new(Timestamp(T0)))),
        ..RunOptions::default()
    };
    let (cfg, s) = (config(broker.port(), dir.path()), stop.clone());
    let task = tokio::spawn(async move { run_with(cfg, s, options).await.expect("service runs") });
    let addr = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .unwrap()
        .unwrap();

    // The case page offers to register the premises; all three are.
    let (_, page) = call(addr, "GET", &format!("/alerts/{a}"), "").await;
    assert!(page.contains("登记为整改对象"), "{page}");
    for id in [a, b, c] {
        let (status, _) = call(
            addr,
            "POST",
            &format!("/alerts/{id}/renovation"),
            "hazard=group_rental",
        )
        .await;
        assert_eq!(status, 303);
    }
    // Registering twice changes nothing; a hazard with no renovation is refused.
    assert_eq!(
        call(
            addr,
            "POST",
            &format!("/alerts/{a}/renovation"),
            "hazard=group_rental"
        )
        .await
        .0,
        303
    );
    assert_eq!(
        call(
            addr,
            "POST",
            &format!("/alerts/{a}/renovation"),
            "hazard=leak"
        )
        .await
        .0,
        409
    );

    // The first premises is ordered, renovated and accepted; skipping a
    // step is refused.
    let (_, page) = call(addr, "GET", &format!("/alerts/{a}"), "").await;
    let needle = "action=\"/renovations/";
    let at = page.find(needle).expect("a step button") + needle.len();
    let rid: String = page[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let step = |to: &'static str| {
        let rid = rid.clone();
        async move {
            call(
                addr,
                "POST",
                &format!("/renovations/{rid}"),
                &format!("to={to}"),
            )
            .await
            .0
        }
    };
    assert_eq!(step("accepted").await, 409, "found cannot jump to accepted");
    for to in ["ordered", "renovated", "accepted"] {
        assert_eq!(step(to).await, 303, "{to}");
    }
    let (_, page) = call(addr, "GET", &format!("/alerts/{a}"), "").await;
    assert!(
        page.contains("验收通过") && page.contains("合规整改：renovated → accepted"),
        "{page}"
    );

    // The report for November (the clock stands at T0): 1 of 3 accepted in 城东镇 (33 %), behind the
    // 50 % target in force until 2026-12-31; 幸福街道 1 of 2 (50 %) meets it.
    let (status, report) = call(addr, "GET", "/report?from=2026-11-01&to=2026-11-30", "").await;
    assert_eq!(status, 200, "{report}");
    assert!(report.contains("2026-12-31 前验收率达到 50%"), "{report}");
    let (_, csv) = call(
        addr,
        "GET",
        "/report/acceptance.csv?from=2026-11-01&to=2026-11-30",
        "",
    )
    .await;
    let row = |town: &str, street: &str| {
        csv.lines()
            .find(|l| l.contains(&format!("\"{town}\",\"{street}\",group_rental")))
            .unwrap_or_else(|| panic!("no row {town} {street}: {csv}"))
            .to_owned()
    };
    assert!(
        row("城东镇", "").contains(",3,1,1,0.3333,50,2026-12-31,"),
        "{csv}"
    );
    assert!(
        row("城东镇", "幸福街道").contains(",2,1,1,0.5000,"),
        "{csv}"
    );
    assert!(
        row("城东镇", "和平街道").contains(",1,0,0,0.0000,"),
        "{csv}"
    );
    // Before November nothing was found yet.
    let (_, csv) = call(
        addr,
        "GET",
        "/report/acceptance.csv?from=2026-10-01&to=2026-10-31",
        "",
    )
    .await;
    assert_eq!(csv.lines().count(), 1, "{csv}");
    stop.cancel();
    task.await.unwrap();
}
