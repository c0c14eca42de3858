//! The outbox and MQTT uplink under faults, against a real Mosquitto: the
//! broker stopped during steady publishing, the gateway killed with SIGKILL,
//! and a tiny outbox cap during an outage.

mod support;

use gridwatch_gateway::outbox::Outbox;
use gridwatch_gateway::uplink::mqtt;
use gridwatch_gateway::GatewayConfig;
use gridwatch_telemetry::{GatewayState, ManualClock, Timestamp};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use support::{config_text, outbox_dir, start_pile, Broker, Collector};
use tokio_util::sync::CancellationToken;

fn filters(gateway: &str) -> Vec<String> {
    vec![format!("gw/yard-t/{gateway}/#")]
}

/// Reopens a stopped gateway's outbox: (records not yet delivered, next seq of pile-1).
fn outbox_after(dir: &std::path::Path, config: &GatewayConfig) -> (u64, Option<u64>) {
    let (o, _) = Outbox::open(config.outbox.options(dir.to_owned()), &[mqtt::NAME]).unwrap();
    (o.stats().pending, o.next_seq("pile-1"))
}

/// The seq ranges of pile-1 the gateway announced as never used.
fn announced_gaps(c: &Collector) -> Vec<(u64, u64)> {
    let mut gaps: Vec<(u64, u64)> = c
        .statuses
        .iter()
        .flat_map(|s| s.seq_gaps.iter())
        .filter(|g| g.device.as_str() == "pile-1")
        .map(|g| (g.from, g.to))
        .collect();
    gaps.sort();
    gaps.dedup();
    gaps
}

/// Asserts every seq in `first..next` arrived or was announced as never
/// used, and that no announced seq arrived.
fn assert_every_seq_or_announced(c: &Collector, first: u64, next: u64) {
    let seen = c.distinct();
    let gaps = announced_gaps(c);
    let announced = |s: u64| gaps.iter().any(|&(a, b)| a <= s && s <= b);
    let missing: Vec<u64> = (first..next)
        .filter(|&s| !seen.contains_key(&s) && !announced(s))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "seqs neither delivered nor announced (first 10): {missing:?}; gaps {gaps:?}"
    );
    let both: Vec<u64> = seen.keys().copied().filter(|&s| announced(s)).collect();
    assert!(
        both.is_empty(),
        "seqs announced as unused but delivered: {both:?}"
    );
    assert!(
        seen.keys().all(|&s| (first..next).contains(&s)),
        "seqs outside {first}..{next}"
    );
}

/// Asserts the distinct seqs seen are exactly `first..next`.
fn assert_every_seq(c: &Collector, first: u64, next: u64) {
    let seqs: Vec<u64> = c.distinct().keys().copied().collect();
    let missing: Vec<u64> = (first..next)
        .filter(|s| !seqs.contains(s))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "seqs never delivered (first 10): {missing:?}"
    );
    assert_eq!(
        seqs.len() as u64,
        next - first,
        "seqs outside {first}..{next}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_loses_nothing_and_every_seq_arrives() {
    support::init_logs();
    let mut broker = Broker::start().await;
    let (pile, device, _pile_stop) = start_pile().await;
    let root = tempfile::tempdir().unwrap();
    let dir = outbox_dir(&root);
    let mut sub = Collector::connect(broker.port, "t-outage", &filters("gw-out")).await;

    let text = config_text(
        broker.port,
        pile,
        "gw-out",
        &dir,
        "fsync_interval_ms = 100",
        "",
    );
    let config = GatewayConfig::from_toml_str(&text, "test").unwrap();
    let start = Timestamp(1_764_000_000_000);
    let shutdown = CancellationToken::new();
    let gw = tokio::spawn(gridwatch_gateway::run(
        config.clone(),
        Arc::new(ManualClock::new(start)),
        shutdown.clone(),
    ));

    assert!(
        sub.collect_until(Duration::from_secs(15), |c| c.seen.len() >= 30)
            .await,
        "30 records before the outage"
    );
    broker.stop();
    // ~20 polls × 3 records wait in the outbox meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.resume().await;
    sub.collect_for(Duration::from_secs(4)).await;
    // No more readings; the uplink catches up before the gateway stops.
    device.silence();
    sub.collect_for(Duration::from_secs(2)).await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), gw)
        .await
        .expect("run returns after shutdown")
        .unwrap()
        .unwrap();
    sub.collect_for(Duration::from_secs(1)).await;

    let (pending, next) = outbox_after(&dir, &config);
    assert_eq!(
        pending, 0,
        "everything was delivered before the gateway stopped"
    );
    let next = next.expect("the outbox counted pile-1");
    let first = start.millis() as u64 * 1000;
    assert!(
        next - first > 120,
        "polling went on during the outage: {}",
        next - first
    );
    assert_every_seq(&sub, first, next);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_at_most_the_fsync_window_and_cursors_resume() {
    support::init_logs();
    let broker = Broker::start().await;
    let (pile_addr, pile, _pile_stop) = start_pile().await;
    let root = tempfile::tempdir().unwrap();
    let dir = outbox_dir(&root);
    let mut sub = Collector::connect(broker.port, "t-kill", &filters("gw-kill")).await;
    let fsync_ms = 200u64;
    let text = config_text(
        broker.port,
        pile_addr,
        "gw-kill",
        &dir,
        &format!("fsync_interval_ms = {fsync_ms}"),
        "inflight = 16",
    );
    let conf = root.path().join("gateway.toml");
    std::fs::write(&conf, &text).unwrap();
    let config = GatewayConfig::load(&conf).unwrap();
    let gateway = || {
        Command::new(env!("CARGO_BIN_EXE_gridwatch-gateway"))
            .arg("run")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };

    let mut first = gateway();
    assert!(
        sub.collect_until(Duration::from_secs(15), |c| c.seen.len() >= 150)
            .await,
        "150 records before the kill"
    );
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let polls_before_kill = pile.polls();
    let killed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    sub.collect_for(Duration::from_millis(500)).await;
    let seen_before_restart = sub.seen.len();

    let mut second = gateway();
    sub.collect_for(Duration::from_secs(3)).await;
    pile.silence();
    sub.collect_for(Duration::from_secs(2)).await;
    support::terminate(&mut second);
    assert!(
        second.wait().unwrap().success(),
        "a clean stop after SIGTERM"
    );
    sub.collect_for(Duration::from_secs(1)).await;

    // No seq used twice for different messages (checked by distinct()), and
    // none missing: every seq arrived or was announced as never used (the
    // rest of the block reserved before the kill).
    let (pending, next) = outbox_after(&dir, &config);
    assert_eq!(pending, 0);
    let distinct = sub.distinct();
    let first_seq = *distinct.keys().next().unwrap();
    assert_every_seq_or_announced(&sub, first_seq, next.unwrap());
    assert_eq!(
        announced_gaps(&sub).len(),
        1,
        "the kill skipped one block's rest"
    );

    // Lost: what the pile answered before the kill, less what arrived.
    let stamped_before = distinct.values().filter(|s| s.ts < killed_at).count() as u64;
    let polled_before = polls_before_kill * 3;
    let lost = polled_before.saturating_sub(stamped_before);
    // One fsync window of polls (every 50 ms), plus one poll in flight and one
    // commit in progress.
    let bound = (fsync_ms / 50 + 2) * 3;
    assert!(
        lost <= bound,
        "lost {lost} records at SIGKILL; the fsync window allows {bound}"
    );

    // Cursors resumed: only the unconfirmed tail was sent again.
    let dups = sub.duplicates();
    let allowed = 16 + 2 * (fsync_ms as usize / 50 + 1) * 3;
    assert!(
        dups <= allowed,
        "{dups} duplicates after restart (of {seen_before_restart} before); at most {allowed} expected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_cap_drops_the_oldest_counts_and_reports_them_and_polling_goes_on() {
    support::init_logs();
    let mut broker = Broker::start().await;
    let (pile, device, _pile_stop) = start_pile().await;
    let root = tempfile::tempdir().unwrap();
    let dir = outbox_dir(&root);
    // Subscribe first (the session is kept), then take the broker away.
    let mut sub = Collector::connect(broker.port, "t-cap", &filters("gw-cap")).await;
    broker.stop();

    let text = config_text(
        broker.port,
        pile,
        "gw-cap",
        &dir,
        "fsync_interval_ms = 100\nmax_bytes = 65536\nsegment_bytes = 4096",
        "",
    );
    let config = GatewayConfig::from_toml_str(&text, "test").unwrap();
    let start = Timestamp(1_764_000_000_000);
    let shutdown = CancellationToken::new();
    let gw = tokio::spawn(gridwatch_gateway::run(
        config.clone(),
        Arc::new(ManualClock::new(start)),
        shutdown.clone(),
    ));
    // About 60 records (300 bytes each) a second: 64 KiB fill in ~4 s.
    tokio::time::sleep(Duration::from_secs(7)).await;
    broker.resume().await;
    assert!(
        sub.collect_until(Duration::from_secs(15), |c| {
            c.statuses.iter().any(|s| s.state == GatewayState::Online)
        })
        .await,
        "online status after the broker returned"
    );
    sub.collect_for(Duration::from_secs(2)).await;
    device.silence();
    sub.collect_for(Duration::from_secs(2)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), gw)
        .await
        .expect("run returns after shutdown")
        .unwrap()
        .unwrap();
    sub.collect_for(Duration::from_secs(1)).await;

    let online = sub
        .statuses
        .iter()
        .find(|s| s.state == GatewayState::Online)
        .unwrap();
    assert!(
        online.outbox_dropped > 0,
        "the status reports the dropped records: {online:?}"
    );
    let (pending, next) = outbox_after(&dir, &config);
    assert_eq!(pending, 0);
    let produced = next.unwrap() - start.millis() as u64 * 1000;
    let delivered = sub.distinct().len() as u64;
    let dropped = sub.statuses.iter().map(|s| s.outbox_dropped).max().unwrap();
    assert!(
        delivered + dropped >= produced,
        "{delivered} delivered + {dropped} dropped < {produced} produced"
    );
    // The oldest went, the newest stayed: the last record polled arrived.
    let last = sub.distinct().keys().next_back().copied().unwrap();
    assert_eq!(last + 1, next.unwrap());
    // Polling went on: more was produced than the cap could ever hold.
    assert!(produced > 300, "{produced}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_while_the_broker_is_connected_are_reported_in_the_status() {
    support::init_logs();
    let broker = Broker::start().await;
    let (pile, _device, _pile_stop) = start_pile().await;
    let root = tempfile::tempdir().unwrap();
    let dir = outbox_dir(&root);
    let mut sub = Collector::connect(broker.port, "t-drop", &filters("gw-drop")).await;
    // InfluxDB never answers (nothing listens), so its cursor pins the outbox.
    let closed = support::free_port().await;
    let text = config_text(
        broker.port,
        pile,
        "gw-drop",
        &dir,
        "fsync_interval_ms = 100\nmax_bytes = 65536\nsegment_bytes = 4096",
        "",
    ) + &format!("[influx]\nurl = \"http://127.0.0.1:{closed}\"\napi = \"v1\"\ndb = \"gw\"\nretry_max_ms = 1000\n");
    let config = GatewayConfig::from_toml_str(&text, "test").unwrap();
    let shutdown = CancellationToken::new();
    let gw = tokio::spawn(gridwatch_gateway::run(
        config,
        Arc::new(gridwatch_telemetry::SystemClock),
        shutdown.clone(),
    ));
    let reported = sub
        .collect_until(Duration::from_secs(30), |c| {
            c.statuses
                .iter()
                .any(|s| s.state == GatewayState::Online && s.outbox_dropped > 0)
        })
        .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), gw)
        .await
        .expect("run returns after shutdown")
        .unwrap()
        .unwrap();
    assert!(
        reported,
        "an online status with outbox_dropped > 0 while connected: {:?}",
        sub.statuses
    );
    // MQTT itself kept delivering meanwhile.
    assert!(sub.seen.len() > 100, "{} records on MQTT", sub.seen.len());
}

/// Kills in the drill below: the 20 cycles, about 15 s in all.
const KILLS: usize = 20;

/// The kill -9 drill: each restart goes on past the seqs reserved before the
/// kill and announces the unused rest, so over all runs no seq is used twice
/// and every seq arrived or was announced; and what the pile answered but
/// never arrived is within what a kill -9 may lose (the poll in flight: the
/// page cache keeps everything written, synced or not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sigkills_reuse_no_seq_announce_every_gap_and_lose_at_most_a_poll_each() {
    support::init_logs();
    let broker = Broker::start().await;
    let (pile_addr, pile, _pile_stop) = start_pile().await;
    let root = tempfile::tempdir().unwrap();
    let dir = outbox_dir(&root);
    let mut sub = Collector::connect(broker.port, "t-drill", &filters("gw-drill")).await;
    let text = config_text(
        broker.port,
        pile_addr,
        "gw-drill",
        &dir,
        "",
        "inflight = 16",
    );
    let conf = root.path().join("gateway.toml");
    std::fs::write(&conf, &text).unwrap();
    let config = GatewayConfig::load(&conf).unwrap();
    let gateway = || {
        Command::new(env!("CARGO_BIN_EXE_gridwatch-gateway"))
            .arg("run")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    for kill in 1..=KILLS {
        let mut g = gateway();
        let want = sub.distinct().len() + 30;
        assert!(
            sub.collect_until(Duration::from_secs(15), |c| c.distinct().len() >= want)
                .await,
            "30 more records before kill {kill}"
        );
        g.kill().unwrap(); // SIGKILL
        g.wait().unwrap();
    }
    let mut last = gateway();
    let want = sub.distinct().len() + 30;
    assert!(
        sub.collect_until(Duration::from_secs(15), |c| c.distinct().len() >= want)
            .await
    );
    pile.silence();
    sub.collect_for(Duration::from_secs(2)).await;
    support::terminate(&mut last);
    assert!(last.wait().unwrap().success(), "a clean stop after SIGTERM");
    sub.collect_for(Duration::from_secs(1)).await;

    let (pending, next) = outbox_after(&dir, &config);
    assert_eq!(pending, 0);
    let first = *sub.distinct().keys().next().unwrap();
    assert_every_seq_or_announced(&sub, first, next.unwrap());
    assert_eq!(
        announced_gaps(&sub).len(),
        KILLS,
        "one announced gap per kill"
    );

    // Each answered poll makes three readings (the pile and its two
    // sockets); a kill loses at most the poll in flight and one queued.
    let delivered = sub
        .distinct()
        .values()
        .filter(|s| s.payload.windows(8).any(|w| w == b"\"values\""))
        .count() as u64;
    let produced = pile.polls() * 3;
    let lost = produced.saturating_sub(delivered);
    eprintln!("{KILLS} kills: {lost} of {produced} readings lost");
    assert!(
        lost <= KILLS as u64 * 2 * 3,
        "{lost} of {produced} readings lost over {KILLS} kills"
    );
}
