use super::*;
use crate::config::GatewayConfig;
use crate::edge::output::LoggedPin;
use crate::edge::{EdgeConfig, Pin};
use crate::outbox::queue;
use gridwatch_telemetry::{Event, ManualClock};
use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;
use tokio::sync::mpsc::Receiver;

const CONFIG: &str = r#"
[gateway]
id = "gw-1"
site = "estate-7"
building = "b3"
[mqtt]
host = "127.0.0.1"
[local_mqtt]
host = "127.0.0.1"
port = 1884
[pseudonym]
site_key_file = "/nonexistent/site.key"

[[readers]]
id = "lobby-rfid"
protocol = "serial"
port = "/dev/ttyUSB0"
location = "lift_lobby"
offline_after_silence_s = 30

[[readers]]
id = "gate-cam"
protocol = "mqtt"
topic = "cam/gate/+"
location = "gate"
identity_kind = "plate"
repeat_window_ms = 0
[readers.json]
identity = "/plate"
"#;

fn key() -> Arc<SiteKey> {
    Arc::new(SiteKey::from_bytes(b"unit-test site key, long enough".to_vec()).expect("key"))
}

fn sink(
    reader: usize,
    clock: &ManualClock,
    edge: Option<SharedEdge>,
) -> (SightingSink, Receiver<Record>) {
    let cfg = GatewayConfig::from_toml_str(CONFIG, "test").expect("valid");
    let reader = Arc::new(cfg.readers[reader].clone());
    let (tx, rx) = queue();
    let stamp = cfg.reader_stamp(&reader, 100);
    let sink = SightingSink::new(reader, stamp, key(), Arc::new(clock.clone()), tx, edge);
    (sink, rx)
}

fn raw(identity: &str) -> RawSighting {
    RawSighting {
        identity: identity.into(),
        direction: None,
        ts: None,
    }
}

fn event(record: Record) -> Event {
    match record {
        Record::Event(e) => e,
        Record::Reading(r) => panic!("expected an event, got {r:?}"),
        Record::Prepared { reading, .. } => panic!("expected an event, got {reading:?}"),
    }
}

#[tokio::test]
async fn a_sighting_leaves_pseudonymised_and_stamped() {
    let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
    let (mut sink, mut rx) = sink(0, &clock, None);
    let stop = CancellationToken::new();
    assert!(sink.sighting(raw("04A1B2C3"), &stop).await);
    let e = event(rx.try_recv().expect("queued"));
    assert_eq!(
        (e.device.as_str(), e.site.as_str(), e.seq, e.ts),
        (
            "lobby-rfid",
            "estate-7",
            100,
            Timestamp::from_millis(1_000_000)
        )
    );
    let EventKind::Sighting {
        location,
        identity,
        direction,
    } = &e.kind
    else {
        panic!("{e:?}")
    };
    assert_eq!(location, "lift_lobby");
    assert_eq!(identity, &key().pseudonym(IdentityKind::Tag, "4a1b2c3"));
    assert_eq!(direction, &None);
    let json = String::from_utf8(
        crate::outbox::Record::Event(e)
            .to_payload()
            .expect("encodes"),
    )
    .expect("utf-8");
    assert!(!json.contains("A1B2C3"), "{json}");
}

#[tokio::test]
async fn repeats_within_the_window_are_dropped_and_counted() {
    let clock = ManualClock::new(Timestamp::from_millis(0));
    let (mut sink, mut rx) = sink(0, &clock, None);
    let stop = CancellationToken::new();
    for _ in 0..5 {
        sink.sighting(raw("A1"), &stop).await;
        clock.advance(1_000);
    }
    sink.sighting(raw("B2"), &stop).await;
    clock.advance(DEFAULT_REPEAT_WINDOW_MS as i64);
    sink.sighting(raw("A1"), &stop).await;
    let mut n = 0;
    while rx.try_recv().is_ok() {
        n += 1;
    }
    assert_eq!(n, 3, "A1 once, B2, then A1 again after the window");
    let stats = sink.stats();
    assert_eq!(stats.repeats.load(Ordering::Relaxed), 4);
    assert_eq!(stats.sightings.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn a_lobby_sighting_fires_the_edge_rule_and_reports_it() {
    let clock = ManualClock::new(Timestamp::from_millis(5_000));
    let edge_cfg: EdgeConfig = toml::from_str(
        r#"
        [[outputs]]
        name = "lobby-buzzer"
        gpio_bcm = 17
        hold_ms = 10000
        [[rules]]
        name = "ebike-in-lobby"
        when_sighted_at = ["lift_lobby"]
        fire = ["lobby-buzzer"]
        "#,
    )
    .expect("parses");
    let edge = Edge::build_with(&edge_cfg, |o| {
        Ok(Pin::Logged(LoggedPin::new(&o.name, o.gpio_bcm)))
    })
    .expect("valid");
    let edge: SharedEdge = Arc::new(Mutex::new(edge));
    let (mut lobby, mut rx) = sink(0, &clock, Some(edge.clone()));
    let (mut gate, mut gate_rx) = sink(1, &clock, Some(edge.clone()));
    let stop = CancellationToken::new();

    gate.sighting(raw("粤B12345"), &stop).await;
    assert!(!edge.lock().expect("lock").is_on("lobby-buzzer"));
    assert!(matches!(
        event(gate_rx.try_recv().expect("sighting")).kind,
        EventKind::Sighting { .. }
    ));
    assert!(gate_rx.try_recv().is_err(), "a gate sighting fires no rule");

    lobby.sighting(raw("A1"), &stop).await;
    assert!(edge.lock().expect("lock").is_on("lobby-buzzer"));
    let first = event(rx.try_recv().expect("sighting"));
    let fired = event(rx.try_recv().expect("rule event"));
    assert_eq!(fired.seq, first.seq + 1);
    assert_eq!(
        fired.kind,
        EventKind::RuleFired {
            rule: "ebike-in-lobby".into(),
            action: "switched on lobby-buzzer".into()
        }
    );
    // The release task switches it off once the hold has run out.
    let stop_release = CancellationToken::new();
    let task = tokio::spawn(crate::edge::release_outputs(
        edge.clone(),
        Arc::new(clock.clone()),
        stop_release.clone(),
    ));
    clock.advance(9_000);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        edge.lock().expect("lock").is_on("lobby-buzzer"),
        "held 10 s"
    );
    clock.advance(1_000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while edge.lock().expect("lock").is_on("lobby-buzzer") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "released within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_release.cancel();
    task.await.expect("ends");
}

#[tokio::test]
async fn malformed_input_is_counted_and_logged_without_the_identity() {
    let clock = ManualClock::new(Timestamp::from_millis(0));
    let (sink, _rx) = sink(1, &clock, None);
    let why = mapping::MappingError::Missing {
        field: "identity",
        path: "/plate".into(),
    };
    for _ in 0..3 {
        sink.malformed("topic cam/gate/1", &why);
    }
    assert_eq!(sink.stats().malformed.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn a_silent_reader_is_reported_offline_once_and_online_when_heard_again() {
    let clock = ManualClock::new(Timestamp::from_millis(0));
    let (sink, mut rx) = sink(0, &clock, None);
    let health = Arc::new(crate::status::Health::new(
        "gw-1".into(),
        "estate-7".into(),
        1,
    ));
    let mut sink = sink.with_health(health.clone());
    let stop = CancellationToken::new();
    sink.set_online(true);
    assert!(sink.check_silence(&stop).await);
    clock.advance(29_000);
    assert!(sink.check_silence(&stop).await);
    assert!(rx.try_recv().is_err(), "29 s of silence is fine");
    clock.advance(1_000);
    assert!(sink.check_silence(&stop).await);
    clock.advance(60_000);
    assert!(sink.check_silence(&stop).await);
    let e = event(rx.try_recv().expect("offline"));
    assert_eq!(
        e.kind,
        EventKind::DeviceOffline {
            reason: "nothing heard for 30 s".into()
        }
    );
    assert!(rx.try_recv().is_err(), "reported once");
    assert_eq!(health.devices_online(), 0);
    assert!(sink.heard(&stop).await);
    assert_eq!(
        event(rx.try_recv().expect("online")).kind,
        EventKind::DeviceOnline
    );
    assert_eq!(health.devices_online(), 1);
    assert!(sink.heard(&stop).await);
    assert!(rx.try_recv().is_err(), "online once");
}

/// A pty pair: the master end stands in for the reader, the slave's path
/// is the "serial port" the gateway opens.
fn pty() -> (std::fs::File, PathBuf) {
    let pair = nix::pty::openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(pair.slave.as_fd()).expect("ttyname");
    (std::fs::File::from(pair.master), path)
}

#[tokio::test]
async fn a_serial_reader_over_a_pty_gives_sightings_and_reports_bad_lines() {
    let (mut master, path) = pty();
    let clock = ManualClock::new(Timestamp::from_millis(0));
    let cfg = GatewayConfig::from_toml_str(CONFIG, "test").expect("valid");
    let reader = Arc::new(cfg.readers[0].clone());
    let (tx, mut rx) = queue();
    let health = Arc::new(crate::status::Health::new(
        "gw-1".into(),
        "estate-7".into(),
        1,
    ));
    let sink = SightingSink::new(
        reader.clone(),
        cfg.reader_stamp(&reader, 1),
        key(),
        Arc::new(clock.clone()),
        tx,
        None,
    )
    .with_health(health.clone());
    let stats = sink.stats();
    let stop = CancellationToken::new();
    let task = tokio::spawn(serial::run(path, 9600, sink, stop.clone()));

    let mut bytes = line::encode_tag("E200341201", Some(Direction::In)).into_bytes();
    bytes.extend_from_slice(b"$TAG,E200341202*00\r\n"); // bad checksum
    bytes.extend_from_slice(line::encode_heartbeat().as_bytes());
    bytes.extend_from_slice(b"$TAG,E2003412"); // cut short by the next line
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(line::encode_tag("E200341203", None).as_bytes());
    master.write_all(&bytes).expect("write");

    let mut identities = Vec::new();
    while identities.len() < 2 {
        let rec = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("sightings within 5 s")
            .expect("open");
        if let EventKind::Sighting {
            identity,
            direction,
            ..
        } = event(rec).kind
        {
            identities.push((identity, direction));
        }
    }
    assert_eq!(
        identities,
        vec![
            (
                key().pseudonym(IdentityKind::Tag, "E200341201"),
                Some("in".to_owned())
            ),
            (key().pseudonym(IdentityKind::Tag, "E200341203"), None),
        ]
    );
    assert_eq!(stats.malformed.load(Ordering::Relaxed), 2);
    assert_eq!(health.devices_online(), 1, "the open port counts as online");

    // The reader disappears: the gateway reports it offline.
    drop(master);
    let offline = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("offline event within 5 s")
        .expect("open");
    assert!(
        matches!(&event(offline).kind, EventKind::DeviceOffline { reason } if reason.contains("/dev/pts")),
    );
    assert_eq!(health.devices_online(), 0);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops within 5 s")
        .expect("no panic");
}
