//! `gridwatch-sim cjt188`: the simulated bus from the command line, with
//! misbehaviour at start (`--misbehave`) and typed on stdin.

use super::{command, misbehave, parse_meter, Line, PtyLine};
use crate::dlt645::LineTiming;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Options of `gridwatch-sim cjt188`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A meter on the bus, `KIND:ADDRESS`: KIND water, hot-water, gas, heat
    /// or a type byte in hex (10-49); ADDRESS the 14 digits on the meter.
    /// Repeat for several meters on one bus.
    #[arg(
        long = "meter",
        default_values = ["water:00000000000001", "gas:00000000000002", "heat:00000000000003"]
    )]
    pub meters: Vec<String>,
    /// Misbehaviour from the start, `ADDRESS=WORD` or `all=WORD` (the words
    /// of the stdin commands: silent, bad-checksum, truncated, noise,
    /// abnormal, low-battery, valve-closed, …). Repeatable.
    #[arg(long = "misbehave")]
    pub misbehave: Vec<String>,
    /// Baud rate the answers are paced at (the line is 8E1).
    #[arg(long, default_value_t = 2400)]
    pub baud: u32,
    /// Answer at once instead of at the baud rate's pace.
    #[arg(long)]
    pub no_pace: bool,
    /// Also take the stdin commands over TCP on this loopback address, one
    /// answer line (`ok …` or `error …`) per command line.
    #[arg(long)]
    pub control: Option<std::net::SocketAddr>,
}

/// Serves the bus until Ctrl-C, printing the port's path, and carries out
/// the commands typed on stdin.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let meters = args
        .meters
        .iter()
        .enumerate()
        .map(|(i, m)| parse_meter(m, i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let summary: Vec<String> = meters
        .iter()
        .map(|m| format!("{} (type {})", m.address, m.meter_type))
        .collect();
    let mut line = Line::new(meters);
    for arg in &args.misbehave {
        println!("{}", misbehave(&mut line, arg).map_err(anyhow::Error::msg)?);
    }
    let line = Arc::new(Mutex::new(line));
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
        "CJ/T 188 meters {} on {} at {} baud 8E1; type `<address|all> <behaviour>` to misbehave, Ctrl-C stops",
        summary.join(", "),
        pty.path().display(),
        args.baud
    );
    let handler: crate::control::Handler = Arc::new(move |text: &str| {
        let mut l = line.lock().unwrap_or_else(|p| p.into_inner());
        command(&mut l, text)
    });
    let served = crate::control::run(handler, args.control).await;
    shutdown.cancel();
    pty.join().await?;
    served
}
