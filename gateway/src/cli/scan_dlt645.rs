//! `gridwatch-gateway scan --port DEV --protocol dlt645`: the DL/T 645 meter on a
//! serial line (one meter per line; see [`crate::scan::dlt645`]).

use crate::scan::dlt645::{device_table, scan_dlt645, table};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Scans `port`, prints the meter found (or what each baud rate gave) and
/// appends its `[[devices]]` table to `append`. Exit 1 when no meter
/// answered, 2 when the port cannot be used.
pub(super) fn run(port: &Path, bauds: &[u32], timeout_ms: u64, append: Option<&Path>) -> ExitCode {
    if let Err(e) = std::fs::metadata(port) {
        eprintln!("error: --port {}: {e}", port.display());
        return ExitCode::from(super::EXIT_CONFIG);
    }
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
    let scanned = runtime.block_on(scan_dlt645(port, bauds, Duration::from_millis(timeout_ms)));
    let (found, notes) = match scanned {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    for n in &notes {
        eprintln!("note: {n}");
    }
    let Some(found) = found else {
        eprintln!(
            "no DL/T 645 meter answered on {}; check the wiring (A/B swapped gives garbled \
             bytes or silence) and that only one meter is on the line while scanning",
            port.display()
        );
        return ExitCode::from(1);
    };
    print!("{}", table(&found, port));
    if let Some(file) = append {
        if let Err(code) = super::scan::append_to(file, &device_table(&found, port)) {
            return code;
        }
    }
    ExitCode::SUCCESS
}
