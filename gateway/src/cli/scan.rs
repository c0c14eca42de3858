//! `gridwatch-gateway scan --host H:P` (Modbus TCP) and `scan --port DEV`
//! (Modbus RTU): the devices found, matched to the built-in profiles (see
//! [`crate::scan`]).

use crate::bus::modbus_rtu::config::baud_problem;
use crate::bus::modbus_rtu::Parity;
use crate::profile::{Profile, ProfileLibrary, BUILT_IN};
use crate::scan::rtu::{bus_tables, scan_rtu, LineSetting, USUAL_BAUDS, USUAL_PARITIES};
use crate::scan::{device_tables, scan_tcp, table, table_of};
use std::io::Write as _;
use std::ops::RangeInclusive;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Units matched with less confidence are listed but not appended.
const APPEND_CONFIDENCE: f64 = 0.5;

/// `"1-247"` or `"5"` as unit ids, refused outside 1..=247.
pub(super) fn units(text: &str) -> Result<RangeInclusive<u8>, String> {
    let one = |s: &str| {
        s.trim()
            .parse::<u8>()
            .ok()
            .filter(|u| (1..=247).contains(u))
            .ok_or_else(|| format!("{s:?} is not a unit id (1 to 247)"))
    };
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (one(a)?, one(b)?),
        None => (one(text)?, one(text)?),
    };
    if a > b {
        return Err(format!("{text:?}: the first unit id is above the last"));
    }
    Ok(a..=b)
}

/// A baud rate to try, refused unless standard (96000 for 9600 is a typo).
pub(super) fn baud(text: &str) -> Result<u32, String> {
    let b = text
        .trim()
        .parse::<u32>()
        .map_err(|_| format!("{text:?} is not a baud rate"))?;
    match baud_problem(b) {
        Some(why) => Err(why),
        None => Ok(b),
    }
}

/// Every built-in profile, and a runtime to scan on.
fn setup() -> Result<(Vec<Arc<Profile>>, tokio::runtime::Runtime), ExitCode> {
    let mut library = ProfileLibrary::built_in();
    let profiles = BUILT_IN
        .iter()
        .filter_map(|(name, _)| library.get(name).ok())
        .collect();
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Ok((profiles, rt)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// Appends `text` (config tables) to `file` and says what to do next.
pub(super) fn append_to(file: &Path, text: &str) -> Result<(), ExitCode> {
    let written = std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        eprintln!("error: cannot append to {}: {e}", file.display());
        return Err(ExitCode::FAILURE);
    }
    eprintln!(
        "appended {} device(s) to {}; run `gridwatch-gateway check -c {}`",
        text.matches("\n[[devices]]").count(),
        file.display(),
        file.display()
    );
    Ok(())
}

/// Scans the RS-485 line on `port` at every baud rate and parity given (the
/// usual ones when none are) and prints the table; appends to `append`.
pub(super) fn run_rtu(
    port: &Path,
    bauds: &[u32],
    parities: &[Parity],
    units: RangeInclusive<u8>,
    timeout_ms: u64,
    append: Option<&Path>,
) -> ExitCode {
    if let Err(e) = std::fs::metadata(port) {
        eprintln!("error: --port {}: {e}", port.display());
        return ExitCode::from(super::EXIT_CONFIG);
    }
    let (profiles, runtime) = match setup() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let bauds = if bauds.is_empty() {
        &USUAL_BAUDS[..]
    } else {
        bauds
    };
    let parities = if parities.is_empty() {
        &USUAL_PARITIES[..]
    } else {
        parities
    };
    let settings: Vec<LineSetting> = bauds
        .iter()
        .flat_map(|&baud| {
            parities
                .iter()
                .map(move |&parity| LineSetting { baud, parity })
        })
        .collect();
    let found = runtime.block_on(scan_rtu(
        port,
        &settings,
        units,
        &profiles,
        Duration::from_millis(timeout_ms),
    ));
    let lines: Vec<String> = found.iter().map(|f| f.setting.describe()).collect();
    let rows: Vec<(&str, &crate::scan::Found)> = lines
        .iter()
        .zip(&found)
        .map(|(l, f)| (l.as_str(), &f.found))
        .collect();
    print!("{}", table_of(&rows));
    let mut settings_found: Vec<&str> = lines.iter().map(String::as_str).collect();
    settings_found.dedup();
    if settings_found.len() > 1 {
        eprintln!(
            "note: units answered at {} different line settings; devices on one line must \
             share one (set them alike, or wire them to separate ports)",
            settings_found.len()
        );
    }
    if let Some(file) = append {
        if let Err(code) = append_to(file, &bus_tables(&found, port, APPEND_CONFIDENCE)) {
            return code;
        }
    }
    if found.is_empty() {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// Runs the scan and prints the table; appends to `append` if given.
pub(super) fn run(
    host: &str,
    units: RangeInclusive<u8>,
    timeout_ms: u64,
    append: Option<&Path>,
) -> ExitCode {
    let Some((h, p)) = host.rsplit_once(':') else {
        eprintln!("error: --host {host:?} needs a port, e.g. 192.168.1.20:502");
        return ExitCode::from(super::EXIT_CONFIG);
    };
    let Ok(port) = p.parse::<u16>() else {
        eprintln!("error: --host {host:?}: {p:?} is not a TCP port");
        return ExitCode::from(super::EXIT_CONFIG);
    };
    let (profiles, runtime) = match setup() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let found = runtime.block_on(scan_tcp(
        h,
        port,
        units,
        &profiles,
        Duration::from_millis(timeout_ms),
    ));
    print!("{}", table(&found, host));
    if let Some(file) = append {
        if let Err(code) = append_to(file, &device_tables(&found, h, port, APPEND_CONFIDENCE)) {
            return code;
        }
    }
    if found.is_empty() {
        // Nothing answered: a script can tell.
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
