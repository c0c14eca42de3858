//! The config, register and recording of `replay`, loaded the way every
//! replaying command does, with errors printed and turned into exit codes.

use super::{beside, config_error, EXIT_CONFIG};
use crate::config::AnalyticsConfig;
use std::path::PathBuf;
use std::process::ExitCode;

/// Loads config and register and replays the recording; errors are printed
/// and turned into the exit code.
pub(super) fn replay_file(
    recording: &std::path::Path,
    config: Option<&std::path::Path>,
    register: Option<&std::path::Path>,
    strict: bool,
) -> Result<(crate::replay::Replay, crate::register::Register), ExitCode> {
    let (c, reg, input) = replay_inputs(recording, config, register)?;
    let options = crate::replay::ReplayOptions { strict };
    crate::replay::replay_with(&c, reg.clone(), input, options)
        .map(|r| (r, reg))
        .map_err(|e| {
            eprintln!("error: {}: {e}", recording.display());
            ExitCode::FAILURE
        })
}

/// The config, register and opened recording of a replay; errors are
/// printed and turned into the exit code.
pub(super) fn replay_inputs(
    recording: &std::path::Path,
    config: Option<&std::path::Path>,
    register: Option<&std::path::Path>,
) -> Result<ReplayInputs, ExitCode> {
    let c = match config {
        Some(p) => AnalyticsConfig::load(p).map_err(|e| config_error(&e))?,
        None => AnalyticsConfig::default(),
    };
    // --register, else the config's [register] path, else beside the recording.
    let named = register
        .map(PathBuf::from)
        .or_else(|| c.register.path.clone());
    let reg_path = named
        .clone()
        .unwrap_or_else(|| beside(recording, "register.json"));
    let reg = if named.is_some() || reg_path.exists() {
        crate::register::Register::load(&reg_path).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_CONFIG)
        })?
    } else {
        eprintln!(
            "note: no register at {}; group rental assumes the default occupants and sightings name the reader",
            reg_path.display()
        );
        crate::register::Register::default()
    };
    let file = std::fs::File::open(recording).map_err(|e| {
        eprintln!("error: cannot open recording {}: {e}", recording.display());
        ExitCode::from(EXIT_CONFIG)
    })?;
    Ok((c, reg, std::io::BufReader::with_capacity(1 << 20, file)))
}

pub(super) type ReplayInputs = (
    AnalyticsConfig,
    crate::register::Register,
    std::io::BufReader<std::fs::File>,
);
