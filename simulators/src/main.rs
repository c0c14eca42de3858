//! `gridwatch-sim`: the demo and the device simulators as a command.

use clap::{Parser, Subcommand};
use gridwatch_simulators::{demo, pile};
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
    /// Serve simulated charging piles as Modbus RTU units on a
    /// pseudo-terminal (an RS-485 line) until Ctrl-C; prints the port path
    /// to put in the gateway's [[buses]].
    Rtu(RtuArgs),
    /// Generate a synthetic district with ground truth: writes
    /// recording.jsonl, truth.json and register.json into --out.
    District(DistrictArgs),
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
    /// Unit addresses on the line, one charging pile each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    units: Vec<u8>,
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gridwatch-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
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

async fn serve_rtu(args: RtuArgs) -> anyhow::Result<()> {
    use gridwatch_simulators::rtu;
    let control = rtu::LineControl::default();
    for spec in &args.misbehave {
        let (unit, behaviour) = misbehaviour(spec)?;
        if !args.units.contains(&unit) {
            anyhow::bail!(
                "--misbehave {spec:?}: unit {unit} is not in --units {:?}",
                args.units
            );
        }
        control.set(unit, behaviour);
    }
    let shutdown = CancellationToken::new();
    let mut services = std::collections::BTreeMap::new();
    let mut clocks = Vec::new();
    for &unit in &args.units {
        if !(1..=247).contains(&unit) {
            anyhow::bail!("--units: {unit} is not a Modbus RTU unit address (1 to 247)");
        }
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
        services.insert(unit, pile::PileService::new(shared, unit, peer));
    }
    let line =
        rtu::PtyLine::open().map_err(|e| anyhow::anyhow!("cannot open a pseudo-terminal: {e}"))?;
    // The one line a script reads: the port for the gateway's [[buses]].
    println!("{}", line.path().display());
    tracing::info!(
        "{} charging pile(s) as Modbus RTU units {:?} at {} baud on {}; Ctrl-C stops",
        args.units.len(),
        args.units,
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
    let _ = tokio::signal::ctrl_c().await;
    shutdown.cancel();
    server.await??;
    Ok(())
}
