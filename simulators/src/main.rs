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
    /// Serve simulated DL/T 645-2007 meters on a pseudo-terminal until
    /// Ctrl-C; prints the port's path. Misbehaviour on demand: type
    /// `<address|all> <behaviour>` on stdin (normal, abnormal[:ERR],
    /// silent, bad-checksum, truncated, noise).
    Dlt645(Dlt645Args),
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
        Command::District(args) => district(&args),
        Command::Dlt645(args) => {
            init_logs("info");
            serve_dlt645(args).await
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
