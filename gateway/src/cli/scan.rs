//! `gridwatch-gateway scan --host H:P`: the devices behind a Modbus TCP
//! address, matched to the built-in profiles (see [`crate::scan`]).

use crate::profile::{ProfileLibrary, BUILT_IN};
use crate::scan::{device_tables, scan_tcp, table};
use std::io::Write as _;
use std::ops::RangeInclusive;
use std::path::Path;
use std::process::ExitCode;
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
    let mut library = ProfileLibrary::built_in();
    let profiles: Vec<_> = BUILT_IN
        .iter()
        .filter_map(|(name, _)| library.get(name).ok())
        .collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
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
        let text = device_tables(&found, h, port, APPEND_CONFIDENCE);
        let written = std::fs::OpenOptions::new()
            .append(true)
            .open(file)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(e) = written {
            eprintln!("error: cannot append to {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
        eprintln!(
            "appended {} device(s) to {}; run `gridwatch-gateway check -c {}`",
            text.matches("[[devices]]").count(),
            file.display(),
            file.display()
        );
    }
    if found.is_empty() {
        // Nothing answered: a script can tell.
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
