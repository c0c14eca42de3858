//! `gridwatch-sim meter`: any device profile on Modbus TCP, misbehaving on demand.

use gridwatch_simulators::meter;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct MeterArgs {
    /// Profile (model name, e.g. eastron-sdm630).
    #[arg(long)]
    pub profile: String,
    /// Folder of extra or overriding profiles (<model>.toml).
    #[arg(long)]
    pub profiles_dir: Option<std::path::PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// TCP port (0: any free port; the chosen one is printed).
    #[arg(long, default_value_t = 5020)]
    pub port: u16,
    /// Modbus unit id of the (first) device.
    #[arg(long, default_value_t = 1)]
    pub unit: u8,
    /// Devices behind this address, with unit ids from --unit upwards, as
    /// behind a TCP-to-RTU gateway.
    #[arg(long, default_value_t = 1)]
    pub units: u8,
    /// How to behave: normal, exception=N, silent (never answer) or absent
    /// (port closed).
    #[arg(long, default_value = "normal")]
    pub behave: meter::Behaviour,
    /// Separate devices, each on its own port from --port upwards (with
    /// --port 0, each on any free port); every one serves --units units.
    #[arg(long, default_value_t = 1)]
    pub devices: u16,
    /// Disappear and return in a cycle: UP_S:DOWN_S seconds.
    #[arg(long, value_parser = parse_flap)]
    pub flap: Option<(u64, u64)>,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Seed of the values (each unit adds its id).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
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

pub async fn run(args: MeterArgs) -> anyhow::Result<()> {
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
    super::wait_for_stop().await;
    shutdown.cancel();
    for server in servers {
        server.await??;
    }
    Ok(())
}
