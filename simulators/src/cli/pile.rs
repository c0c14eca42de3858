//! `gridwatch-sim pile`: one charging pile on Modbus TCP.

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
    /// Sockets with a lithium charger plugged in at start (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub charging: Vec<u16>,
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

pub async fn run(args: PileArgs) -> anyhow::Result<()> {
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
