//! The district live: its flats' meters on Modbus TCP, read by the real
//! gateway at accelerated time, so the readings analytics gets have gone
//! through the same devices → Modbus → gateway → MQTT path as in the field.
//!
//! The recording is the model: as a [`ScaledClock`] passes each recorded
//! reading's timestamp, its values are written into that meter's registers
//! (interval values and counters alike). Per building one server per meter
//! kind (as a meter cabinet behind a TCP-to-RS-485 box: the flat's index is
//! the unit id) answers from those registers, and one in-process gateway per
//! building (the real `gridwatch_gateway::run`, with a ScaledClock of the
//! same speed) polls every meter at the district's interval scaled by the
//! speed and publishes to the broker. A meter with no recorded reading for
//! more than 1¼ of its interval (a gap or an outage in the district) answers
//! with exception 0x0B, as a dead meter behind such a box does, so the
//! gateway publishes nothing for it rather than stale values.
//!
//! The meters use the `gridwatch-flat-em/wm/gm` profiles in `config/devices/`,
//! whose value names are those of the recording and the detectors. With
//! [`WaterGas::Cjt188`] the water and gas meters are CJ/T 188 meters on a
//! pseudo-terminal line per building and kind instead ([`cjt188_line`]).
//! Tag sightings and the yards' charging piles are not played: see
//! docs/detection-evaluation.md.

mod cabinet;
mod capture;
mod cjt188_line;
mod player;

pub use cjt188_line::{check_scenario, WaterGas};

use capture::watch_readings;

use super::{generate, Scenario};
use crate::meter::{MeterModel, MeterService, SharedMeter};
use crate::sim_clock::ScaledClock;
use anyhow::{bail, Context as _};
use gridwatch_analytics::evaluate::truth::GroundTruth;
use gridwatch_analytics::recording::{Record, RecordReader};
use gridwatch_analytics::register::RegisterFile;
use gridwatch_gateway::profile::ProfileLibrary;
use gridwatch_telemetry::topic::Topics;
use gridwatch_telemetry::{codec, Clock, DeviceKind, Reading, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use tokio_modbus::server::Service;
use tokio_modbus::{ExceptionCode, Response, SlaveRequest};
use tokio_util::sync::CancellationToken;

const DAY_MS: i64 = 86_400_000;
/// The shortest poll interval the gateway accepts (its config's bound).
const MIN_POLL_MS: u64 = 50;
/// Highest Modbus unit id.
const MAX_UNITS: usize = 247;

/// The meter kinds of a flat: recording device prefix, profile, reading kind.
const METERS: [(&str, &str, DeviceKind); 3] = [
    ("em", "gridwatch-flat-em", DeviceKind::ElectricityMeter),
    ("wm", "gridwatch-flat-wm", DeviceKind::WaterMeter),
    ("gm", "gridwatch-flat-gm", DeviceKind::GasMeter),
];

/// How a live run goes.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Broker the gateways publish to.
    pub broker: SocketAddr,
    /// Simulated time per wall time; `None`: [`default_speed`].
    pub speed: Option<f64>,
    /// Play at most this many days of the recording.
    pub days: Option<u32>,
    /// Time between progress lines on the progress writer (wall).
    pub progress_every: Duration,
    /// Write every reading that came back from the broker here, as a
    /// recording (`{"reading": …}` lines), so `gridwatch-analytics
    /// evaluate` can score the live stream against the district's truth.
    pub capture: Option<PathBuf>,
    /// How the flats' water and gas meters reach the gateway.
    pub water_gas: WaterGas,
}

/// What a live run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveSummary {
    /// Flats.
    pub flats: usize,
    /// Buildings (one gateway each).
    pub buildings: usize,
    /// Simulated days played.
    pub days: u32,
    /// Simulated time per wall time used.
    pub speed: f64,
    /// Recorded readings written into meter registers.
    pub applied: u64,
    /// Modbus read requests the meters answered.
    pub polls_answered: u64,
    /// Modbus read requests refused because the meter had no fresh data.
    pub polls_refused: u64,
    /// Readings that came back from the broker (published by the gateways).
    pub published: u64,
    /// Recorded readings of the yards' charging piles, which are not played.
    pub piles_not_played: u64,
    /// Wall time of the run, seconds (generation excluded).
    pub wall_s: f64,
}

/// A day in about 30 s of wall time, slowed down when the shortest meter
/// interval would then be polled more often than every 100 ms (the gateway
/// accepts 50 ms; the margin keeps a loaded machine on schedule).
pub fn default_speed(scenario: &Scenario) -> f64 {
    let shortest_s = scenario
        .electricity_interval_s
        .min(scenario.water_gas_interval_s);
    2880.0_f64.min(f64::from(shortest_s) * 1000.0 / 100.0)
}

/// Generates the district into `dir`, or reuses one generated there before
/// from the same scenario and seed (`reuse`); returns its ground truth,
/// whose start and length the live run follows.
pub fn prepare(
    scenario: &Scenario,
    seed: u64,
    dir: &Path,
    reuse: bool,
) -> anyhow::Result<GroundTruth> {
    let truth_path = dir.join("truth.json");
    if reuse && truth_path.exists() && dir.join("recording.jsonl").exists() {
        let truth: GroundTruth = serde_json::from_slice(
            &std::fs::read(&truth_path)
                .with_context(|| format!("cannot read {}", truth_path.display()))?,
        )
        .with_context(|| format!("{} is not a district's truth.json", truth_path.display()))?;
        if truth.scenario != scenario.name || truth.seed != seed {
            bail!(
                "{} holds scenario {:?} seed {}, not {:?} seed {}: generate into another --out",
                dir.display(),
                truth.scenario,
                truth.seed,
                scenario.name,
                seed
            );
        }
        return Ok(truth);
    }
    generate(scenario, seed, dir)?;
    let truth = serde_json::from_slice(&std::fs::read(&truth_path)?)
        .with_context(|| format!("reading back {}", truth_path.display()))?;
    Ok(truth)
}

/// Where a flat meter keeps what the gateway reads.
#[derive(Clone)]
enum Registers {
    /// A Modbus meter's registers, by value name.
    Modbus(SharedMeter),
    /// Meter `index` of a CJ/T 188 line: its main register.
    Cjt188(crate::cjt188::SharedLine, usize),
}

/// One flat meter as the driver and the server see it.
#[derive(Clone)]
struct LiveMeter {
    registers: Registers,
    /// Simulated ms until which the meter answers (its last recorded
    /// reading + 1¼ interval); before the first reading it refuses.
    fresh_until: Arc<AtomicI64>,
    interval_ms: i64,
    /// Value names the profile has, to reject a recording that does not fit.
    names: Arc<Vec<String>>,
}

impl LiveMeter {
    /// Writes recorded value `name` into the meter.
    fn write(&self, name: &str, v: f64) -> Result<(), String> {
        match &self.registers {
            Registers::Modbus(m) => m.with(|model| model.set(name, v)),
            Registers::Cjt188(line, i) => cjt188_line::write(line, *i, name, v),
        }
    }
}

#[derive(Default)]
struct Counters {
    applied: AtomicU64,
    answered: AtomicU64,
    refused: AtomicU64,
    published: AtomicU64,
    not_played: AtomicU64,
    by_building: Mutex<BTreeMap<String, u64>>,
}

/// A meter cabinet: the flat meters of one kind in one building, by unit id.
#[derive(Clone)]
struct CabinetService {
    inner: MeterService,
    meters: Arc<BTreeMap<u8, LiveMeter>>,
    /// Set when the gateways start; until then every meter refuses.
    clock: Arc<OnceLock<ScaledClock>>,
    counters: Arc<Counters>,
}

/// A building: its site, id, flats (unit ids from 1, in register order).
struct Building {
    site: String,
    id: String,
    flats: Vec<String>,
}

fn buildings(register: &RegisterFile) -> anyhow::Result<Vec<Building>> {
    let mut out: Vec<Building> = Vec::new();
    for f in &register.flats {
        let mut parts = f.flat.split('/');
        let (Some(site), Some(building), Some(unit), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            bail!("register.json: flat {:?} is not site/building/unit", f.flat);
        };
        match out.iter_mut().find(|b| b.site == site && b.id == building) {
            Some(b) => b.flats.push(unit.to_owned()),
            None => out.push(Building {
                site: site.to_owned(),
                id: building.to_owned(),
                flats: vec![unit.to_owned()],
            }),
        }
    }
    for b in &out {
        if b.flats.len() > MAX_UNITS {
            bail!(
                "building {}/{} has {} flats; one meter cabinet holds at most {MAX_UNITS} (Modbus unit ids)",
                b.site,
                b.id,
                b.flats.len()
            );
        }
    }
    Ok(out)
}

/// Where a building's gateway finds its meters of one kind.
enum Wiring {
    /// A Modbus TCP meter cabinet: flat `i` is unit id `i + 1`.
    Cabinet(SocketAddr),
    /// A CJ/T 188 line: its serial port and flat `i`'s meter address.
    Cjt188(PathBuf, Vec<gridwatch_cjt188::Address>),
}

/// A path as a TOML basic string's contents.
fn toml_path(path: &Path) -> String {
    path.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

/// The gateway config of one building, as an installer would write it.
fn gateway_toml(
    b: &Building,
    broker: SocketAddr,
    wiring: &[Wiring; 3],
    polls_ms: &[u64; 3],
    outbox: &Path,
) -> String {
    let outbox = toml_path(outbox);
    let mut t = format!(
        "[gateway]\nid = \"gw-{site}-{b}\"\nsite = \"{site}\"\nbuilding = \"{b}\"\n\n\
         [mqtt]\nhost = \"{host}\"\nport = {port}\nclient_id = \"live-gw-{site}-{b}-{pid}\"\n\
         inflight = 200\nmax_publish_per_s = 100000\n\n\
         [outbox]\ndir = \"{outbox}\"\nfsync_interval_ms = {fsync}\n",
        site = b.site,
        b = b.id,
        host = broker.ip(),
        port = broker.port(),
        pid = std::process::id(),
        // Nothing leaves the outbox before its group commit: at the default
        // 1 s, a reading would arrive `speed` seconds of simulated time late
        // (100 min at 6000x), and analytics would see whole buildings go
        // silent. Half the shortest poll keeps that under an interval.
        fsync = (polls_ms.iter().copied().min().unwrap_or(1000) / 2).max(1),
    );
    for (k, (prefix, profile, _)) in METERS.iter().enumerate() {
        for (i, unit) in b.flats.iter().enumerate() {
            let poll = polls_ms[k];
            let how = match &wiring[k] {
                Wiring::Cabinet(at) => format!(
                    "profile = \"{profile}\"\nprotocol = \"modbus_tcp\"\nhost = \"{}\"\n\
                     port = {}\nunit_id = {}\ntimeout_ms = 2000\n",
                    at.ip(),
                    at.port(),
                    i + 1
                ),
                // A silent meter holds the line for its timeout: a share
                // of the poll interval, so a dead line still fits in it.
                Wiring::Cjt188(port, addresses) => format!(
                    "protocol = \"cjt188\"\nserial_port = \"{}\"\nbaud = 19200\n\
                     meter_type = \"{}\"\nmeter_address = \"{}\"\ntimeout_ms = {}\n",
                    toml_path(port),
                    cjt188_line::meter_type_word(k),
                    addresses[i],
                    (poll / (2 * addresses.len().max(1) as u64)).clamp(20, 1000)
                ),
            };
            t.push_str(&format!(
                "\n[[devices]]\nid = \"{prefix}-{unit}\"\n{how}\
                 poll_interval_ms = {poll}\nretry_max_ms = {poll}\nunit = \"{unit}\"\n",
            ));
        }
    }
    t
}

/// Local date and time of simulated `ms`, for progress lines.
fn local(ms: i64, offset_min: i32) -> String {
    let t = Timestamp(ms + i64::from(offset_min) * 60_000).to_rfc3339();
    t.get(..16).unwrap_or(&t).replace('T', " ")
}

/// Plays the district generated in `dir` (see [`prepare`]) live through
/// Modbus and the real gateway to `opts.broker`, writing progress lines to
/// `progress`, until its days are played or `shutdown`.
pub async fn run(
    scenario: &Scenario,
    dir: &Path,
    truth: &GroundTruth,
    opts: &LiveOptions,
    progress: &mut (dyn Write + Send),
    shutdown: CancellationToken,
) -> anyhow::Result<LiveSummary> {
    let speed = opts.speed.unwrap_or_else(|| default_speed(scenario));
    if !(speed.is_finite() && speed > 0.0) {
        bail!("--speed {speed} must be a positive number");
    }
    let intervals_s = [
        scenario.electricity_interval_s,
        scenario.water_gas_interval_s,
        scenario.water_gas_interval_s,
    ];
    let shortest = intervals_s.iter().copied().min().unwrap_or(1);
    // A whole number of wall milliseconds per shortest interval, so the
    // polls do not drift against the meters' interval ends over the days.
    let shortest_ms = (f64::from(shortest) * 1000.0 / speed).round().max(1.0);
    let speed = f64::from(shortest) * 1000.0 / shortest_ms;
    let polls_ms = intervals_s.map(|s| (f64::from(s) * 1000.0 / speed).round() as u64);
    if polls_ms.iter().any(|p| *p < MIN_POLL_MS) {
        bail!(
            "--speed {speed}: the {shortest} s meter interval would be polled every {:.0} ms, \
             below the gateway's {MIN_POLL_MS} ms; use --speed {} or less",
            f64::from(shortest) * 1000.0 / speed,
            u64::from(shortest) * 1000 / MIN_POLL_MS
        );
    }
    let days = opts.days.map_or(truth.days, |d| d.min(truth.days)).max(1);
    let register_path = dir.join("register.json");
    let register: RegisterFile = serde_json::from_slice(
        &std::fs::read(&register_path)
            .with_context(|| format!("cannot read {}", register_path.display()))?,
    )
    .with_context(|| format!("{} is not a district register", register_path.display()))?;
    let buildings = buildings(&register)?;

    // Polls sit half the shortest interval after the interval ends, so a
    // poll never races the reading it should see.
    let offset_ms = i64::from(shortest) * 500;
    let start = Timestamp(truth.start_ms + offset_ms);
    let end_ms = truth.start_ms + i64::from(days) * DAY_MS + offset_ms;
    let clock_cell: Arc<OnceLock<ScaledClock>> = Arc::new(OnceLock::new());
    let counters = Arc::new(Counters::default());
    let shutdown = shutdown.child_token();
    if opts.water_gas == WaterGas::Cjt188 {
        check_scenario(scenario)?;
    }
    let mut library = ProfileLibrary::built_in();
    let mut fitted = Installation {
        clock: clock_cell.clone(),
        counters: counters.clone(),
        shutdown: shutdown.clone(),
        meters: HashMap::new(),
        tasks: Vec::new(),
    };
    let mut configs = Vec::new();
    for (n, b) in buildings.iter().enumerate() {
        let mut wiring = Vec::with_capacity(METERS.len());
        for (k, (_, profile, _)) in METERS.iter().enumerate() {
            let profile = library
                .get(profile)
                .with_context(|| format!("loading the {profile} meter profile"))?;
            let interval_ms = i64::from(intervals_s[k]) * 1000;
            wiring.push(if k > 0 && opts.water_gas == WaterGas::Cjt188 {
                fitted.cjt188_line(b, n, k, &profile, interval_ms)?
            } else {
                fitted.cabinet(b, k, &profile, interval_ms).await?
            });
        }
        let Ok(wiring) = <[Wiring; 3]>::try_from(wiring) else {
            unreachable!("one wiring per meter kind")
        };
        let outbox = dir
            .join("live-outbox")
            .join(format!("gw-{}-{}", b.site, b.id));
        let _ = std::fs::remove_dir_all(&outbox);
        let text = gateway_toml(b, opts.broker, &wiring, &polls_ms, &outbox);
        let config = gridwatch_gateway::GatewayConfig::from_toml_str(
            &text,
            &format!("live gateway config of {}/{}", b.site, b.id),
        )?;
        configs.push((format!("gateway of {}/{}", b.site, b.id), config));
    }
    let Installation {
        meters, mut tasks, ..
    } = fitted;

    // Count what comes back from the broker, per building.
    let capture = match &opts.capture {
        Some(path) => Some(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(path)
                .with_context(|| format!("cannot create the capture {}", path.display()))?,
        )),
        None => None,
    };
    let watcher = watch_readings(opts.broker, counters.clone(), capture, shutdown.clone()).await?;

    // Recorded readings up to the first poll are already in the registers.
    let recording = dir.join("recording.jsonl");
    let mut player = Player::open(&recording, meters, counters.clone())?;
    player.apply_until(start.0)?;

    let wall = Instant::now();
    // The clock starts here: the gateways poll from now on.
    let clock = ScaledClock::new(start, speed);
    // The cabinets judge freshness by the clock the gateways stamp with.
    let _ = clock_cell.set(clock);
    for (name, config) in configs {
        let gw_clock: Arc<dyn Clock> = Arc::new(clock);
        tasks.push((
            name,
            tokio::spawn(gridwatch_gateway::run(config, gw_clock, shutdown.clone())),
        ));
    }
    let result = async {
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        let mut next_report = Instant::now() + opts.progress_every;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = clock.now().0;
            player.apply_until(now.min(end_ms))?;
            if let Some((name, _)) = tasks.iter().find(|(_, t)| t.is_finished()) {
                bail!("{name} stopped early");
            }
            if Instant::now() >= next_report || now >= end_ms {
                next_report = Instant::now() + opts.progress_every;
                let day = ((now - truth.start_ms).div_euclid(DAY_MS) + 1).min(i64::from(days));
                let per_building: Vec<String> = counters
                    .by_building
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .iter()
                    .map(|(b, n)| format!("{b} {n}"))
                    .collect();
                writeln!(
                    progress,
                    "{}  day {day}/{days}  recorded {}  polled {} ({} refused)  published {}  [{}]",
                    local(now, scenario.utc_offset_min),
                    counters.applied.load(Ordering::Relaxed),
                    counters.answered.load(Ordering::Relaxed),
                    counters.refused.load(Ordering::Relaxed),
                    counters.published.load(Ordering::Relaxed),
                    per_building.join(", ")
                )?;
            }
            if now >= end_ms {
                break;
            }
        }
        anyhow::Ok(())
    }
    .await;
    // Polls after the last day are no part of the run (the meters go
    // stale then): count up to here.
    let answered = counters.answered.load(Ordering::Relaxed);
    let refused = counters.refused.load(Ordering::Relaxed);
    // Let the last polls' readings reach the broker and come back.
    if result.is_ok() && !shutdown.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let wall_s = wall.elapsed().as_secs_f64();
    shutdown.cancel();
    let mut failure = result.err();
    for (name, task) in tasks {
        match tokio::time::timeout(Duration::from_secs(10), task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                failure.get_or_insert(e.context(format!("{name} failed")));
            }
            Ok(Err(e)) => {
                failure.get_or_insert(anyhow::anyhow!("{name} panicked: {e}"));
            }
            Err(_) => {
                failure.get_or_insert(anyhow::anyhow!("{name} did not stop within 10 s"));
            }
        }
    }
    match tokio::time::timeout(Duration::from_secs(10), watcher).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => {
            failure.get_or_insert(e);
        }
        Ok(Err(e)) => {
            failure.get_or_insert(anyhow::anyhow!("the reading watcher panicked: {e}"));
        }
        Err(_) => {
            failure.get_or_insert(anyhow::anyhow!(
                "the reading watcher did not stop within 10 s"
            ));
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(LiveSummary {
        flats: register.flats.len(),
        buildings: buildings.len(),
        days,
        speed,
        applied: counters.applied.load(Ordering::Relaxed),
        polls_answered: answered,
        polls_refused: refused,
        published: counters.published.load(Ordering::Relaxed),
        piles_not_played: counters.not_played.load(Ordering::Relaxed),
        wall_s,
    })
}

/// The meters of every building with the servers that answer for them.
struct Installation {
    /// Set when the gateways start; until then every meter refuses.
    clock: Arc<OnceLock<ScaledClock>>,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
    /// (gateway, device) -> meter, for the player.
    meters: HashMap<(String, String), LiveMeter>,
    /// The servers' tasks, by name.
    tasks: Vec<(String, JoinHandle<anyhow::Result<()>>)>,
}

/// Writes recorded readings into the meters as simulated time passes them.
struct Player {
    path: PathBuf,
    records: RecordReader<std::io::BufReader<std::fs::File>>,
    next: Option<Reading>,
    meters: HashMap<(String, String), LiveMeter>,
    counters: Arc<Counters>,
}

#[cfg(test)]
mod tests;
