//! A citizen's tip-off through the public page, without an account, into
//! the grid staff's case loop: routed to the flat's cell, corroborated by
//! the flat's open sensor case, its photo stripped of GPS, followed by its
//! receipt code (which shows nothing else), closed as confirmed, its reward
//! in the office's export and marked paid. Rate-limited per client.

mod support;

use gridwatch_analytics::alerts::directory::hex;
use gridwatch_analytics::register::{FlatEntry, RegisterFile};
use gridwatch_analytics::store::Store;
use gridwatch_analytics::{run_with, AnalyticsConfig, RunOptions};
use gridwatch_telemetry::{Alert, AlertState, Evidence, Severity, Timestamp};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use support::{Mosquitto, TempDir};
use tokio_util::sync::CancellationToken;

const FLAT: &str = "yard-a/b1/0301";
const ADDRESS: &str = "城东镇幸福路1号1幢301室";
const CONTACT: &str = "13800000000";

fn config(port: u16, dir: &Path) -> AnalyticsConfig {
    let directory = dir.join("directory.toml");
    let user = |name: &str, role: &str| {
        format!(
            "[[users]]\nname = \"{name}\"\nrole = \"{role}\"\ntoken_sha256 = \"{}\"\n",
            hex(&Sha256::digest(format!("token-{name}").as_bytes()))
        )
    };
    std::fs::write(
        &directory,
        format!(
            "[[cells]]\nid = \"cell-07\"\non_duty = [\"wang\"]\n[[cells]]\nid = \"cell-09\"\non_duty = [\"zhao\"]\n\
             [[sites]]\nid = \"yard-a\"\ncell = \"cell-07\"\n[[sites]]\nid = \"yard-b\"\ncell = \"cell-09\"\n{}{}{}",
            user("wang", "grid_staff"),
            user("zhao", "grid_staff"),
            user("li", "admin")
        ),
    )
    .unwrap();
    let text = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nclient_id = \"analytics-tips-test\"\n\
         reconnect_min_ms = 100\nreconnect_max_ms = 500\n\
         [store]\npath = \"{}\"\n[directory]\npath = \"{}\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [register]\npath = \"{}\"\n[alerts.tips]\nper_client_per_hour = 3\n",
        dir.join("alerts.db").display(),
        directory.display(),
        dir.join("register.json").display(),
    );
    AnalyticsConfig::from_toml_str(&text, "test.toml").unwrap()
}

/// The flat's open sensor case, recorded before the service starts.
fn seed_sensor_case(db: &Path) -> i64 {
    let store = Store::open_file(db).unwrap();
    let alert = Alert {
        schema: 1,
        id: format!("group_rental:{FLAT}:1"),
        rule: "group_rental".into(),
        entity: FLAT.into(),
        cell: "cell-07".into(),
        site: "yard-a".into(),
        severity: Severity::Minor,
        state: AlertState::Open,
        ts: Timestamp(1_764_000_000_000),
        title: "Possible group rental".into(),
        summary: "water and power far above the building".into(),
        evidence: Evidence::default(),
    };
    store.record(&alert, &Default::default()).unwrap().id
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    user: Option<&str>,
    ct: &str,
    body: &[u8],
) -> (u16, String) {
    let token = user.map(|u| format!("token-{u}"));
    support::http(addr, method, path, token.as_deref(), ct, body).await
}

async fn get(addr: SocketAddr, path: &str, user: Option<&str>) -> (u16, String) {
    request(addr, "GET", path, user, "text/plain", b"").await
}

fn form(hazard: &str, place: &str, contact: &str, photo: Option<&[u8]>) -> (String, Vec<u8>) {
    let b = "XyZzyBoundary";
    let mut body = Vec::new();
    for (name, value) in [
        ("hazard", hazard),
        ("place", place),
        ("text", "很多人进出，晚上走廊堆满电动车"),
        ("contact", contact),
    ] {
        body.extend(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    if let Some(p) = photo {
        body.extend(format!("--{b}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes());
        body.extend(p);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

fn jpeg_with_gps() -> Vec<u8> {
    let mut b = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x07, b'J', b'F', b'I', b'F', 0,
    ];
    let exif = b"Exif\0\0GPSLatitude 31.2304N GPSLongitude 121.4737E";
    b.extend([0xFF, 0xE1]);
    b.extend(((exif.len() + 2) as u16).to_be_bytes());
    b.extend(exif);
    b.extend([0xFF, 0xDA, 0x00, 0x03, 0x01, 0x12, 0x34, 0xFF, 0xD9]);
    b
}

fn receipt_in(page: &str) -> String {
    let at = page.find("<p class=\"receipt\"><b>").expect("a receipt") + 22;
    page[at..at + 12].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tip_off_without_an_account_reaches_the_cells_staff_and_is_rewarded_once_confirmed() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let dir = TempDir::new("tips");
    RegisterFile {
        flats: vec![FlatEntry {
            address: Some(ADDRESS.into()),
            ..FlatEntry::new(FLAT, 2)
        }],
        ..Default::default()
    }
    .save(&dir.path().join("register.json"))
    .unwrap();
    let sensor = seed_sensor_case(&dir.path().join("alerts.db"));
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let options = RunOptions {
        api_ready: Some(tx),
        ..RunOptions::default()
    };
    let (config, s) = (config(broker.port(), dir.path()), stop.clone());
    let task =
        tokio::spawn(async move { run_with(config, s, options).await.expect("service runs") });
    let addr = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .unwrap()
        .unwrap();

    // The form needs no account.
    let (status, page) = get(addr, "/tip", None).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("火灾隐患举报") && page.contains("name=\"photo\""),
        "{page}"
    );

    // A tip with the address as people write it (spaces) and a phone photo.
    let jpeg = jpeg_with_gps();
    let (ct, body) = form(
        "group_rental",
        &format!(" {ADDRESS} "),
        CONTACT,
        Some(&jpeg),
    );
    let (status, page) = request(addr, "POST", "/tip", None, &ct, &body).await;
    assert_eq!(status, 200, "{page}");
    let receipt = receipt_in(&page);
    for secret in [FLAT, "0301", CONTACT, "cell-07"] {
        assert!(!page.contains(secret), "the answer shows {secret}: {page}");
    }

    // Wang, the cell's staff, has the case; corroborated, it opens a
    // severity higher than a group-rental tip alone.
    let (_, list) = get(addr, "/api/v1/alerts?rule=tip_off", Some("wang")).await;
    let list: Value = serde_json::from_str(&list).unwrap();
    let case = &list.as_array().unwrap()[0];
    assert_eq!(case["entity"], FLAT);
    assert_eq!(case["severity"], "major");
    let id = case["id"].as_i64().unwrap();
    // Zhao, of another cell, does not.
    let (_, other) = get(addr, "/api/v1/alerts?rule=tip_off", Some("zhao")).await;
    assert_eq!(other.trim(), "[]");

    // Grid staff see the tip but not who sent it; the office sees both.
    let (_, staff) = get(addr, &format!("/alerts/{id}"), Some("wang")).await;
    assert!(
        staff.contains(&receipt) && staff.contains("举报线索"),
        "{staff}"
    );
    assert!(!staff.contains(CONTACT));
    let (_, office) = get(addr, &format!("/alerts/{id}"), Some("li")).await;
    assert!(office.contains(CONTACT), "{office}");
    // Each case notes the other.
    let (_, sensor_page) = get(addr, &format!("/alerts/{sensor}"), Some("wang")).await;
    assert!(
        sensor_page.contains(&format!("线索 #{id}")),
        "{sensor_page}"
    );
    assert!(staff.contains(&format!("传感器告警 #{sensor}")), "{staff}");

    // The photo is kept without its location.
    let (_, photos) = get(addr, &format!("/api/v1/alerts/{id}/photos"), Some("wang")).await;
    let photos: Value = serde_json::from_str(&photos).unwrap();
    let n = photos[0]["id"].as_i64().expect("the photo is on the case");
    let (status, stored) = get(
        addr,
        &format!("/api/v1/alerts/{id}/photos/{n}"),
        Some("wang"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        !stored.contains("GPS") && !stored.contains("Exif"),
        "{stored:?}"
    );

    // The receipt shows the state and nothing else; other codes show nothing.
    let (_, st) = get(addr, &format!("/tip/status?code={receipt}"), None).await;
    assert!(st.contains("已受理"), "{st}");
    assert!(!st.contains(FLAT) && !st.contains("0301"));
    for guess in ["ABCDEFGHJKMN", "23456789ABCD", "x", &receipt[..11]] {
        let (_, st) = get(addr, &format!("/tip/status?code={guess}"), None).await;
        assert!(
            st.contains("没有找到") && !st.contains("已受理"),
            "{guess}: {st}"
        );
    }

    // Closed as confirmed: the reward is due, then paid by the office only.
    let (status, v) = request(
        addr,
        "POST",
        &format!("/api/v1/alerts/{id}/close"),
        Some("wang"),
        "application/json",
        br#"{"disposition": "confirmed_group_rental", "note": "9 beds, landlord told"}"#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (_, st) = get(addr, &format!("/tip/status?code={receipt}"), None).await;
    assert!(st.contains("已办结"), "{st}");
    let (_, csv) = get(addr, "/tips.csv", Some("li")).await;
    let row = csv
        .lines()
        .find(|l| l.contains(&receipt))
        .expect("the tip is exported");
    assert!(row.contains(",300,") && row.contains(CONTACT), "{row}");
    let (_, csv) = get(addr, "/tips.csv", Some("wang")).await;
    assert!(!csv.contains(CONTACT), "{csv}");
    let paid = format!("/tips/{receipt}/paid");
    assert_eq!(
        request(addr, "POST", &paid, Some("wang"), "text/plain", b"")
            .await
            .0,
        403
    );
    assert_eq!(
        request(addr, "POST", &paid, Some("li"), "text/plain", b"")
            .await
            .0,
        303
    );
    assert_eq!(
        request(addr, "POST", &paid, Some("li"), "text/plain", b"")
            .await
            .0,
        409,
        "paid once"
    );
    let (_, csv) = get(addr, "/tips.csv", Some("li")).await;
    let row = csv.lines().find(|l| l.contains(&receipt)).unwrap();
    let fields: Vec<&str> = row.split(',').collect();
    assert_eq!(fields[9], "300", "{row}");
    assert!(fields[10].starts_with("20"), "paid at: {row}");

    // An address nobody registered is refused, not guessed (no unplaced
    // cell is configured); then the budget of 3 an hour runs out.
    let (ct, body) = form("other", "不存在的地址", "", None);
    let (status, page) = request(addr, "POST", "/tip", None, &ct, &body).await;
    assert_eq!(status, 400);
    assert!(page.contains("标准地址"), "{page}");
    let (ct, body) = form("indoor_charging", ADDRESS, "", None);
    assert_eq!(request(addr, "POST", "/tip", None, &ct, &body).await.0, 200);
    assert_eq!(request(addr, "POST", "/tip", None, &ct, &body).await.0, 429);
    stop.cancel();
    task.await.unwrap();
}
