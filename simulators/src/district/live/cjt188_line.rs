//! The flats' water and gas meters as CJ/T 188 meters (`--water-gas
//! cjt188`): per building one line per kind on a pseudo-terminal, as a
//! utility's M-Bus or RS-485 pair runs through a building, the gateway
//! reading it as it would `/dev/ttyUSB0`.
//!
//! Each meter answers with the register the recording last gave it while
//! that is fresh. A meter with no recorded reading for 1¼ of its interval
//! (before its first, in a gap or an outage of the district) answers
//! abnormally (D6 set), as the Modbus cabinets answer exception 0x0B: the
//! gateway publishes nothing for it and reports a device error. Silence
//! would cost the line a timeout per meter and put the gateway's pollers
//! into backoff, off the grid of polls half an interval after the
//! recorded readings that the live run relies on.
//!
//! A CJ/T 188 meter sends registers (XXXXXX.XX m³) and no interval values:
//! the gateway derives `flow_l` and `use_m3` from the register's rise. So
//! the recording's registers must be whole hundredths of m³ (the scenario's
//! `water_register_step_l` a multiple of 10, `gas_register_step_m3` of
//! 0.01) for the live values to be the recorded ones; [`check_scenario`]
//! says so before anything starts.

use super::*;
use crate::cjt188::{Line, Meter, SharedLine};
use crate::dlt645::pty::{open_raw_pty, serve_line};
use crate::dlt645::LineTiming;
use gridwatch_cjt188::{Address, Frame, MeterType, Receiver, Status, Valve, DEFAULT_PREAMBLE};
use gridwatch_gateway::profile::Profile;

/// How the flats' water and gas meters are wired to the gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WaterGas {
    /// Modbus TCP meter cabinets (the `gridwatch-flat-wm`/`-gm` profiles).
    #[default]
    Modbus,
    /// CJ/T 188 meters, one line per kind and building on a pseudo-terminal.
    Cjt188,
}

/// The CJ/T 188 meter type of meter kind `k` of [`METERS`] (1 water, 2 gas).
pub(super) fn meter_type(k: usize) -> MeterType {
    if k == 2 {
        MeterType::GAS
    } else {
        MeterType::COLD_WATER
    }
}

/// The gateway config's `meter_type` word for meter kind `k`.
pub(super) fn meter_type_word(k: usize) -> &'static str {
    if k == 2 {
        "gas"
    } else {
        "cold_water"
    }
}

/// The address of flat `flat` (from 0) of building number `building` (from
/// 0): kind digit (1 water, 2 gas), building, flat, as a utility numbers
/// its meters. The addresses of one line differ, and water and gas differ.
pub(super) fn meter_address(k: usize, building: usize, flat: usize) -> anyhow::Result<Address> {
    let text = format!("{k}{:05}{:08}", building + 1, flat + 1);
    Address::parse(&text).map_err(|e| anyhow::anyhow!("meter address {text}: {e}"))
}

/// Refuses a scenario the CJ/T 188 meters cannot show as recorded.
pub fn check_scenario(scenario: &Scenario) -> anyhow::Result<()> {
    let whole = |v: f64| (v - v.round()).abs() < 1e-9 && v.round() >= 1.0;
    let water_ok = scenario
        .water_register_step_l
        .is_some_and(|l| whole(l / 10.0));
    let gas_ok = scenario
        .gas_register_step_m3
        .is_some_and(|m| whole(m * 100.0));
    if !(water_ok && gas_ok) {
        bail!(
            "scenario {}: --water-gas cjt188 needs registers a CJ/T 188 meter can send \
             (hundredths of m³): set water_register_step_l to a multiple of 10 (it is {:?}) \
             and gas_register_step_m3 to a multiple of 0.01 (it is {:?})",
            scenario.name,
            scenario.water_register_step_l,
            scenario.gas_register_step_m3
        );
    }
    if scenario.meter_replacement_rate > 0.0 {
        bail!(
            "scenario {}: --water-gas cjt188 does not play meter replacements (a new meter \
             needs its address in the gateway config); set meter_replacement_rate = 0",
            scenario.name
        );
    }
    Ok(())
}

/// Writes recorded value `name` into meter `index` of `line`: the register
/// (`volume_m3`) is set; interval values are the gateway's to derive.
pub(super) fn write(line: &SharedLine, index: usize, name: &str, v: f64) -> Result<(), String> {
    if name != "volume_m3" {
        return Ok(());
    }
    let mut line = line
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let meter = line
        .meters_mut()
        .get_mut(index)
        .ok_or_else(|| format!("no meter {index} on the line"))?;
    meter.set_register(v)
}

impl Installation {
    /// Starts the CJ/T 188 line of meter kind `k` (1 water, 2 gas) in
    /// building `b` (number `n`), its meters reporting every `interval_ms`;
    /// returns where the gateway finds it.
    pub(super) fn cjt188_line(
        &mut self,
        b: &Building,
        n: usize,
        k: usize,
        profile: &Profile,
        interval_ms: i64,
    ) -> anyhow::Result<Wiring> {
        let prefix = METERS[k].0;
        // The recording's names, as the flat profiles have them: the
        // register is written, the interval value is the gateway's.
        let names: Arc<Vec<String>> =
            Arc::new(profile.registers.iter().map(|r| r.name.clone()).collect());
        let addresses = (0..b.flats.len())
            .map(|i| meter_address(k, n, i))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let fresh: Vec<Arc<AtomicI64>> = (0..addresses.len())
            .map(|_| Arc::new(AtomicI64::new(i64::MIN)))
            .collect();
        let line = open(
            k,
            &addresses,
            fresh.clone(),
            self.clock.clone(),
            self.counters.clone(),
            self.shutdown.clone(),
        )?;
        for (i, unit) in b.flats.iter().enumerate() {
            self.meters.insert(
                (
                    format!("gw-{}-{}", b.site, b.id),
                    format!("{prefix}-{unit}"),
                ),
                LiveMeter {
                    registers: Registers::Cjt188(line.line.clone(), i),
                    fresh_until: fresh[i].clone(),
                    interval_ms,
                    names: names.clone(),
                },
            );
        }
        self.tasks.push((
            format!("{prefix} CJ/T 188 line of {}/{}", b.site, b.id),
            line.task,
        ));
        Ok(Wiring::Cjt188(line.path, addresses))
    }
}

/// A running CJ/T 188 line of one building and kind.
pub(super) struct MeterLine {
    /// The pseudo-terminal the gateway opens.
    pub path: PathBuf,
    /// The meters, in flat order, for the player to write.
    pub line: SharedLine,
    /// The task answering on the line.
    pub task: JoinHandle<anyhow::Result<()>>,
}

/// Opens a pseudo-terminal and serves the meters at `addresses` (of meter
/// kind `k`) on it until `shutdown`, each answering while `fresh[i]` (a
/// simulated ms) is ahead of the clock the gateways stamp with.
pub(super) fn open(
    k: usize,
    addresses: &[Address],
    fresh: Vec<Arc<AtomicI64>>,
    clock: Arc<OnceLock<ScaledClock>>,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
) -> anyhow::Result<MeterLine> {
    let meters = addresses
        .iter()
        .map(|a| Meter::new(meter_type(k), *a, 0.0, 0.0))
        .collect();
    let line: SharedLine = Arc::new(std::sync::Mutex::new(Line::new(meters)));
    let (master, slave, path) =
        open_raw_pty().context("opening a pseudo-terminal for a CJ/T 188 meter line")?;
    let by_address: HashMap<Address, Arc<AtomicI64>> =
        addresses.iter().copied().zip(fresh).collect();
    // Answers at once: at a district's speed a 2400 baud line would take
    // longer than the simulated hour between polls.
    let timing = LineTiming {
        pace: false,
        turnaround: Duration::from_millis(1),
        ..LineTiming::default()
    };
    let served = line.clone();
    let mut receiver = Receiver::new();
    let task = tokio::spawn(async move {
        serve_line(master, slave, timing, shutdown, move |bytes| {
            let mut answers = Vec::new();
            let mut rest = bytes;
            while !rest.is_empty() {
                rest = receiver.push(rest);
                while let Some(got) = receiver.next_frame() {
                    let Ok(request) = got else { continue };
                    let Some(fresh_until) = by_address.get(&request.address) else {
                        continue;
                    };
                    let now = clock.get().map(|c| c.now().0);
                    match now.filter(|now| *now < fresh_until.load(Ordering::Relaxed)) {
                        Some(now) => {
                            let mut line = served
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            if let Some(answer) = line.respond(&request, now) {
                                counters.answered.fetch_add(1, Ordering::Relaxed);
                                answers.push(answer);
                            }
                        }
                        None => {
                            counters.refused.fetch_add(1, Ordering::Relaxed);
                            answers.extend(no_data(&request));
                        }
                    }
                }
            }
            answers
        })
        .await
        .context("serving a CJ/T 188 meter line")
    });
    Ok(MeterLine { path, line, task })
}

/// The abnormal answer of a meter with no fresh data to `request`.
fn no_data(request: &Frame) -> Option<Vec<u8>> {
    if request.control.from_meter() {
        return None;
    }
    let answer = Frame::abnormal_answer(
        request.meter_type,
        request.address,
        request.control.function(),
        request.data().get(2).copied().unwrap_or(0),
        Status::new(Valve::Open, false),
    );
    let mut wire = vec![0u8; answer.encoded_len(DEFAULT_PREAMBLE)];
    let n = answer.encode(DEFAULT_PREAMBLE, &mut wire).ok()?;
    wire.truncate(n);
    Some(wire)
}
