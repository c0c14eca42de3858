//! `gridwatch-sim city` against a nats-server of the test's own: every
//! record of the generated district lands in the stream, in order, all of
//! one site in one partition.

use gridwatch_analytics::cluster::stream;
use gridwatch_testkit::{NatsOptions, NatsServer, TempDir};
use std::io::BufRead;

#[test]
fn a_city_is_streamed_into_one_partition_per_site() {
    let Some(nats) = NatsServer::start(NatsOptions {
        mqtt: false,
        mappings: stream::partition_mappings("gw", 8),
    }) else {
        return;
    };
    let dir = TempDir::new("city");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridwatch-sim"))
        .args([
            "city",
            "--flats",
            "300",
            "--days",
            "1",
            "--nats",
            &nats.url(),
        ])
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("gridwatch-sim runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recording = std::fs::File::open(dir.path().join("recording.jsonl")).unwrap();
    let lines = std::io::BufReader::new(recording).lines().count() as u64;
    assert!(
        text.contains(&format!("city: {lines} messages into stream GRIDWATCH")),
        "{text}"
    );
    assert!(text.contains("500 flats in 2 sites"), "{text}");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let js = stream::connect(&nats.url()).await.unwrap();
        let mut s = js.get_stream("GRIDWATCH").await.unwrap();
        assert_eq!(s.info().await.unwrap().state.messages, lines);
        // Each site's messages all in one partition.
        let mut partition_of_site = std::collections::BTreeMap::new();
        for seq in (1..=lines).step_by((lines / 200).max(1) as usize) {
            let m = s.get_raw_message(seq).await.unwrap();
            let (p, topic) = stream::topic_of(&m.subject).expect("a partition's subject");
            let site = topic.split('/').nth(1).unwrap().to_owned();
            let first = *partition_of_site.entry(site.clone()).or_insert(p);
            assert_eq!(first, p, "site {site} in partitions {first} and {p}");
        }
        assert_eq!(partition_of_site.len(), 2, "{partition_of_site:?}");
    });
}
