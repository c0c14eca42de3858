//! `gridwatch-sim city`: a scaled district streamed into NATS JetStream at
//! accelerated time, for the city-scale workers (docs/scale.md).

/// The `city` command line.
#[derive(clap::Args)]
pub struct CityArgs {
    /// Flats: the district is scaled to this many, rounded up to whole
    /// sites of 250 flats (5 buildings of 10 floors of 5 flats; the
    /// scenario's other settings).
    #[arg(long, default_value_t = 2_000)]
    pub flats: u32,
    /// Simulated days.
    #[arg(long, default_value_t = 2)]
    pub days: u32,
    /// Scenario file for everything but the size; the built-in default if
    /// absent.
    #[arg(long)]
    pub scenario: Option<std::path::PathBuf>,
    /// Seed: the same scenario and seed give the same district.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the district is written (recording.jsonl, register.json for
    /// the workers' --register, truth.json).
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Use the district already in --out instead of generating it again.
    #[arg(long)]
    pub reuse: bool,
    /// The NATS server (JetStream on, the partition mapping in its config).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// The stream (created if missing, keeping `part.>`).
    #[arg(long, default_value = "GRIDWATCH")]
    pub stream: String,
    /// Simulated seconds per wall second (3600: an hour a second); 0 as
    /// fast as the stream acknowledges.
    #[arg(long, default_value_t = 0.0)]
    pub speed: f64,
}

/// Generates (or reuses) the district and publishes it.
pub async fn run(args: &CityArgs) -> anyhow::Result<()> {
    use gridwatch_analytics::cluster::stream;
    use gridwatch_simulators::district;
    anyhow::ensure!(args.flats > 0, "--flats is 0");
    anyhow::ensure!(
        args.speed >= 0.0 && args.speed.is_finite(),
        "--speed must be 0 or more, not {}",
        args.speed
    );
    let mut scenario = match &args.scenario {
        Some(p) => district::Scenario::load(p)?,
        None => district::Scenario::default(),
    };
    scenario.name = format!("city-{}", args.flats);
    scenario.days = args.days;
    scenario.buildings_per_site = 5;
    scenario.floors = 10;
    scenario.flats_per_floor = 5;
    scenario.sites = args.flats.div_ceil(250);
    let recording = args.out.join("recording.jsonl");
    if !(args.reuse && recording.exists()) {
        let started = std::time::Instant::now();
        let s = district::generate(&scenario, args.seed, &args.out)?;
        println!(
            "city: {} flats in {} sites, {} days, {} readings and {} events, generated in {:.1} s",
            s.flats,
            scenario.sites,
            scenario.days,
            s.readings,
            s.events,
            started.elapsed().as_secs_f64()
        );
    }
    let js = stream::connect(&args.nats).await?;
    stream::ensure_stream(&js, &args.stream).await?;
    let file = std::fs::File::open(&recording)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", recording.display()))?;
    let input = std::io::BufReader::with_capacity(1 << 20, file);
    let started = std::time::Instant::now();
    let speed = (args.speed > 0.0).then_some(args.speed);
    let fed = stream::publish_paced(&js, "gw", input, 0, usize::MAX, speed).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "city: {} messages into stream {} in {secs:.1} s ({:.0}/s), last sequence {}; {} unreadable lines skipped",
        fed.published,
        args.stream,
        fed.published as f64 / secs.max(1e-9),
        fed.last_seq,
        fed.malformed
    );
    Ok(())
}
