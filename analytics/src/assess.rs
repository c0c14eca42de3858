//! `gridwatch-analytics assess`: the utility-resolution rules over the
//! readings brought in by `import readings`, their findings recorded as
//! cases routed to each flat's grid cell — how a building without a
//! gateway gets into the case loop.
//!
//! Imported readings are fed in time order to [`UtilityGroupRental`], the
//! rule that judges what utilities export (daily electricity, monthly
//! water). A source that exports use per interval rather than registers is
//! turned into a running register per meter first. Nothing else runs on
//! this data: the load rules need minutes, and the meter-health rules
//! expect a gateway's reporting interval, so feeding them daily values
//! would flood staff with no-data and stuck-meter alerts
//! (docs/detection.md says which interval each rule needs).

use crate::alerts::directory::Directory;
use crate::alerts::route::CellRouter;
use crate::config::AnalyticsConfig;
use crate::detect::utility_group_rental::UtilityGroupRental;
use crate::register::Register;
use crate::store::imported::UtilityReading;
use crate::store::{RecordedKind, Store};
use gridwatch_telemetry::{DeviceKind, Reading, Timestamp};
use std::collections::HashMap;

/// What an assessment did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Assessed {
    /// Imported readings read.
    pub readings: u64,
    /// Findings raised.
    pub findings: u64,
    /// Of which new cases (others folded into an open case or were recorded
    /// before).
    pub new_cases: u64,
    /// Readings of flats not of the `site/building/unit` form, skipped.
    pub unplaced: u64,
}

/// A reading a detector reads, from an imported one; `running` keeps each
/// interval meter's sum so far.
fn reading_of(u: &UtilityReading, running: &mut HashMap<String, f64>) -> Option<Reading> {
    let mut parts = u.flat.splitn(3, '/');
    let (site, building, unit) = (parts.next()?, parts.next()?, parts.next()?);
    let (kind, name) = match u.kind.as_str() {
        "electricity" => (DeviceKind::ElectricityMeter, "energy_kwh"),
        "water" => (DeviceKind::WaterMeter, "volume_m3"),
        _ => (DeviceKind::GasMeter, "volume_m3"),
    };
    let value = if u.register {
        u.value
    } else {
        let sum = running
            .entry(format!("{}|{}", u.kind, u.meter))
            .or_default();
        *sum += u.value;
        *sum
    };
    let mut r = Reading::new(Timestamp(u.ts_ms), "utility", u.meter.as_str(), kind, 0);
    r.site = site.into();
    r.building = Some(building.to_owned());
    r.unit = Some(unit.to_owned());
    r.values.insert(name.into(), value);
    Some(r)
}

/// Runs the utility rules over `readings` and records what they find.
pub fn assess(
    config: &AnalyticsConfig,
    register: &Register,
    router: &CellRouter,
    store: &Store,
    readings: &[UtilityReading],
) -> Result<Assessed, crate::store::StoreError> {
    let d = &config.detect;
    let mut rule = UtilityGroupRental::new(&d.group_rental_utility, d.local_time());
    let mut running = HashMap::new();
    let mut out = Assessed::default();
    for u in readings {
        out.readings += 1;
        let Some(r) = reading_of(u, &mut running) else {
            out.unplaced += 1;
            continue;
        };
        for f in rule.observe(&r, register) {
            out.findings += 1;
            let cell = router.cell_for(&f.site).to_owned();
            let alert = crate::alerts::raise(f, &cell);
            let rec = store.record(&alert, &config.alerts)?;
            if matches!(
                rec.kind,
                RecordedKind::Raised | RecordedKind::Recurrence { .. } | RecordedKind::Reopened
            ) {
                out.new_cases += 1;
            }
        }
    }
    Ok(out)
}

/// The `assess` subcommand: `config`'s store, register and directory, the
/// imported readings from `from` to `to` (local dates, inclusive).
pub fn run_cli(config: &std::path::Path, from: &str, to: &str) -> std::process::ExitCode {
    use std::process::ExitCode;
    let fail = |msg: String| {
        eprintln!("error: {msg}");
        ExitCode::from(crate::toml_file::EXIT_CONFIG)
    };
    let mut c = match AnalyticsConfig::load(config) {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    let directory = match &c.directory.path {
        Some(p) => match Directory::load(p) {
            Ok(d) => d,
            Err(e) => return fail(e.to_string()),
        },
        None => Directory::default(),
    };
    if let Err(e) = directory.route_into(&mut c.cells) {
        return fail(e);
    }
    let register = match &c.register.path {
        Some(p) => match Register::load(p) {
            Ok(r) => r,
            Err(e) => return fail(e.to_string()),
        },
        None => {
            return fail(
                "the config has no [register] path: flats have no occupants to judge by".into(),
            )
        }
    };
    let dates = crate::register::dates::parse_date;
    let (Some(first), Some(last)) = (dates(from), dates(to)) else {
        return fail(format!(
            "--from {from:?} and --to {to:?} must be dates (YYYY-MM-DD)"
        ));
    };
    let local = c.detect.local_time();
    let (from_ms, to_ms) = (
        local.day_end(i64::from(first) - 1).0,
        local.day_end(i64::from(last)).0,
    );
    let store = match Store::open(&c.store) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let readings = match store.utility_readings(from_ms, to_ms) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let router = CellRouter::new(&c.cells);
    match assess(&c, &register, &router, &store, &readings) {
        Ok(a) => {
            println!(
                "assessed {} imported readings from {from} to {to}: {} findings, {} new cases{}",
                a.readings,
                a.findings,
                a.new_cases,
                if a.unplaced > 0 {
                    format!(" ({} readings of unplaced flats skipped)", a.unplaced)
                } else {
                    String::new()
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
