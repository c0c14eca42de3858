//! `gridwatch-sim demo`: the whole chain in one process, on loopback, with
//! nothing installed — an embedded broker, a simulated yard (pile, gateway,
//! analytics), a fault injected after a while, and the alert printed as a
//! grid staff member would read it.
//!
//! The demo reads alerts from the broker like any other consumer, so what it
//! prints has really crossed MQTT.

use crate::broker::EmbeddedBroker;
use crate::pile::Fault;
use crate::yard::{Yard, YardOptions};
use anyhow::Context as _;
use gridwatch_telemetry::topic::{TopicKind, Topics};
use gridwatch_telemetry::{codec, Alert, Event, EventKind, GatewayState, Reading, Status};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Which fault the demo injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoFault {
    /// A charger drawing about 7 A (1.6 kW) on an e-bike socket.
    Overcurrent,
    /// A socket heating up by about 3 °C per minute towards 80 °C.
    Overtemp,
}

/// Options of the demo.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// The fault to inject.
    #[arg(long, value_enum, default_value = "overcurrent")]
    pub fault: DemoFault,
    /// Socket that gets the fault (a charging one: 1, 2 or 4).
    #[arg(long, default_value_t = 2)]
    pub socket: u16,
    /// Wall-clock seconds before the fault is injected.
    #[arg(long, default_value_t = 10)]
    pub fault_after_s: u64,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 30.0)]
    pub speed: f64,
    /// Give up if no alert arrives within this many wall-clock seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// Keep running after the alert (until Ctrl-C).
    #[arg(long)]
    pub keep_running: bool,
    /// Seconds between the pile status lines.
    #[arg(long, default_value_t = 5)]
    pub status_every_s: u64,
}

/// What the demo observed, for tests.
#[derive(Debug)]
pub struct DemoOutcome {
    /// Alerts received from the broker.
    pub alerts: Vec<Alert>,
    /// Wall time from fault injection to the first alert.
    pub time_to_alert: Option<Duration>,
}

enum Seen {
    Reading(Box<Reading>),
    Event(Event),
    Status(Status),
    Alert(Box<Alert>),
}

/// Runs the demo, writing what happens to `out`.
pub async fn run(opts: &DemoOptions, out: &mut (impl Write + Send)) -> anyhow::Result<DemoOutcome> {
    let broker = EmbeddedBroker::start()?;
    let mut yard_opts = YardOptions::new(broker.addr());
    yard_opts.speed = opts.speed;
    if !yard_opts.plugged.iter().any(|(s, _)| *s == opts.socket) {
        anyhow::bail!(
            "socket {} has no charger in the demo yard; choose one of {:?}",
            opts.socket,
            yard_opts
                .plugged
                .iter()
                .map(|(s, _)| *s)
                .collect::<Vec<_>>()
        );
    }
    let (tx, mut rx) = mpsc::channel(1024);
    let _watcher = watch(broker.port(), tx).await?;
    let yard = Yard::start(&yard_opts).await?;
    let started = Instant::now();

    writeln!(
        out,
        "Gridwatch demo: everything runs in this process, on 127.0.0.1 only."
    )?;
    writeln!(out, "  MQTT broker (embedded)     {}", broker.addr())?;
    writeln!(
        out,
        "  charging pile simulator    {} (Modbus TCP, {} sockets, chargers on {})",
        yard.pile_addr,
        yard_opts.sockets,
        yard_opts
            .plugged
            .iter()
            .map(|(s, k)| format!("#{s} {k:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(
        out,
        "  gateway {}       polls {} every {} ms, publishes to gw/{}/{}/…",
        yard_opts.gateway,
        yard_opts.device,
        yard_opts.poll_interval_ms,
        yard_opts.site,
        yard_opts.gateway
    )?;
    writeln!(
        out,
        "  analytics                  site {} → grid cell {}",
        yard_opts.site, yard_opts.cell
    )?;
    writeln!(
        out,
        "  simulated time runs {}x faster than the wall clock; a fault is injected after {} s\n",
        opts.speed, opts.fault_after_s
    )?;

    let fault_at = started + Duration::from_secs(opts.fault_after_s);
    let deadline = fault_at + Duration::from_secs(opts.timeout_s);
    let mut injected_at: Option<Instant> = None;
    let mut latest: BTreeMap<u16, Reading> = BTreeMap::new();
    let mut next_status = started + Duration::from_secs(opts.status_every_s.max(1));
    let mut alerts: Vec<Alert> = Vec::new();
    let mut time_to_alert = None;
    let mut finish_at: Option<Instant> = None;

    let outcome = loop {
        let now = Instant::now();
        if injected_at.is_none() && now >= fault_at {
            let (fault, words) = match opts.fault {
                DemoFault::Overcurrent => (
                    Fault::Overcurrent,
                    "now draws about 7 A (1.6 kW): far too strong for an e-bike charger",
                ),
                DemoFault::Overtemp => (
                    Fault::OverTemperature,
                    "starts heating up by about 3 °C per simulated minute",
                ),
            };
            yard.inject(opts.socket, fault)?;
            injected_at = Some(now);
            writeln!(
                out,
                "[{:>5.1} s] FAULT INJECTED: socket {} of {} {words}",
                secs(started),
                opts.socket,
                yard_opts.device
            )?;
        }
        if now >= next_status {
            if !latest.is_empty() {
                writeln!(
                    out,
                    "[{:>5.1} s] {}",
                    secs(started),
                    pile_line(&yard_opts.device, &latest)
                )?;
            }
            next_status = now + Duration::from_secs(opts.status_every_s.max(1));
        }
        if let Some(f) = finish_at {
            if now >= f {
                break Ok(());
            }
        } else if now >= deadline {
            break Err(anyhow::anyhow!(
                "no alert arrived within {} s of the fault; something in the chain is broken (rerun with RUST_LOG=info to see the gateway and analytics logs)",
                opts.timeout_s
            ));
        }
        let wait = Duration::from_millis(200);
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(Seen::Reading(r))) => {
                if let Some(s) = r.socket {
                    latest.insert(s, *r);
                }
            }
            Ok(Some(Seen::Status(s))) => {
                let state = match s.state {
                    GatewayState::Online => "online",
                    GatewayState::Offline => "offline",
                };
                writeln!(
                    out,
                    "[{:>5.1} s] gateway {} is {state} ({} of {} devices answering)",
                    secs(started),
                    s.gateway,
                    s.devices_online,
                    s.devices_total
                )?;
            }
            Ok(Some(Seen::Event(e))) => {
                let what = match &e.kind {
                    EventKind::DeviceOffline { reason } => format!("went offline: {reason}"),
                    EventKind::DeviceOnline => "answers".to_string(),
                    EventKind::DeviceError { message } => format!("error: {message}"),
                    other => format!("{other:?}"),
                };
                writeln!(out, "[{:>5.1} s] {} {what}", secs(started), e.device)?;
            }
            Ok(Some(Seen::Alert(a))) => {
                if time_to_alert.is_none() {
                    time_to_alert = injected_at.map(|t| t.elapsed());
                }
                writeln!(
                    out,
                    "\n[{:>5.1} s] ALERT on alerts/{}/{}",
                    secs(started),
                    a.cell,
                    a.severity
                )?;
                writeln!(out, "{}", gridwatch_analytics::render_alert(&a))?;
                alerts.push(*a);
                if !opts.keep_running && finish_at.is_none() {
                    // Let related alerts of the same fault (e.g. overpower) arrive too.
                    finish_at = Some(Instant::now() + Duration::from_secs(3));
                }
            }
            Ok(None) => break Err(anyhow::anyhow!("lost the demo's own MQTT subscription")),
            Err(_) => {}
        }
    };
    yard.stop().await?;
    outcome?;
    if let Some(t) = time_to_alert {
        writeln!(
            out,
            "Demo finished: {} alert(s); the first arrived {:.1} s (wall clock) after the fault was injected.",
            alerts.len(),
            t.as_secs_f64()
        )?;
    }
    Ok(DemoOutcome {
        alerts,
        time_to_alert,
    })
}

fn secs(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

fn pile_line(device: &str, latest: &BTreeMap<u16, Reading>) -> String {
    let parts: Vec<String> = latest
        .iter()
        .map(|(s, r)| {
            let state = match r.value("state").unwrap_or(-1.0) as i64 {
                0 => "idle",
                1 => "plugged",
                2 => "charging",
                3 => "full",
                4 => "finished",
                5 => "fault",
                _ => "?",
            };
            if state == "idle" {
                format!("#{s} idle")
            } else {
                format!(
                    "#{s} {state} {:.0} W {:.2} A {:.1} °C",
                    r.value("power_w").unwrap_or(0.0),
                    r.value("current_a").unwrap_or(0.0),
                    r.value("temperature_c").unwrap_or(0.0)
                )
            }
        })
        .collect();
    format!("{device}: {}", parts.join(" | "))
}

/// Subscribes to everything the demo shows and forwards it, decoded.
async fn watch(port: u16, tx: mpsc::Sender<Seen>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut opts = MqttOptions::new("gridwatch-demo-console", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(10));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let topics = Topics::default();
    for filter in [
        "alerts/#".to_string(),
        topics.all_readings(),
        topics.all_events(),
        topics.all_status(),
    ] {
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .context("subscribing the demo console")?;
    }
    Ok(tokio::spawn(async move {
        let _client = client;
        loop {
            match eventloop.poll().await {
                Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                    let seen = if p.topic.starts_with("alerts/") {
                        codec::decode::<Alert>(&p.payload)
                            .ok()
                            .map(|a| Seen::Alert(Box::new(a)))
                    } else {
                        match topics.parse(&p.topic).map(|t| t.kind) {
                            Some(TopicKind::Reading) => codec::decode::<Reading>(&p.payload)
                                .ok()
                                .map(|r| Seen::Reading(Box::new(r))),
                            Some(TopicKind::Event) => {
                                codec::decode::<Event>(&p.payload).ok().map(Seen::Event)
                            }
                            Some(TopicKind::Status) => {
                                codec::decode::<Status>(&p.payload).ok().map(Seen::Status)
                            }
                            _ => None,
                        }
                    };
                    if let Some(seen) = seen {
                        if tx.send(seen).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }))
}
