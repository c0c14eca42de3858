//! City scale, end to end: a recorded district fed into a partitioned
//! JetStream stream of a nats-server of the test's own, two worker
//! processes (the real binary) sharing its partitions with leases and
//! checkpoints in a PostgreSQL of the test's own, one killed with SIGKILL
//! mid-stream, the other taking its partitions over — and the alerts in
//! PostgreSQL are exactly those of a single-process replay of the same
//! recording: the same ids, none doubled, none missing.
//!
//! Also: readings published over MQTT to the server's own MQTT listener
//! are partitioned by the same mapping, by site.

use async_nats::jetstream;
use gridwatch_analytics::cluster::{pg, sink, stream};
use gridwatch_analytics::register::Register;
use gridwatch_analytics::AnalyticsConfig;
use gridwatch_simulators::district::{generate, Scenario};
use gridwatch_testkit::{NatsOptions, NatsServer, Postgres, TempDir};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PARTITIONS: u32 = 4;
const STREAM: &str = "GRIDWATCH";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn worker(nats: &NatsServer, pg: &Postgres, name: &str, dir: &std::path::Path) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_gridwatch-analytics"))
        .args(["worker", "--nats", &nats.url(), "--postgres", &pg.url()])
        .args(["--partitions", &PARTITIONS.to_string(), "--name", name])
        .args(["--checkpoint-every", "2000", "--register"])
        .arg(dir.join("register.json"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the worker starts")
}

fn logs(dir: &std::path::Path) -> String {
    ["worker-a", "worker-b"]
        .iter()
        .map(|n| {
            let text = std::fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            format!(
                "--- {n} (last lines)\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill (procps) runs");
    assert!(ok.success(), "kill {sig} {}", child.id());
}

/// Polls `check` every 50 ms until it gives `Some`, for at most `within`.
async fn until<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {} s",
            within.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn two_workers_one_killed_give_the_alerts_of_a_single_process_replay() {
    let Some(nats) = NatsServer::start(NatsOptions {
        mqtt: false,
        mappings: stream::partition_mappings("gw", PARTITIONS),
    }) else {
        return;
    };
    let Some(postgres) = Postgres::start() else {
        return;
    };
    let dir = TempDir::new("cluster");
    let scenario = Scenario {
        name: "cluster".into(),
        days: 12,
        sites: 4,
        buildings_per_site: 1,
        floors: 1,
        flats_per_floor: 4,
        ..Scenario::default()
    };
    generate(&scenario, 7, dir.path()).expect("district generated");
    let recording = dir.path().join("recording.jsonl");
    let open = || BufReader::new(std::fs::File::open(&recording).unwrap());
    let records = open().lines().count();

    // The single-process replay: what the cluster must give.
    let register = Register::load(dir.path().join("register.json")).expect("register");
    let single = gridwatch_analytics::replay::replay(&AnalyticsConfig::default(), register, open())
        .expect("replay");
    let expected: BTreeSet<String> = single.alerts.iter().map(|a| a.id.clone()).collect();
    assert!(
        expected.len() >= 5,
        "the district must raise alerts for this test to mean anything: {}",
        expected.len()
    );

    let rt = runtime();
    rt.block_on(async {
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        stream::ensure_stream(&js, STREAM).await.unwrap();
        let lost = tokio_util::sync::CancellationToken::new();
        let client = pg::connect(&postgres.url(), lost).await.unwrap();

        // Most of the district is in the stream before the workers start;
        // the rest arrives while they run, after the kill.
        let first = records * 7 / 10;
        let fed = stream::publish_recording(&js, "gw", open(), 0, first)
            .await
            .unwrap();
        assert_eq!(fed.published as usize, first);

        let mut a = worker(&nats, &postgres, "worker-a", dir.path());
        let mut b = worker(&nats, &postgres, "worker-b", dir.path());

        // Both own partitions; one of worker-a's has messages still to go,
        // and worker-a has written an alert after its last checkpoint (its
        // successor raises it again). worker-a is stopped (SIGSTOP) to look
        // at that without it moving on, and killed there, or let go on.
        let started = Instant::now();
        let mut looks = 0;
        let victim = loop {
            assert!(
                started.elapsed() < Duration::from_secs(240),
                "worker-a never wrote an alert after a checkpoint with messages left ({looks} looks)\n{}",
                logs(dir.path())
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            // (No table until a worker has made it.)
            let Ok(rows) = pg::progress(&client, STREAM).await else {
                continue;
            };
            let b_owns = rows.iter().any(|r| r.owner == "worker-b");
            let behind = rows
                .iter()
                .find(|r| r.owner == "worker-a" && r.seq > 0 && r.pending.unwrap_or(0) > 0);
            if !b_owns || behind.is_none() {
                continue;
            }
            signal(&a, "-STOP");
            looks += 1;
            // Statements already sent finish while it is stopped.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let rows = pg::progress(&client, STREAM).await.unwrap();
            let uncovered: bool = client
                .query_one(
                    "SELECT coalesce((SELECT max(recorded_at) FROM gridwatch_cluster_alerts WHERE worker = 'worker-a') \
                       > (SELECT max(saved_at) FROM gridwatch_cluster_checkpoints WHERE owner = 'worker-a'), false)",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            let behind = rows
                .iter()
                .find(|r| r.owner == "worker-a" && r.seq > 0 && r.pending.unwrap_or(0) > 0);
            match behind {
                Some(r) if uncovered => break r.partition,
                _ => signal(&a, "-CONT"),
            }
        };
        a.kill().unwrap(); // SIGKILL
        a.wait().unwrap();
        let at_kill = pg::progress(&client, STREAM).await.unwrap();
        let a_had: Vec<u32> = at_kill
            .iter()
            .filter(|r| r.owner == "worker-a")
            .map(|r| r.partition)
            .collect();

        // The rest of the district arrives.
        let rest = stream::publish_recording(&js, "gw", open(), first, usize::MAX)
            .await
            .unwrap();
        assert_eq!((fed.published + rest.published) as usize, records);
        let fed_at = Instant::now();

        // worker-b owns every partition and has caught up with all of it.
        let done = until(Duration::from_secs(300), "worker-b catching up with every partition", || async {
            let rows = pg::progress(&client, STREAM).await.ok()?;
            let since = fed_at.elapsed().as_millis() as i64;
            let caught_up = rows.len() == PARTITIONS as usize
                && rows.iter().all(|r| {
                    r.owner == "worker-b" && r.pending == Some(0) && r.age_ms < since
                });
            caught_up.then_some(rows)
        })
        .await;
        let _ = b.kill();
        let _ = b.wait();
        for p in &a_had {
            let row = done.iter().find(|r| r.partition == *p).unwrap();
            let before = at_kill.iter().find(|r| r.partition == *p).unwrap();
            assert!(
                row.epoch > before.epoch,
                "partition {p} was taken over after the kill: {before:?} → {row:?}"
            );
        }
        assert!(a_had.contains(&victim));

        let stored = sink::stored_alerts(&client).await.unwrap();
        let got: BTreeSet<String> = stored.iter().map(|s| s.id.clone()).collect();
        assert_eq!(got.len(), stored.len(), "one row per alert id");
        let missing: Vec<&String> = expected.difference(&got).collect();
        let extra: Vec<&String> = got.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "the cluster's alerts differ from the single-process replay's:\n missing {missing:?}\n extra {extra:?}\n{}",
            logs(dir.path())
        );
        let mut by_worker: BTreeMap<&str, usize> = BTreeMap::new();
        let mut by_rule: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &stored {
            *by_worker.entry(s.worker.as_str()).or_default() += 1;
            *by_rule.entry(s.rule.as_str()).or_default() += 1;
        }
        let again = stored.iter().filter(|s| s.deliveries > 1).count();
        assert!(
            again >= 1,
            "worker-a had written alerts its checkpoint did not cover; worker-b raised them again"
        );
        println!(
            "{records} records, {} alerts {by_rule:?}; written first by {by_worker:?}; \
             {again} raised again after the takeover and folded; \
             worker-a killed owning partitions {a_had:?}",
            got.len()
        );
    });
}

/// The sink's upsert: the same alert written twice (a takeover raising
/// again what the dead worker had written) is one row, written twice.
#[test]
fn an_alert_written_twice_is_one_row() {
    let Some(postgres) = Postgres::start() else {
        return;
    };
    runtime().block_on(async {
        let lost = tokio_util::sync::CancellationToken::new();
        let mut client = pg::connect(&postgres.url(), lost).await.unwrap();
        pg::migrate(&mut client).await.unwrap();
        let client = std::sync::Arc::new(client);
        let a = sink::PgAlerts::new(client.clone(), "worker-a");
        let b = sink::PgAlerts::new(client.clone(), "worker-b");
        let alert = |id: &str| gridwatch_telemetry::Alert {
            schema: gridwatch_telemetry::SCHEMA_VERSION,
            id: id.into(),
            rule: "socket_overcurrent".into(),
            entity: "yard-a/gw-1/pile-1#3".into(),
            cell: "unassigned".into(),
            site: "yard-a".into(),
            severity: gridwatch_telemetry::Severity::Critical,
            state: gridwatch_telemetry::AlertState::Open,
            ts: gridwatch_telemetry::Timestamp(60_000),
            title: "过流".into(),
            summary: String::new(),
            evidence: Default::default(),
        };
        use sink::AlertSink as _;
        a.record(&alert("socket_overcurrent:yard-a/gw-1/pile-1#3:0"))
            .await
            .unwrap();
        b.record(&alert("socket_overcurrent:yard-a/gw-1/pile-1#3:0"))
            .await
            .unwrap();
        b.record(&alert("socket_overcurrent:yard-a/gw-1/pile-1#3:900000"))
            .await
            .unwrap();
        let stored = sink::stored_alerts(&client).await.unwrap();
        let rows: Vec<(&str, &str, i32)> = stored
            .iter()
            .map(|s| (s.id.as_str(), s.worker.as_str(), s.deliveries))
            .collect();
        assert_eq!(
            rows,
            [
                ("socket_overcurrent:yard-a/gw-1/pile-1#3:0", "worker-a", 2),
                (
                    "socket_overcurrent:yard-a/gw-1/pile-1#3:900000",
                    "worker-b",
                    1
                ),
            ]
        );
    });
}

#[test]
fn readings_published_over_mqtt_are_partitioned_by_site() {
    let Some(nats) = NatsServer::start(NatsOptions {
        mqtt: true,
        mappings: stream::partition_mappings("gw", PARTITIONS),
    }) else {
        return;
    };
    let mqtt_port = nats.mqtt_port().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let s = stream::ensure_stream(&js, STREAM).await.unwrap();
        let mut options = rumqttc::MqttOptions::new("gw-test", "127.0.0.1", mqtt_port);
        options.set_keep_alive(Duration::from_secs(10));
        let (client, mut events) = rumqttc::AsyncClient::new(options, 16);
        let topics = [
            "gw/yard-a/gw-1/reading/em-1",
            "gw/yard-a/gw-2/event/tag-reader",
            "gw/yard-b/gw-1/reading/em-1",
            "gw/yard-c/gw-9/reading/pile-3",
            "gw/yard-a/gw-1/cmd/em-1",
        ];
        for t in topics {
            client
                .publish(t, rumqttc::QoS::AtLeastOnce, false, t.as_bytes().to_vec())
                .await
                .unwrap();
        }
        let mut acked = 0;
        tokio::time::timeout(Duration::from_secs(20), async {
            while acked < topics.len() {
                if let rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) =
                    events.poll().await.expect("MQTT connection")
                {
                    acked += 1;
                }
            }
        })
        .await
        .expect("the MQTT listener acknowledged every publish");
        // Readings and events are in the stream, commands are not.
        let mut subjects = Vec::new();
        for seq in 1..=4 {
            let m = s
                .get_raw_message(seq)
                .await
                .unwrap_or_else(|e| panic!("stream message {seq}: {e}\n{}", nats.log()));
            subjects.push(m.subject.to_string());
        }
        assert!(
            s.get_raw_message(5).await.is_err(),
            "a command is not a reading"
        );
        let partition_of = |topic: &str| {
            let i = topics.iter().position(|t| *t == topic).unwrap();
            let (p, back) = stream::topic_of(&subjects[i]).expect("a partition's subject");
            assert_eq!(back, topic, "the subject maps back to the MQTT topic");
            assert!(p < PARTITIONS);
            p
        };
        // Two gateways of one site: one partition.
        assert_eq!(
            partition_of("gw/yard-a/gw-1/reading/em-1"),
            partition_of("gw/yard-a/gw-2/event/tag-reader")
        );
        partition_of("gw/yard-b/gw-1/reading/em-1");
        partition_of("gw/yard-c/gw-9/reading/pile-3");
    });
}

/// The example server config the docs point to: the real server accepts
/// it, and its mappings are the ones the workers' default partition count
/// expects.
#[test]
fn the_example_server_config_is_valid_and_partitions_as_the_workers_expect() {
    let Some(bin) = gridwatch_testkit::require_nats_server() else {
        return;
    };
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/nats/gridwatch.conf");
    let out = Command::new(bin)
        .arg("-t")
        .arg("-c")
        .arg(&path)
        .output()
        .expect("nats-server runs");
    assert!(
        out.status.success(),
        "nats-server -t refuses {}: {}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let mappings: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("\"gw."))
        .map(|l| {
            let parts: Vec<&str> = l.split('"').collect();
            (parts[1].to_owned(), parts[3].to_owned())
        })
        .collect();
    assert_eq!(
        mappings,
        stream::partition_mappings("gw", gridwatch_analytics::cluster::DEFAULT_PARTITIONS)
    );
}
