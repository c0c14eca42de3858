//! `gridwatch-sim dlt645`: DL/T 645-2007 meters on a pseudo-terminal, misbehaving on stdin commands.

use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Dlt645Args {
    /// A meter on the line, `ADDRESS[:PHASES]` (12 digits; 1 or 3 phases).
    /// Repeat for several meters on one line.
    #[arg(long = "meter", default_value = "000000000001")]
    pub meters: Vec<String>,
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

pub async fn run(args: Dlt645Args) -> anyhow::Result<()> {
    use gridwatch_simulators::dlt645::{self, Line, LineTiming, PtyLine};
    use std::sync::{Arc, Mutex};
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
    let handler: gridwatch_simulators::control::Handler = Arc::new(move |text: &str| {
        let mut l = line.lock().unwrap_or_else(|p| p.into_inner());
        dlt645::command(&mut l, text)
    });
    let served = gridwatch_simulators::control::run(handler, args.control).await;
    shutdown.cancel();
    pty.join().await?;
    served
}
