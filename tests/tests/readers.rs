//! Tag and plate readers end to end: a simulated plate camera publishing
//! JSON to the building's own Mosquitto and a simulated serial RFID reader
//! on a pty → the gateway → pseudonymised `sighting` events on a second,
//! uplink Mosquitto. Both readers misbehave on demand; the serial one
//! disappears and returns. The raw plates and tags must appear nowhere that
//! leaves the gateway: not on the uplink, not in the outbox files, not in
//! the gateway's log.

use gridwatch_gateway::pseudonym::{IdentityKind, SiteKey};
use gridwatch_gateway::readers::Direction;
use gridwatch_gateway::GatewayConfig;
use gridwatch_simulators::readers::{LineFault, MqttFault, MqttReaderSim, SerialReaderSim};
use gridwatch_telemetry::{codec, Event, EventKind, SystemClock, Timestamp};
use gridwatch_tests::{Message, Mosquitto, Subscriber, TempDir};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SITE_KEY: &str = "end-to-end test site key, not a real one";
const PLATES: [&str; 2] = ["粤B12345", "京A67890"];
const TAGS: [&str; 3] = ["E2003412AB01", "E2003412AB02", "E2003412AB03"];

// Everything the gateway logs, at debug level, for the privacy check.
use gridwatch_tests::SharedBuffer as LogBuffer;

fn capture_logs() -> LogBuffer {
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "debug,rumqttc=info,mio=off,tokio=off",
        ))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    buffer
}

fn config(dir: &Path, local: u16, uplink: u16, serial_link: &Path) -> GatewayConfig {
    let key = dir.join("site.key");
    std::fs::write(&key, format!("{SITE_KEY}\n")).expect("write key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let text = format!(
        r#"
[gateway]
id = "gw-e2e"
site = "estate-e2e"
[mqtt]
host = "127.0.0.1"
port = {uplink}
[outbox]
dir = "{outbox}"
fsync_interval_ms = 50
[local_mqtt]
host = "127.0.0.1"
port = {local}
[pseudonym]
site_key_file = "{key}"

[[readers]]
id = "gate-cam"
protocol = "mqtt"
topic = "cam/+/plates"
location = "gate"
identity_kind = "plate"
[readers.json]
identity = "/result/plate"
direction = "result.dir"
direction_map = {{ "0" = "in", "1" = "out" }}
time = "/ts"
time_format = "rfc3339"

[[readers]]
id = "lobby-rfid"
protocol = "serial"
port = "{serial}"
baud = 9600
location = "lift_lobby"

[[edge.outputs]]
name = "lobby-buzzer"
gpio_bcm = 17
hold_ms = 2000
[[edge.rules]]
name = "ebike-in-lobby"
when_sighted_at = ["lift_lobby"]
fire = ["lobby-buzzer"]
"#,
        outbox = dir.join("outbox").display(),
        key = key.display(),
        serial = serial_link.display(),
    );
    GatewayConfig::from_toml_str(&text, "readers-e2e").unwrap_or_else(|e| panic!("{e}"))
}

fn events(messages: &[Message]) -> Vec<Event> {
    messages
        .iter()
        .filter(|m| m.topic.contains("/event/"))
        .map(|m| codec::decode::<Event>(&m.payload).expect("event decodes"))
        .collect()
}

fn sighting_of(e: &Event) -> Option<(&str, &str, Option<&str>)> {
    match &e.kind {
        EventKind::Sighting {
            location,
            identity,
            direction,
        } => Some((location, identity, direction.as_deref())),
        _ => None,
    }
}

/// The raw identities, and their digits alone (a plate's tail is
/// identifying too), that must not appear anywhere.
fn secrets() -> Vec<String> {
    let mut s: Vec<String> = PLATES
        .iter()
        .chain(TAGS.iter())
        .map(|x| x.to_string())
        .collect();
    s.extend(["12345".into(), "67890".into(), "3412AB".into()]);
    s
}

fn assert_no_raw_identity(what: &str, haystack: &[u8]) {
    let text = String::from_utf8_lossy(haystack);
    for secret in secrets() {
        assert!(
            !text.contains(&secret),
            "{what} contains the raw identity {secret:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_reach_the_uplink_as_pseudonymised_sightings_and_nothing_raw_leaks() {
    let logs = capture_logs();
    let Some(local) = Mosquitto::start() else {
        return;
    };
    let Some(uplink) = Mosquitto::start() else {
        return;
    };
    let dir = TempDir::new("readers-e2e");
    let link = dir.path().join("rfid0");
    let mut rfid = SerialReaderSim::open(&link).expect("pty");
    let cfg = config(dir.path(), local.port(), uplink.port(), &link);
    let key = SiteKey::from_bytes(SITE_KEY.as_bytes().to_vec()).expect("key");
    let plate_ids: Vec<String> = PLATES
        .iter()
        .map(|p| key.pseudonym(IdentityKind::Plate, p))
        .collect();
    let tag_ids: Vec<String> = TAGS
        .iter()
        .map(|t| key.pseudonym(IdentityKind::Tag, t))
        .collect();

    let mut sub = Subscriber::connect(uplink.port(), "e2e-uplink", &["gw/#"]).await;
    let camera =
        MqttReaderSim::connect("127.0.0.1", local.port(), "gate-cam-1", "cam/gate-1/plates")
            .await
            .expect("camera connects");
    let shutdown = CancellationToken::new();
    let gateway = tokio::spawn(gridwatch_gateway::run(
        cfg,
        Arc::new(SystemClock),
        shutdown.clone(),
    ));

    // The camera's messages reach the gateway once it has subscribed; until
    // then they are lost (as with a real camera), so repeat the first read.
    // Repeats within 10 s are reported once.
    let seen_ts = Timestamp::from_millis(1_772_374_503_120);
    let mut first = None;
    for _ in 0..50 {
        camera
            .read(PLATES[0], Some(Direction::In), seen_ts)
            .await
            .expect("publish");
        first = sub
            .next_matching(Duration::from_millis(200), |m| {
                m.topic.ends_with("/event/gate-cam")
            })
            .await;
        if first.is_some() {
            break;
        }
    }
    let first: Event =
        codec::decode(&first.expect("a gate sighting within 10 s").payload).expect("decodes");
    assert_eq!(first.ts, seen_ts, "the camera's own time is kept");
    assert_eq!(
        sighting_of(&first),
        Some(("gate", plate_ids[0].as_str(), Some("in")))
    );

    // Misbehaviour on both readers, between good reads.
    for fault in [
        MqttFault::MalformedJson,
        MqttFault::MissingIdentity,
        MqttFault::UnknownDirection,
        MqttFault::NotAnObject,
    ] {
        camera.inject(fault, seen_ts).await.expect("publish");
    }
    camera
        .read("京a 67890", Some(Direction::Out), seen_ts)
        .await
        .expect("publish");
    rfid.read(TAGS[0], Some(Direction::In)).expect("write");
    for fault in [
        LineFault::BadChecksum,
        LineFault::Truncated,
        LineFault::Garbage,
        LineFault::Overlong,
    ] {
        rfid.inject(fault).expect("write");
    }
    rfid.read(TAGS[1], None).expect("write");
    let mut messages = sub.collect_for(Duration::from_secs(2)).await;

    // The serial reader disappears and comes back on a new pty.
    rfid.disappear();
    let offline = sub
        .next_matching(Duration::from_secs(10), |m| {
            m.topic.ends_with("/event/lobby-rfid")
                && matches!(
                    codec::decode::<Event>(&m.payload).map(|e| e.kind),
                    Ok(EventKind::DeviceOffline { .. })
                )
        })
        .await
        .expect("the vanished reader is reported offline within 10 s");
    messages.push(offline);
    rfid.reappear().expect("new pty");
    rfid.read(TAGS[2], None).expect("write");
    let mut skipped = Vec::new();
    let back = sub
        .next_matching(Duration::from_secs(15), |m| {
            skipped.push(m.clone());
            codec::decode::<Event>(&m.payload)
                .is_ok_and(|e| sighting_of(&e).is_some_and(|(_, id, _)| id == tag_ids[2]))
        })
        .await
        .expect("a read after the reader returned arrives within 15 s");
    skipped.pop();
    messages.extend(skipped);
    messages.push(back);
    messages.extend(sub.collect_for(Duration::from_millis(500)).await);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), gateway)
        .await
        .expect("the gateway stops within 20 s")
        .expect("no panic")
        .expect("clean stop");

    let events = events(&messages);
    // Per reader, in order (the two readers' events may interleave).
    let sightings = |device: &str| -> Vec<(String, Option<String>)> {
        events
            .iter()
            .filter(|e| e.device.as_str() == device)
            .filter_map(|e| sighting_of(e))
            .map(|(l, i, d)| {
                assert_eq!(
                    l,
                    if device == "gate-cam" {
                        "gate"
                    } else {
                        "lift_lobby"
                    }
                );
                (i.to_owned(), d.map(str::to_owned))
            })
            .collect()
    };
    assert_eq!(
        sightings("gate-cam"),
        vec![(plate_ids[1].clone(), Some("out".to_owned()))],
        "the plate normalised; no faulty message became a sighting"
    );
    assert_eq!(
        sightings("lobby-rfid"),
        vec![
            (tag_ids[0].clone(), Some("in".to_owned())),
            (tag_ids[1].clone(), None),
            (tag_ids[2].clone(), None),
        ],
        "exactly the good lines, in order"
    );
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match &e.kind {
            EventKind::Sighting { .. } => "sighting",
            EventKind::RuleFired { .. } => "rule_fired",
            EventKind::DeviceOffline { .. } => "device_offline",
            EventKind::DeviceOnline => "device_online",
            _ => "other",
        })
        .collect();
    assert!(
        kinds.contains(&"rule_fired") && kinds.contains(&"device_online"),
        "the lobby sighting fired the edge rule and the reader came back: {kinds:?}"
    );
    for m in &messages {
        assert_no_raw_identity(&format!("uplink message on {}", m.topic), &m.payload);
    }

    // Nothing raw in the outbox files either.
    let mut outbox_bytes = 0;
    for entry in std::fs::read_dir(dir.path().join("outbox")).expect("outbox exists") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read outbox file");
        outbox_bytes += bytes.len();
        assert_no_raw_identity(&format!("outbox file {}", path.display()), &bytes);
    }
    assert!(outbox_bytes > 0, "the outbox held the events");

    // The log says what was wrong and where, and never whom.
    let log = logs.text();
    for expected in [
        "topic cam/gate-1/plates): the message is not JSON",
        "field identity (/result/plate) is missing",
        "field direction (result.dir) is \"9\"",
        "line 2): checksum is",
        "line 3): line has no checksum",
        "line is longer than 80 bytes",
        "tag reader lobby-rfid is offline",
        "edge rule ebike-in-lobby fired",
    ] {
        assert!(log.contains(expected), "log lacks {expected:?}:\n{log}");
    }
    assert_no_raw_identity("the gateway log", log.as_bytes());

    // Analytics ties the pseudonymised sighting to the flat whose register
    // entry was made with the same site key (as `gridwatch-gateway
    // pseudonym` makes it): an indoor-sighting alert for that flat.
    let register = gridwatch_analytics::register::Register::from_file(
        gridwatch_analytics::register::RegisterFile {
            flats: Vec::new(),
            tags: vec![gridwatch_analytics::register::TagEntry {
                identity: key.pseudonym(IdentityKind::Tag, TAGS[0]),
                flat: "estate-e2e/b1/1-302".into(),
            }],
            meters: Vec::new(),
        },
    );
    let analytics = gridwatch_analytics::AnalyticsConfig::from_toml_str(
        "[mqtt]\nhost = \"127.0.0.1\"\n",
        "analytics-e2e",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut pipeline = gridwatch_analytics::Pipeline::with_register(&analytics, register);
    let alerts: Vec<_> = events
        .iter()
        .flat_map(|e| pipeline.process_event(e))
        .collect();
    assert!(
        alerts.iter().any(|a| a.entity == "estate-e2e/b1/1-302"),
        "the registered tag's sighting in the lobby alerts its flat: {alerts:?}"
    );
}
