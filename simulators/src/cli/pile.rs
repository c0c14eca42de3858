//! `gridwatch-sim pile`: one charging pile on Modbus TCP, with faults at
//! start (`--fault`) and at run time (stdin, `--control`).

use gridwatch_simulators::pile;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct PileArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5020")]
    pub listen: std::net::SocketAddr,
    /// Number of sockets.
    #[arg(long, default_value_t = 10)]
    pub sockets: u16,
    /// Sockets with a charger (--charger) plugged in at start
    /// (comma-separated); `--charging` alone: none.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3", num_args = 0..)]
    pub charging: Vec<u16>,
    /// The kind of charger plugged into the --charging sockets (lithium,
    /// lead_acid, lithium_sharp, fast, two_packs, never_stops, overheating).
    #[arg(long, default_value = "lithium", value_parser = parse_charger_arg)]
    pub charger: pile::ChargerKind,
    /// A fault with its timing, `KIND,socket=N[,at=DUR][,for=DUR]` (KIND
    /// overcurrent, over_temperature, charging_past_full or
    /// residual_current; at and for in simulated time from the start, e.g.
    /// `overcurrent,socket=2,at=30s,for=60s`). Repeatable.
    #[arg(long = "fault")]
    pub faults: Vec<String>,
    /// Also take the stdin commands over TCP on this loopback address, one
    /// answer line (`ok …` or `error …`) per command line (e.g.
    /// 127.0.0.1:7020; port 0 picks one and prints it).
    #[arg(long)]
    pub control: Option<std::net::SocketAddr>,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Modbus unit id.
    #[arg(long, default_value_t = 1)]
    pub unit_id: u8,
    /// Seed of the measurement noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn parse_charger_arg(word: &str) -> Result<pile::ChargerKind, String> {
    pile::command::parse_charger(word)
}

pub async fn run(args: PileArgs) -> anyhow::Result<()> {
    let mut model = pile::PileModel::new(pile::PileConfig {
        sockets: args.sockets,
        seed: args.seed,
        unit_id: args.unit_id,
        ..pile::PileConfig::default()
    })?;
    for s in &args.charging {
        model.plug_in(*s, args.charger)?;
    }
    let shared = pile::SharedPile::new(model);
    let piles = pile::Piles::new([(args.unit_id, shared.clone())].into());
    for spec in &args.faults {
        let said = piles
            .command(&format!("fault {spec}"))
            .map_err(|e| anyhow::anyhow!("--fault {spec:?}: {e}"))?;
        tracing::info!("{said}");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    // The line a script reads (--listen 127.0.0.1:0 picks a free port).
    let listen = listener.local_addr()?;
    println!("Modbus TCP on {listen}");
    let shutdown = CancellationToken::new();
    let _clock = pile::spawn_clock(shared.clone(), args.speed, 100, shutdown.clone())?;
    let _timer = piles.spawn_timer(shutdown.clone());
    tracing::info!(
        "charging pile with {} sockets serving Modbus TCP on {} (unit {}), {:?} chargers on {:?}; type `help` for commands, Ctrl-C stops",
        args.sockets, listen, args.unit_id, args.charger, args.charging
    );
    let server = tokio::spawn(pile::serve(
        listener,
        shared,
        args.unit_id,
        shutdown.clone(),
    ));
    let served = gridwatch_simulators::control::run(piles.handler(), args.control).await;
    shutdown.cancel();
    served?;
    server.await??;
    Ok(())
}
