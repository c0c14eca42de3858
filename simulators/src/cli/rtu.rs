//! `gridwatch-sim rtu`: piles and profile-driven devices as Modbus RTU units on a pty.

use gridwatch_simulators::{meter, pile};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct RtuArgs {
    /// Line speed; the simulator answers no faster than this baud rate allows.
    #[arg(long, default_value_t = 9600)]
    pub baud: u32,
    /// Unit addresses on the line, one charging pile each (comma-separated);
    /// unit 1 if neither --units nor --unit is given.
    #[arg(long, value_delimiter = ',')]
    pub units: Vec<u8>,
    /// A device of any profile on the line, `UNIT=MODEL` (e.g.
    /// `3=eastron-sdm630`); repeat for several.
    #[arg(long = "unit")]
    pub meters: Vec<String>,
    /// Folder of extra or overriding profiles (<model>.toml) for --unit.
    #[arg(long)]
    pub profiles_dir: Option<std::path::PathBuf>,
    /// Number of sockets per pile.
    #[arg(long, default_value_t = 10)]
    pub sockets: u16,
    /// Sockets with a charger (--charger) plugged in at start
    /// (comma-separated); `--charging` alone: none.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3", num_args = 0..)]
    pub charging: Vec<u16>,
    /// The kind of charger plugged into the --charging sockets (lithium,
    /// lead_acid, lithium_sharp, fast, two_packs, never_stops, overheating).
    #[arg(long, default_value = "lithium", value_parser = super::pile::parse_charger_arg)]
    pub charger: pile::ChargerKind,
    /// A fault with its timing, `KIND,socket=N[,unit=U][,at=DUR][,for=DUR]`
    /// (as `pile --fault`; unit may be left out with one pile). Repeatable.
    #[arg(long = "fault")]
    pub faults: Vec<String>,
    /// Also take the stdin commands over TCP on this loopback address (as
    /// `pile --control`).
    #[arg(long)]
    pub control: Option<std::net::SocketAddr>,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Seed of the measurement noise (unit n uses seed + n).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Misbehaving units, `unit=how` with how one of silent, crc, truncate,
    /// noise, slow (300 ms), exception (0x04), e.g. `--misbehave 2=crc`.
    #[arg(long, value_delimiter = ',')]
    pub misbehave: Vec<String>,
    /// Units set to another speed than --baud, `unit=baud`, e.g.
    /// `--unit-baud 5=19200`: they hear the master only while its port is
    /// at that speed (every other unit only at --baud), as on a line where
    /// one meter was set differently. Parity cannot be told on a pty.
    #[arg(long, value_delimiter = ',')]
    pub unit_baud: Vec<String>,
}

/// `5=19200` → unit 5 listens at 19 200 baud.
fn unit_baud(spec: &str) -> anyhow::Result<(u8, u32)> {
    let parsed = spec
        .split_once('=')
        .and_then(|(u, b)| Some((u.trim().parse().ok()?, b.trim().parse().ok()?)));
    parsed.ok_or_else(|| anyhow::anyhow!("--unit-baud {spec:?}: expected UNIT=BAUD, e.g. 5=19200"))
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

pub async fn run(mut args: RtuArgs) -> anyhow::Result<()> {
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
    for &unit in &all_units {
        control.set_baud(unit, args.baud);
    }
    for spec in &args.unit_baud {
        let (unit, baud) = unit_baud(spec)?;
        if !all_units.contains(&unit) {
            anyhow::bail!("--unit-baud {spec:?}: unit {unit} is not on the line {all_units:?}");
        }
        control.set_baud(unit, baud);
    }
    let shutdown = CancellationToken::new();
    let mut services = BTreeMap::new();
    let mut clocks = Vec::new();
    let mut piles = BTreeMap::new();
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
            model.plug_in(*s, args.charger)?;
        }
        let shared = pile::SharedPile::new(model);
        piles.insert(unit, shared.clone());
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
    let piles = pile::Piles::new(piles);
    for spec in &args.faults {
        let said = piles
            .command(&format!("fault {spec}"))
            .map_err(|e| anyhow::anyhow!("--fault {spec:?}: {e}"))?;
        tracing::info!("{said}");
    }
    let _timer = piles.spawn_timer(shutdown.clone());
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
    let served = gridwatch_simulators::control::run(piles.handler(), args.control).await;
    shutdown.cancel();
    served?;
    server.await??;
    Ok(())
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
