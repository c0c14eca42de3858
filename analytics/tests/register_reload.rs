//! The register is data that changes: the running service re-reads its
//! file when it changes, without a restart, and the dashboard's flat page
//! shows the flat's register history. A broken file keeps the register in
//! force.

mod support;

use gridwatch_analytics::alerts::directory::hex;
use gridwatch_analytics::register::{FlatEntry, RegisterFile};
use gridwatch_analytics::{run_with, AnalyticsConfig, RunOptions};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{Mosquitto, TempDir};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "token-of-wang";
const FLAT: &str = "yard-a/b1/0301";

fn config(port: u16, dir: &Path) -> AnalyticsConfig {
    let directory = dir.join("directory.toml");
    std::fs::write(
        &directory,
        format!(
            "[[cells]]\nid = \"cell-07\"\non_duty = [\"wang\"]\n\
             [[cells]]\nid = \"cell-09\"\non_duty = []\n\
             [[sites]]\nid = \"yard-a\"\ncell = \"cell-07\"\n\
             [[sites]]\nid = \"yard-b\"\ncell = \"cell-09\"\n\
             [[users]]\nname = \"wang\"\nrole = \"grid_staff\"\ntoken_sha256 = \"{}\"\n",
            hex(&Sha256::digest(TOKEN.as_bytes()))
        ),
    )
    .unwrap();
    let text = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nclient_id = \"analytics-register-test\"\n\
         reconnect_min_ms = 100\nreconnect_max_ms = 500\n\
         [directory]\npath = \"{}\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [register]\npath = \"{}\"\nreload_check_s = 1\n",
        directory.display(),
        dir.join("register.json").display(),
    );
    AnalyticsConfig::from_toml_str(&text, "test.toml").unwrap()
}

fn register(entries: &[(&str, u8, Option<&str>, Option<&str>)]) -> RegisterFile {
    RegisterFile {
        flats: entries
            .iter()
            .map(|(flat, occupants, since, sub)| FlatEntry {
                since: since.map(str::to_owned),
                sublandlord: sub.map(str::to_owned),
                town: Some("城东镇".into()),
                ..FlatEntry::new(flat, *occupants)
            })
            .collect(),
        ..Default::default()
    }
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    support::http(addr, "GET", path, Some(TOKEN), "text/plain", b"").await
}

/// The register row marked in force, as the page draws it.
fn in_force_row(page: &str) -> Option<&str> {
    let at = page.find("（现行）")?;
    let row = &page[at..];
    Some(&row[..row.find("</tr>")?])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_registration_takes_effect_without_a_restart_and_the_flat_page_shows_its_history() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let dir = TempDir::new("register-reload");
    let file = dir.path().join("register.json");
    register(&[(FLAT, 2, None, None), ("yard-b/b1/0101", 3, None, None)])
        .save(&file)
        .unwrap();
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let options = RunOptions {
        api_ready: Some(tx),
        ..RunOptions::default()
    };
    let (config, s) = (config(broker.port(), dir.path()), stop.clone());
    let task = tokio::spawn(async move {
        run_with(config, s, options).await.expect("service runs");
    });
    let addr = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("the API starts within the bound")
        .unwrap();
    let url = format!("/flats?flat={}", FLAT.replace('/', "%2F"));

    let (status, page) = get(addr, &url).await;
    assert_eq!(status, 200, "{page}");
    let row = in_force_row(&page).expect("the entry in force is marked");
    assert!(row.contains("<td>2</td>"), "{row}");
    assert!(page.contains("城东镇"), "{page}");
    // A flat of a cell that is not wang's is not shown to him; nor is one
    // nobody registered or alerted.
    assert_eq!(get(addr, "/flats?flat=yard-b%2Fb1%2F0101").await.0, 404);
    assert_eq!(get(addr, "/flats?flat=yard-a%2Fb1%2F9999").await.0, 404);

    // The platform re-registers the flat for 8 people, sublet from December.
    register(&[
        (FLAT, 2, None, None),
        (FLAT, 8, Some("2026-12-01"), Some("S-9")),
        ("yard-b/b1/0101", 3, None, None),
    ])
    .save(&file)
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let page = loop {
        let (_, page) = get(addr, &url).await;
        if in_force_row(&page).is_some_and(|r| r.contains("<td>8</td>")) {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "the change never took effect: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let row = in_force_row(&page).unwrap();
    assert!(row.contains("二房东 S-9"), "{row}");
    assert!(page.contains("2026-12-01"), "{page}");
    // The older entry stays, as history, below the one in force.
    let older = &page[page.find("（现行）").unwrap()..];
    assert!(
        older.contains("最初登记") && older.contains("<td>2</td>"),
        "{older}"
    );

    // A broken file keeps the register in force.
    std::fs::write(&file, "{\"flats\": [{\"flat\": 3}").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, page) = get(addr, &url).await;
    assert_eq!(status, 200);
    assert!(
        in_force_row(&page).is_some_and(|r| r.contains("<td>8</td>")),
        "{page}"
    );
    stop.cancel();
    task.await.unwrap();
}
