//! Running one scenario: its simulators as `gridwatch-sim pile` / `rtu`
//! processes driven through their control endpoints, a gateway with a
//! generated config and analytics on the embedded broker, the timeline,
//! and the alerts seen.

use super::file::{Scenario, SimKind, Simulator};
use super::verdict::SeenAlert;
use crate::broker::EmbeddedBroker;
use crate::demo::watch::{watch, Seen};
use crate::sim_clock::ScaledClock;
use crate::yard::{spawn_gateway_and_analytics, stop_tasks};
use anyhow::Context as _;
use gridwatch_telemetry::Clock;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};
use tokio_util::sync::CancellationToken;

/// Baud rate of the scenario's RTU lines: fast, so a poll takes a few ms.
const RTU_BAUD: u32 = 115_200;
/// How long alerts confirmed before the end may take to arrive (wall time).
const DELIVERY_GRACE: Duration = Duration::from_millis(1500);
/// How long a simulator may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A simulator process and how to reach it.
struct Running {
    id: String,
    child: Child,
    /// Modbus TCP address (pile) or pty path (rtu).
    endpoint: String,
    control: SocketAddr,
}

/// Starts one simulator and waits for the lines that say where it is.
async fn start_simulator(
    sim_binary: &Path,
    sim: &Simulator,
    speed: f64,
    verbose: bool,
) -> anyhow::Result<Running> {
    let mut cmd = Command::new(sim_binary);
    let kind = match sim.kind {
        SimKind::Pile => "pile",
        SimKind::Rtu => "rtu",
    };
    cmd.arg(kind);
    match sim.kind {
        SimKind::Pile => cmd
            .args(["--listen", "127.0.0.1:0", "--unit-id"])
            .arg(sim.unit.to_string()),
        SimKind::Rtu => cmd
            .args(["--baud", &RTU_BAUD.to_string(), "--units"])
            .arg(sim.unit.to_string()),
    };
    cmd.args(["--sockets", &sim.sockets.to_string()])
        .args(["--charger", &sim.charger])
        .args(["--speed", &speed.to_string()])
        .args(["--seed", &sim.seed.to_string()])
        .args(["--control", "127.0.0.1:0"]);
    // `--charging` with no value: no charger (left out, the default 1,2,3).
    cmd.arg("--charging");
    if !sim.charging.is_empty() {
        let charging: Vec<String> = sim.charging.iter().map(u16::to_string).collect();
        cmd.arg(charging.join(","));
    }
    for f in &sim.faults {
        cmd.args(["--fault", f]);
    }
    cmd.env(
        "RUST_LOG",
        if verbose { "info" } else { "warn,rumqttd=off" },
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {} {kind}", sim_binary.display()))?;
    let stdout = child.stdout.take().context("simulator stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let (endpoint, control) = tokio::time::timeout(START_TIMEOUT, endpoints(&mut lines, sim.kind))
        .await
        .map_err(|_| anyhow::anyhow!("it said nothing for {} s", START_TIMEOUT.as_secs()))
        .and_then(|r| r)
        .with_context(|| format!("simulator {} ({kind})", sim.id))?;
    drain(lines);
    Ok(Running {
        id: sim.id.clone(),
        child,
        endpoint,
        control,
    })
}

/// Reads a starting simulator's stdout up to the line naming its control
/// endpoint: its Modbus TCP address (pile) or pty path (rtu, the first line)
/// and the control endpoint's address.
async fn endpoints(
    lines: &mut Lines<BufReader<ChildStdout>>,
    kind: SimKind,
) -> anyhow::Result<(String, SocketAddr)> {
    let mut endpoint = None;
    loop {
        let Some(line) = lines.next_line().await? else {
            anyhow::bail!("it exited before saying where it listens");
        };
        if let Some(addr) = line.strip_prefix("control endpoint on ") {
            let control: SocketAddr = addr.trim().parse()?;
            let endpoint = endpoint.context("no Modbus address before the control line")?;
            return Ok((endpoint, control));
        }
        match kind {
            SimKind::Pile => {
                if let Some(addr) = line.strip_prefix("Modbus TCP on ") {
                    // Checked here, so the gateway config can trust it.
                    let addr: SocketAddr = addr.trim().parse()?;
                    endpoint = Some(addr.to_string());
                }
            }
            SimKind::Rtu if endpoint.is_none() => endpoint = Some(line.trim().to_string()),
            SimKind::Rtu => {}
        }
    }
}

/// Keeps reading a simulator's stdout so it never blocks on a full pipe.
fn drain(mut lines: Lines<BufReader<ChildStdout>>) {
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
}

/// The gateway config an installer would write for these simulators.
fn gateway_toml(s: &Scenario, broker: SocketAddr, sims: &[Running]) -> String {
    let mut text = format!(
        "[gateway]\nid = \"{}\"\nsite = \"{}\"\nbuilding = \"scenario\"\n\n[mqtt]\nhost = \"{}\"\nport = {}\n",
        s.gateway,
        s.site,
        broker.ip(),
        broker.port()
    );
    for (sim, run) in s.simulators.iter().zip(sims) {
        let device = format!(
            "\n[[devices]]\nid = \"{}\"\nprofile = \"gridwatch-ebp12\"\nunit_id = {}\npoll_interval_ms = {}\n",
            sim.id, sim.unit, s.poll_interval_ms
        );
        match sim.kind {
            SimKind::Pile => {
                // `endpoints` checked it is an address; rsplit keeps IPv6 whole.
                let (host, port) = run
                    .endpoint
                    .rsplit_once(':')
                    .unwrap_or((&run.endpoint, "0"));
                text.push_str(&device);
                text.push_str(&format!(
                    "protocol = \"modbus_tcp\"\nhost = \"{}\"\nport = {port}\ntimeout_ms = 1000\n",
                    host.trim_matches(['[', ']'])
                ));
            }
            SimKind::Rtu => {
                text.push_str(&format!(
                    "\n[[buses]]\nid = \"bus-{}\"\nport = \"{}\"\nbaud = {RTU_BAUD}\ntimeout_ms = 100\nretries = 1\n",
                    sim.id,
                    run.endpoint.replace('\\', "\\\\").replace('"', "\\\"")
                ));
                text.push_str(&device);
                text.push_str(&format!(
                    "protocol = \"modbus_rtu\"\nbus = \"bus-{}\"\n",
                    sim.id
                ));
            }
        }
    }
    text
}

/// Sends one timeline command over a simulator's control connection and
/// reads its answer line.
async fn send(
    conn: &mut (
        tokio::io::WriteHalf<TcpStream>,
        Lines<BufReader<tokio::io::ReadHalf<TcpStream>>>,
    ),
    command: &str,
) -> anyhow::Result<String> {
    conn.0.write_all(format!("{command}\n").as_bytes()).await?;
    let answer = tokio::time::timeout(Duration::from_secs(5), conn.1.next_line())
        .await
        .context("no answer within 5 s")??
        .context("the simulator closed its control connection")?;
    match answer.strip_prefix("ok ") {
        Some(done) => Ok(done.to_string()),
        None => anyhow::bail!("{}", answer.trim_start_matches("error ")),
    }
}

/// What a run produced: the alerts seen and what happened on the way.
pub struct Played {
    /// Each alert once (by id), in arrival order.
    pub alerts: Vec<SeenAlert>,
    /// One line per timeline step carried out.
    pub log: Vec<String>,
}

/// Plays `s` and returns the alerts seen. Errors are the scenario's
/// breakage (a simulator that did not start, a refused command), not
/// expectations unmet.
pub async fn play(s: &Scenario, sim_binary: &Path, verbose: bool) -> anyhow::Result<Played> {
    let broker = EmbeddedBroker::start()?;
    let mut sims = Vec::new();
    for sim in &s.simulators {
        sims.push(start_simulator(sim_binary, sim, s.speed, verbose).await?);
    }
    let analytics_text = s.analytics_toml(broker.addr());
    let gateway_text = gateway_toml(s, broker.addr(), &sims);
    if verbose {
        println!("gateway config:\n{gateway_text}\nanalytics config:\n{analytics_text}");
    }
    let gateway =
        gridwatch_gateway::GatewayConfig::from_toml_str(&gateway_text, "scenario gateway config")?;
    let analytics = gridwatch_analytics::AnalyticsConfig::from_toml_str(
        &analytics_text,
        "scenario analytics config (with its `analytics` key)",
    )?;
    let mut controls = BTreeMap::new();
    for run in &sims {
        let stream = TcpStream::connect(run.control).await.with_context(|| {
            format!(
                "connecting to {}'s control endpoint {}",
                run.id, run.control
            )
        })?;
        let (read, write) = tokio::io::split(stream);
        controls.insert(run.id.clone(), (write, BufReader::new(read).lines()));
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    let watcher = watch(broker.port(), tx).await?;
    let shutdown = CancellationToken::new();
    let start_ts = gridwatch_telemetry::SystemClock.now();
    let clock = ScaledClock::new(start_ts, s.speed);
    let started = Instant::now();
    let (tasks, _api) = spawn_gateway_and_analytics(
        gateway,
        analytics,
        Arc::new(clock) as Arc<dyn Clock>,
        &shutdown,
    );
    let sim_s = |t: Instant| (t - started).as_secs_f64() * s.speed;
    let mut steps: Vec<_> = s.timeline.iter().collect();
    steps.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    let mut steps = steps.into_iter().peekable();
    let end = started + Duration::from_secs_f64(s.duration() / s.speed);
    let (mut alerts, mut ids, mut log) = (Vec::new(), BTreeSet::new(), Vec::new());
    let outcome: anyhow::Result<()> = async {
        loop {
            let now = Instant::now();
            while let Some(step) = steps.next_if(|st| sim_s(now) >= st.at_s && now < end) {
                let conn = controls
                    .get_mut(&step.simulator)
                    .with_context(|| format!("no simulator {:?}", step.simulator))?;
                let done = send(conn, &step.command).await.with_context(|| {
                    format!(
                        "timeline at {} s: {} refused {:?}",
                        step.at_s, step.simulator, step.command
                    )
                })?;
                log.push(format!(
                    "[{:>7.1} s] {}: {done}",
                    sim_s(now),
                    step.simulator
                ));
            }
            if now >= end + DELIVERY_GRACE {
                return Ok(());
            }
            let wait = Duration::from_millis(20);
            match tokio::time::timeout(wait, rx.recv()).await {
                Ok(Some(Seen::Alert(a))) if ids.insert(a.id.clone()) => {
                    // The alert's own time (the reading that confirmed it,
                    // stamped on the scenario's clock), not its arrival: a
                    // busy machine delays delivery, not the evidence.
                    let at_s = (a.ts.0 - start_ts.0) as f64 / 1000.0;
                    if at_s > s.duration() {
                        continue;
                    }
                    if verbose {
                        println!(
                            "[{at_s:>7.1} s] alert {} on {}: {}",
                            a.rule, a.entity, a.title
                        );
                    }
                    alerts.push(SeenAlert {
                        rule: a.rule,
                        entity: a.entity,
                        at_s,
                        title: a.title,
                    });
                }
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => anyhow::bail!("lost the runner's own MQTT subscription"),
            }
        }
    }
    .await;
    shutdown.cancel();
    let stopped = stop_tasks(tasks).await;
    watcher.abort();
    for mut run in sims {
        let _ = run.child.start_kill();
        let _ = run.child.wait().await;
    }
    outcome?;
    stopped?;
    Ok(Played { alerts, log })
}

/// The `gridwatch-sim` binary to start simulators with: this one.
pub fn this_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("finding the gridwatch-sim binary")
}
