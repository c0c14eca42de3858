//! `gridwatch-sim district` and `district-live`: a synthetic district, generated or played live.

use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct DistrictArgs {
    /// Scenario file (config/scenarios/*.toml); the built-in default if absent.
    #[arg(long)]
    pub scenario: Option<std::path::PathBuf>,
    /// Seed: the same scenario and seed give the same district.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory.
    #[arg(long)]
    pub out: std::path::PathBuf,
}

#[derive(clap::Args)]
pub struct DistrictLiveArgs {
    #[command(flatten)]
    pub district: DistrictArgs,
    /// Use the district already in --out (same scenario and seed) instead
    /// of generating it again.
    #[arg(long)]
    pub reuse: bool,
    /// MQTT broker HOST:PORT the gateways publish to; an embedded broker on
    /// 127.0.0.1 when absent.
    #[arg(long)]
    pub broker: Option<String>,
    /// Simulated seconds per wall second; default: a day in about 30 s
    /// (slower when the shortest meter interval would be polled more often
    /// than every 100 ms). Rounded so an interval is whole milliseconds.
    #[arg(long)]
    pub speed: Option<f64>,
    /// Play at most this many days.
    #[arg(long)]
    pub days: Option<u32>,
    /// Also write every reading that came back from the broker to this
    /// file, as a recording `gridwatch-analytics evaluate` can score.
    #[arg(long)]
    pub capture: Option<std::path::PathBuf>,
    /// How the flats' water and gas meters reach the gateways: Modbus TCP
    /// meter cabinets, or CJ/T 188 meters on a pseudo-terminal line per
    /// building and kind (the scenario's registers must then be in
    /// hundredths of m³: docs/cjt188.md).
    #[arg(long, value_enum, default_value = "modbus")]
    pub water_gas: gridwatch_simulators::district::live::WaterGas,
}

pub async fn run_live(args: &DistrictLiveArgs, stop: CancellationToken) -> anyhow::Result<()> {
    use gridwatch_simulators::district::{self, live};
    let d = &args.district;
    let scenario = match &d.scenario {
        Some(p) => district::Scenario::load(p)?,
        None => district::Scenario::default(),
    };
    if args.water_gas == live::WaterGas::Cjt188 {
        // Before generating: the district would not fit the meters.
        live::check_scenario(&scenario)?;
    }
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
        water_gas: args.water_gas,
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

pub fn run(args: &DistrictArgs) -> anyhow::Result<()> {
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
