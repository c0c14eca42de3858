//! `gridwatch-sim`: the demo and the device simulators as a command.

use clap::{Parser, Subcommand};
use gridwatch_simulators::{demo, meter, pile};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Gridwatch simulators: protocol-true devices and the end-to-end demo.
#[derive(Parser)]
#[command(name = "gridwatch-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole chain in one process (embedded broker, simulated pile,
    /// gateway, analytics), inject a fault and print the alert.
    Demo(demo::DemoOptions),
    /// Serve a simulated charging pile on Modbus TCP until Ctrl-C.
    Pile(PileArgs),
    /// Serve simulated DL/T 645-2007 meters on a pseudo-terminal until
    /// Ctrl-C; prints the port's path. Misbehaviour on demand: type
    /// `<address|all> <behaviour>` on stdin (normal, abnormal[:ERR],
    /// silent, bad-checksum, truncated, noise).
    Dlt645(Dlt645Args),
    /// Serve simulated CJ/T 188 water, gas and heat meters on a pseudo-terminal until Ctrl-C; prints the port's path. Misbehaviour on demand: `<address|all> <behaviour>` on stdin (silent, bad-checksum, truncated, noise, low-battery, valve-closed, …).
    Cjt188(gridwatch_simulators::cjt188::cli::Args),
    /// Serve simulated charging piles and profile-driven meters as Modbus
    /// RTU units on a pseudo-terminal (an RS-485 line) until Ctrl-C; prints
    /// the port path to put in the gateway's [[buses]].
    Rtu(RtuArgs),
    /// Serve any device profile (config/devices) on Modbus TCP until Ctrl-C,
    /// with misbehaviour on demand.
    Meter(MeterArgs),
    /// Generate a synthetic district with ground truth: writes
    /// recording.jsonl, truth.json and register.json into --out.
    District(DistrictArgs),
    /// Play a synthetic district live at accelerated time through the real
    /// path: its flats' meters on Modbus TCP (127.0.0.1), one real gateway
    /// per building polling them, readings published to an MQTT broker.
    /// Generates the district into --out first (or reuses it: --reuse).
    DistrictLive(DistrictLiveArgs),
    /// A plate camera publishing JSON sightings to an MQTT broker.
    ReaderMqtt(gridwatch_simulators::readers::cli::MqttArgs),
    /// A serial RFID reader on a pty, linked at --link.
    ReaderSerial(gridwatch_simulators::readers::cli::SerialArgs),
}

#[derive(clap::Args)]
struct DistrictArgs {
    /// Scenario file (config/scenarios/*.toml); the built-in default if absent.
    #[arg(long)]
    scenario: Option<std::path::PathBuf>,
    /// Seed: the same scenario and seed give the same district.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output directory.
    #[arg(long)]
    out: std::path::PathBuf,
}

#[derive(clap::Args)]
struct DistrictLiveArgs {
    #[command(flatten)]
    district: DistrictArgs,
    /// Use the district already in --out (same scenario and seed) instead
    /// of generating it again.
    #[arg(long)]
    reuse: bool,
    /// MQTT broker HOST:PORT the gateways publish to; an embedded broker on
    /// 127.0.0.1 when absent.
    #[arg(long)]
    broker: Option<String>,
    /// Simulated seconds per wall second; default: a day in about 30 s
    /// (slower when the shortest meter interval would be polled more often
    /// than every 100 ms). Rounded so an interval is whole milliseconds.
    #[arg(long)]
    speed: Option<f64>,
    /// Play at most this many days.
    #[arg(long)]
    days: Option<u32>,
    /// Also write every reading that came back from the broker to this
    /// file, as a recording `gridwatch-analytics evaluate` can score.
    #[arg(long)]
    capture: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
struct Dlt645Args {
    /// A meter on the line, `ADDRESS[:PHASES]` (12 digits; 1 or 3 phases).
    /// Repeat for several meters on one line.
    #[arg(long = "meter", default_value = "000000000001")]
    meters: Vec<String>,
    /// Baud rate the answers are paced at (the line is 8E1).
    #[arg(long, default_value_t = 2400)]
    baud: u32,
    /// Answer at once instead of at the baud rate's pace.
    #[arg(long)]
    no_pace: bool,
}

#[derive(clap::Args)]
struct PileArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5020")]
    listen: std::net::SocketAddr,
    /// Number of sockets.
    #[arg(long, default_value_t = 10)]
    sockets: u16,
    /// Sockets with a lithium charger plugged in at start (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    charging: Vec<u16>,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Modbus unit id.
    #[arg(long, default_value_t = 1)]
    unit_id: u8,
    /// Seed of the measurement noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args)]
struct RtuArgs {
    /// Line speed; the simulator answers no faster than this baud rate allows.
    #[arg(long, default_value_t = 9600)]
    baud: u32,
    /// Unit addresses on the line, one charging pile each (comma-separated);
    /// unit 1 if neither --units nor --unit is given.
    #[arg(long, value_delimiter = ',')]
    units: Vec<u8>,
    /// A device of any profile on the line, `UNIT=MODEL` (e.g.
    /// `3=eastron-sdm630`); repeat for several.
    #[arg(long = "unit")]
    meters: Vec<String>,
    /// Folder of extra or overriding profiles (<model>.toml) for --unit.
    #[arg(long)]
    profiles_dir: Option<std::path::PathBuf>,
    /// Number of sockets per pile.
    #[arg(long, default_value_t = 10)]
    sockets: u16,
    /// Sockets with a lithium charger plugged in at start (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    charging: Vec<u16>,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Seed of the measurement noise (unit n uses seed + n).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Misbehaving units, `unit=how` with how one of silent, crc, truncate,
    /// noise, slow (300 ms), exception (0x04), e.g. `--misbehave 2=crc`.
    #[arg(long, value_delimiter = ',')]
    misbehave: Vec<String>,
}

#[derive(clap::Args)]
struct MeterArgs {
    /// Profile (model name, e.g. eastron-sdm630).
    #[arg(long)]
    profile: String,
    /// Folder of extra or overriding profiles (<model>.toml).
    #[arg(long)]
    profiles_dir: Option<std::path::PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// TCP port (0: any free port; the chosen one is printed).
    #[arg(long, default_value_t = 5020)]
    port: u16,
    /// Modbus unit id of the (first) device.
    #[arg(long, default_value_t = 1)]
    unit: u8,
    /// Devices behind this address, with unit ids from --unit upwards, as
    /// behind a TCP-to-RTU gateway.
    #[arg(long, default_value_t = 1)]
    units: u8,
    /// How to behave: normal, exception=N, silent (never answer) or absent
    /// (port closed).
    #[arg(long, default_value = "normal")]
    behave: meter::Behaviour,
    /// Separate devices, each on its own port from --port upwards (with
    /// --port 0, each on any free port); every one serves --units units.
    #[arg(long, default_value_t = 1)]
    devices: u16,
    /// Disappear and return in a cycle: UP_S:DOWN_S seconds.
    #[arg(long, value_parser = parse_flap)]
    flap: Option<(u64, u64)>,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Seed of the values (each unit adds its id).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn parse_flap(s: &str) -> Result<(u64, u64), String> {
    let (up, down) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not UP_S:DOWN_S"))?;
    let n = |x: &str| {
        x.parse::<u64>()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| format!("{x:?} is not a whole number of seconds above 0"))
    };
    Ok((n(up)?, n(down)?))
}

fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(opts) => {
            init_logs("warn,rumqttd=off");
            let mut stdout = std::io::stdout();
            demo::run(&opts, &mut stdout).await.map(|_| ())
        }
        Command::Pile(args) => {
            init_logs("info");
            serve_pile(args).await
        }
        Command::Rtu(args) => {
            init_logs("info");
            serve_rtu(args).await
        }
        Command::District(args) => district(&args),
        Command::DistrictLive(args) => {
            init_logs("error,rumqttd=off");
            with_ctrl_c(|stop| async move { district_live(&args, stop).await }).await
        }
        Command::Dlt645(args) => {
            init_logs("info");
            serve_dlt645(args).await
        }
        Command::Cjt188(args) => {
            init_logs("info");
            gridwatch_simulators::cjt188::cli::run(args).await
        }
        Command::Meter(args) => {
            init_logs("info");
            serve_meter(args).await
        }
        Command::ReaderMqtt(args) => {
            init_logs("info");
            with_ctrl_c(|stop| async move {
                gridwatch_simulators::readers::cli::run_mqtt(&args, stop).await
            })
            .await
        }
        Command::ReaderSerial(args) => {
            init_logs("info");
            with_ctrl_c(|stop| async move {
                gridwatch_simulators::readers::cli::run_serial(&args, stop).await
            })
            .await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gridwatch-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `f` with a token that Ctrl-C cancels.
async fn with_ctrl_c<F, Fut>(f: F) -> anyhow::Result<()>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    f(stop).await
}

async fn district_live(args: &DistrictLiveArgs, stop: CancellationToken) -> anyhow::Result<()> {
    use gridwatch_simulators::district::{self, live};
    let d = &args.district;
    let scenario = match &d.scenario {
        Some(p) => district::Scenario::load(p)?,
        None => district::Scenario::default(),
    };
    let broker = match &args.broker {
        Some(b) => {
            use std::net::ToSocketAddrs;
            b.to_socket_addrs()
                .map_err(|e| anyhow::anyhow!("--broker {b:?} is not HOST:PORT: {e}"))?
                .next()
                .ok_or_else(|| anyhow::anyhow!("--broker {b:?} resolves to no address"))?
        }
        None => {
            let b = gridwatch_simulators::broker::EmbeddedBroker::start()?;
            eprintln!("embedded MQTT broker on {}", b.addr());
            b.addr()
        }
    };
    let started = std::time::Instant::now();
    let truth = {
        let (scenario, out, seed, reuse) = (scenario.clone(), d.out.clone(), d.seed, args.reuse);
        tokio::task::spawn_blocking(move || live::prepare(&scenario, seed, &out, reuse)).await??
    };
    eprintln!(
        "district {} seed {}: {} flats, {} days in {} ({:.1} s)",
        scenario.name,
        d.seed,
        truth.flats,
        truth.days,
        d.out.display(),
        started.elapsed().as_secs_f64()
    );
    let opts = live::LiveOptions {
        broker,
        speed: args.speed,
        days: args.days,
        progress_every: std::time::Duration::from_secs(2),
        capture: args.capture.clone(),
    };
    let mut stderr = std::io::stderr();
    let s = live::run(&scenario, &d.out, &truth, &opts, &mut stderr, stop).await?;
    println!(
        "played {} days of {} flats in {} buildings live at {:.0}x in {:.1} s: {} recorded readings \
         into the meters, {} polls answered, {} refused (no fresh data), {} readings published \
         ({:.0}/s); {} recorded charging-pile readings not played",
        s.days,
        s.flats,
        s.buildings,
        s.speed,
        s.wall_s,
        s.applied,
        s.polls_answered,
        s.polls_refused,
        s.published,
        s.published as f64 / s.wall_s.max(1e-9),
        s.piles_not_played
    );
    Ok(())
}

fn district(args: &DistrictArgs) -> anyhow::Result<()> {
    use gridwatch_simulators::district;
    let scenario = match &args.scenario {
        Some(p) => district::Scenario::load(p)?,
        None => district::Scenario::default(),
    };
    let started = std::time::Instant::now();
    let s = district::generate(&scenario, args.seed, &args.out)?;
    println!(
        "district {} seed {}: {} flats, {} days, {} readings and {} events, {} planted cases, in {:.1} s -> {}",
        scenario.name,
        args.seed,
        s.flats,
        scenario.days,
        s.readings,
        s.events,
        s.cases,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}

async fn serve_pile(args: PileArgs) -> anyhow::Result<()> {
    let mut model = pile::PileModel::new(pile::PileConfig {
        sockets: args.sockets,
        seed: args.seed,
        unit_id: args.unit_id,
        ..pile::PileConfig::default()
    })?;
    for s in &args.charging {
        model.plug_in(*s, pile::ChargerKind::Lithium)?;
    }
    let shared = pile::SharedPile::new(model);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let shutdown = CancellationToken::new();
    let _clock = pile::spawn_clock(shared.clone(), args.speed, 100, shutdown.clone())?;
    tracing::info!(
        "charging pile with {} sockets serving Modbus TCP on {} (unit {}), chargers on {:?}; Ctrl-C stops",
        args.sockets, args.listen, args.unit_id, args.charging
    );
    let server = tokio::spawn(pile::serve(
        listener,
        shared,
        args.unit_id,
        shutdown.clone(),
    ));
    let _ = tokio::signal::ctrl_c().await;
    shutdown.cancel();
    server.await??;
    Ok(())
}

async fn serve_dlt645(args: Dlt645Args) -> anyhow::Result<()> {
    use gridwatch_simulators::dlt645::{self, Line, LineTiming, PtyLine};
    use std::sync::{Arc, Mutex};
    use tokio::io::AsyncBufReadExt;
    let meters = args
        .meters
        .iter()
        .enumerate()
        .map(|(i, m)| dlt645::parse_meter(m, i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let summary: Vec<String> = meters
        .iter()
        .map(|m| format!("{} ({}-phase)", m.address, m.phases))
        .collect();
    let line = Arc::new(Mutex::new(Line::new(meters)));
    let shutdown = CancellationToken::new();
    let timing = LineTiming {
        baud: args.baud,
        pace: !args.no_pace,
        ..LineTiming::default()
    };
    let pty = PtyLine::open(
        line.clone(),
        Arc::new(gridwatch_telemetry::SystemClock),
        timing,
        shutdown.clone(),
    )
    .map_err(|e| anyhow::anyhow!("cannot open a pseudo-terminal: {e}"))?;
    println!(
        "DL/T 645 meters {} on {} at {} baud 8E1; type `<address|all> <behaviour>` to misbehave, Ctrl-C stops",
        summary.join(", "),
        pty.path().display(),
        args.baud
    );
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            next = stdin.next_line() => match next {
                Ok(Some(text)) if text.trim().is_empty() => {}
                Ok(Some(text)) => {
                    let mut l = line.lock().unwrap_or_else(|p| p.into_inner());
                    match dlt645::command(&mut l, &text) {
                        Ok(done) => println!("{done}"),
                        Err(why) => eprintln!("{why}"),
                    }
                }
                // Stdin closed (run in the background): keep serving.
                Ok(None) | Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    break;
                }
            },
        }
    }
    shutdown.cancel();
    pty.join().await?;
    Ok(())
}

/// `2=crc` → unit 2 corrupts its CRCs.
fn misbehaviour(spec: &str) -> anyhow::Result<(u8, gridwatch_simulators::rtu::Behaviour)> {
    use gridwatch_simulators::rtu::Behaviour;
    let (unit, how) = spec
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--misbehave {spec:?}: expected unit=how, e.g. 2=silent"))?;
    let unit: u8 = unit
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("--misbehave {spec:?}: {unit:?} is not a unit address"))?;
    let behaviour = match how.trim() {
        "silent" => Behaviour::Silent,
        "crc" => Behaviour::CorruptCrc,
        "truncate" => Behaviour::Truncate,
        "noise" => Behaviour::NoiseBefore,
        "slow" => Behaviour::Slow(std::time::Duration::from_millis(300)),
        "exception" => Behaviour::Exception(0x04),
        other => anyhow::bail!(
            "--misbehave {spec:?}: unknown behaviour {other:?}; use silent, crc, truncate, noise, slow or exception"
        ),
    };
    Ok((unit, behaviour))
}

/// One unit on a simulated RTU line: a charging pile or a device driven by
/// a profile, so one line can carry the mix a real building has.
#[derive(Clone)]
enum LineUnit {
    Pile(pile::PileService),
    Meter(meter::MeterService),
}

impl tokio_modbus::server::Service for LineUnit {
    type Request = tokio_modbus::SlaveRequest<'static>;
    type Response = tokio_modbus::Response;
    type Exception = tokio_modbus::ExceptionCode;
    type Future = std::future::Ready<Result<Self::Response, Self::Exception>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        match self {
            Self::Pile(p) => p.call(req),
            // The line's own control does the misbehaving.
            Self::Meter(m) => std::future::ready(m.answer(req)),
        }
    }
}

/// `3=eastron-sdm630` → unit 3 is a device of that profile.
fn meter_unit(spec: &str) -> anyhow::Result<(u8, &str)> {
    let (unit, model) = spec.split_once('=').ok_or_else(|| {
        anyhow::anyhow!("--unit {spec:?}: expected UNIT=MODEL, e.g. 3=eastron-sdm630")
    })?;
    let unit: u8 = unit
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("--unit {spec:?}: {unit:?} is not a unit address"))?;
    Ok((unit, model.trim()))
}

async fn serve_rtu(mut args: RtuArgs) -> anyhow::Result<()> {
    use gridwatch_simulators::rtu;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    if args.units.is_empty() && args.meters.is_empty() {
        args.units.push(1);
    }
    let mut library = match &args.profiles_dir {
        Some(dir) => gridwatch_gateway::ProfileLibrary::with_dir(dir),
        None => gridwatch_gateway::ProfileLibrary::built_in(),
    };
    let mut meters = BTreeMap::new();
    for spec in &args.meters {
        let (unit, model) = meter_unit(spec)?;
        let profile = library
            .get(model)
            .map_err(|e| anyhow::anyhow!("--unit {spec:?}: {e}"))?;
        let meter = meter::MeterModel::new(profile, args.seed.wrapping_add(u64::from(unit)));
        if meters
            .insert(unit, meter::SharedMeter::new(meter))
            .is_some()
        {
            anyhow::bail!("--unit {spec:?}: unit {unit} is given twice");
        }
    }
    let all_units: Vec<u8> = args.units.iter().chain(meters.keys()).copied().collect();
    for (i, unit) in all_units.iter().enumerate() {
        if !(1..=247).contains(unit) {
            anyhow::bail!("unit {unit} is not a Modbus RTU unit address (1 to 247)");
        }
        if all_units[..i].contains(unit) {
            anyhow::bail!("unit {unit} is on the line twice (--units and --unit)");
        }
    }
    let control = rtu::LineControl::default();
    for spec in &args.misbehave {
        let (unit, behaviour) = misbehaviour(spec)?;
        if !all_units.contains(&unit) {
            anyhow::bail!("--misbehave {spec:?}: unit {unit} is not on the line {all_units:?}");
        }
        control.set(unit, behaviour);
    }
    let shutdown = CancellationToken::new();
    let mut services = BTreeMap::new();
    let mut clocks = Vec::new();
    let meters: meter::Units = Arc::new(meters);
    if !meters.is_empty() {
        meter::spawn_clock(
            meters.clone(),
            args.speed,
            std::time::Duration::from_secs(1),
            shutdown.clone(),
        );
        // Answers from the shared map by the request's unit.
        let service = meter::MeterService::new(
            meters.clone(),
            meter::Control::new(meter::Behaviour::Normal),
        );
        for &unit in meters.keys() {
            services.insert(unit, LineUnit::Meter(service.clone()));
        }
    }
    for &unit in &args.units {
        let mut model = pile::PileModel::new(pile::PileConfig {
            sockets: args.sockets,
            seed: args.seed.wrapping_add(u64::from(unit)),
            unit_id: unit,
            ..pile::PileConfig::default()
        })?;
        for s in &args.charging {
            model.plug_in(*s, pile::ChargerKind::Lithium)?;
        }
        let shared = pile::SharedPile::new(model);
        clocks.push(pile::spawn_clock(
            shared.clone(),
            args.speed,
            100,
            shutdown.clone(),
        )?);
        // A serial line has no peer address; the service only logs it.
        let peer = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        services.insert(
            unit,
            LineUnit::Pile(pile::PileService::new(shared, unit, peer)),
        );
    }
    let line =
        rtu::PtyLine::open().map_err(|e| anyhow::anyhow!("cannot open a pseudo-terminal: {e}"))?;
    // The one line a script reads: the port for the gateway's [[buses]].
    println!("{}", line.path().display());
    tracing::info!(
        "charging pile(s) as Modbus RTU units {:?} and {} other device(s) {:?} at {} baud on {}; Ctrl-C stops",
        args.units,
        meters.len(),
        args.meters,
        args.baud,
        line.path().display()
    );
    let server = tokio::spawn(rtu::serve(
        line,
        args.baud,
        services,
        control,
        shutdown.clone(),
    ));
    wait_for_stop().await;
    shutdown.cancel();
    server.await??;
    Ok(())
}

async fn serve_meter(args: MeterArgs) -> anyhow::Result<()> {
    use gridwatch_gateway::profile::ProfileLibrary;
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    let mut library = match &args.profiles_dir {
        Some(dir) => ProfileLibrary::with_dir(dir),
        None => ProfileLibrary::built_in(),
    };
    let profile = library.get(&args.profile)?;
    if args.devices == 0 {
        anyhow::bail!("--devices must be at least 1");
    }
    if args.units == 0 || u16::from(args.unit) + u16::from(args.units) - 1 > 247 {
        anyhow::bail!(
            "--unit {} --units {} leaves the unit ids 1..=247",
            args.unit,
            args.units
        );
    }
    let shutdown = CancellationToken::new();
    let control = meter::Control::new(args.behave);
    let mut servers = Vec::new();
    let mut all_units = Vec::new();
    for d in 0..args.devices {
        let units: meter::Units = Arc::new(
            (0..args.units)
                .map(|i| {
                    let id = args.unit + i;
                    let seed = args.seed + u64::from(d) * 1000 + u64::from(id);
                    let model = meter::MeterModel::new(profile.clone(), seed);
                    (id, meter::SharedMeter::new(model))
                })
                .collect::<BTreeMap<_, _>>(),
        );
        let port = if args.port == 0 {
            0
        } else {
            args.port.checked_add(d).ok_or_else(|| {
                anyhow::anyhow!(
                    "--port {} --devices {} runs past port 65535",
                    args.port,
                    args.devices
                )
            })?
        };
        let listen = std::net::SocketAddr::new(args.host, port);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        let local = listener.local_addr()?;
        // For scripts that asked for port 0.
        println!("listening on {local}");
        all_units.push(units.clone());
        servers.push(tokio::spawn(meter::serve(
            listener,
            units,
            control.clone(),
            shutdown.clone(),
        )));
    }
    for units in &all_units {
        let _clock = meter::spawn_clock(
            units.clone(),
            args.speed,
            Duration::from_secs(1),
            shutdown.clone(),
        );
    }
    if let Some((up, down)) = args.flap {
        let control = control.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                for (b, secs) in [
                    (meter::Behaviour::Normal, up),
                    (meter::Behaviour::Absent, down),
                ] {
                    control.set(b);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(secs)) => {}
                    }
                }
            }
        });
    }
    tracing::info!(
        "{} device(s) of {} ({} registers) serving Modbus TCP, unit ids {}..={}, behaving {:?}; Ctrl-C stops",
        args.devices,
        profile.model,
        profile.register_count(),
        args.unit,
        args.unit + args.units - 1,
        args.behave
    );
    wait_for_stop().await;
    shutdown.cancel();
    for server in servers {
        server.await??;
    }
    Ok(())
}

/// Ctrl-C or SIGTERM (scripts stop simulators with kill).
async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_modbus::server::Service;
    use tokio_modbus::{Request, Response, SlaveRequest};

    #[test]
    fn a_unit_spec_names_the_unit_and_model_or_what_is_wrong() {
        assert_eq!(
            meter_unit(" 3 = eastron-sdm630").unwrap(),
            (3, "eastron-sdm630")
        );
        let err = meter_unit("eastron-sdm630").unwrap_err().to_string();
        assert!(err.contains("expected UNIT=MODEL"), "{err}");
        let err = meter_unit("300=eastron-sdm630").unwrap_err().to_string();
        assert!(err.contains("\"300\" is not a unit address"), "{err}");
    }

    #[tokio::test]
    async fn a_line_carries_piles_and_meters_each_answering_as_itself() {
        let profile = gridwatch_gateway::ProfileLibrary::built_in()
            .get("eastron-sdm120")
            .unwrap();
        let meters: meter::Units = std::sync::Arc::new(
            [(
                3,
                meter::SharedMeter::new(meter::MeterModel::new(profile, 3)),
            )]
            .into(),
        );
        let service =
            meter::MeterService::new(meters, meter::Control::new(meter::Behaviour::Normal));
        let read = |slave| SlaveRequest {
            slave,
            request: Request::ReadInputRegisters(0, 2),
        };
        let direct = service.answer(read(3)).unwrap();
        let via_line = LineUnit::Meter(service).call(read(3)).await.unwrap();
        assert_eq!(via_line, direct);
        let Response::ReadInputRegisters(words) = via_line else {
            panic!("{via_line:?}");
        };
        assert_ne!(words, [0, 0], "the meter's voltage is there");

        let pile = pile::PileModel::new(pile::PileConfig::default()).unwrap();
        let peer = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        let unit = LineUnit::Pile(pile::PileService::new(pile::SharedPile::new(pile), 1, peer));
        let answer = unit
            .call(SlaveRequest {
                slave: 1,
                request: Request::ReadCoils(0, 1),
            })
            .await
            .unwrap();
        assert!(matches!(answer, Response::ReadCoils(_)), "{answer:?}");
    }
}
