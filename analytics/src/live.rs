//! The live views beside detection: the charging-station board and the
//! chart history, both fed every reading the detectors see, and the API
//! and dashboard that show them. Kept apart from [`crate::service`] so that
//! the service reads as the data path alone.

use crate::alerts::directory::Directory;
use crate::api::AppState;
use crate::config::AnalyticsConfig;
use crate::history::History;
use crate::register::Register;
use crate::store::stations::Stations;
use crate::store::Store;
use gridwatch_telemetry::{Clock, Reading};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The station board and the chart history, shared with the API.
#[derive(Debug, Clone)]
pub struct Live {
    /// Latest state of every socket.
    pub stations: Stations,
    /// Recent minutes per socket and days per flat.
    pub history: History,
    /// `<checkpoint>.history`, when checkpoints are on.
    history_file: Option<PathBuf>,
}

impl Live {
    /// The live views `config` asks for, in the sites' zones from the
    /// `directory`; the history is restored from beside the checkpoint.
    pub fn new(config: &AnalyticsConfig, directory: &Directory, register: Register) -> Self {
        let zones = directory.zones(config.detect.utc_offset_min);
        let history = History::new(
            zones,
            crate::history::NIGHT_HOURS,
            register,
            config.detect.group_rental.default_occupants,
        );
        let history_file = config
            .checkpoint
            .path
            .as_deref()
            .map(crate::history::file::beside);
        if let Some(p) = &history_file {
            history.restore(p);
        }
        Self {
            stations: Stations::new(config.detect.socket_safety.max_sockets),
            history,
            history_file,
        }
    }

    /// Takes one reading the detectors are given.
    pub fn observe(&self, r: &Reading) {
        self.stations.observe(r);
        self.history.observe(r);
    }

    /// Takes one gateway event (a pile offline or back, any sign of life).
    pub fn observe_event(&self, e: &gridwatch_telemetry::Event) {
        self.stations.observe_event(e);
    }

    /// Logs what the live views hold and what they turned away, with the
    /// service's other counters.
    pub fn log_stats(&self) {
        let h = self.history.stats();
        info!(
            history_sockets = h.sockets,
            history_flats = h.flats,
            history_refused = h.refused,
            history_late = h.late,
            stations_refused = self.stations.refused(),
            live_lists_refused = crate::web::list_events::refused(),
            "live views: chart history of {} sockets and {} flats ({} readings refused at the bounds, {} too old to keep); \
             {} sockets not on the station board (full); {} live alert lists refused (too many open)",
            h.sockets,
            h.flats,
            h.refused,
            h.late,
            self.stations.refused(),
            crate::web::list_events::refused(),
        );
    }

    /// Saves the history now, if checkpoints are on; a failure is logged.
    pub fn save(&self) {
        if let Some(p) = &self.history_file {
            if let Err(e) = self.history.save(p) {
                warn!("{e}; the charts keep what they have in memory");
            }
        }
    }

    /// Saves the history every `every` until `shutdown` (the service saves
    /// it once more when it stops).
    pub fn spawn_saver(&self, every: Duration, shutdown: CancellationToken) {
        if self.history_file.is_none() {
            return;
        }
        let live = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                let l = live.clone();
                let _ = tokio::task::spawn_blocking(move || l.save()).await;
            }
        });
    }
}

/// What the API needs besides the live views.
pub struct ApiParts {
    /// The case store.
    pub store: Store,
    /// Users, cells and sites.
    pub directory: Arc<Directory>,
    /// The host's clock.
    pub clock: Arc<dyn Clock>,
    /// Where socket-off commands go.
    pub commands: crate::command::CommandSender,
    /// Told the bound address.
    pub ready: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
}

/// Starts the API and dashboard when `[api] listen` is set.
pub fn serve_api(
    config: &AnalyticsConfig,
    live: &Live,
    parts: ApiParts,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let Some(addr) = config.api.listen else {
        return Ok(());
    };
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for the API ([api] listen): {e}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    info!(
        "API and dashboard on http://{bound} ({} users in the directory)",
        parts.directory.users.len()
    );
    let router = crate::http::router(AppState {
        store: parts.store,
        directory: parts.directory,
        alerts: config.alerts.clone(),
        clock: parts.clock,
        stations: live.stations.clone(),
        cells: Arc::new(crate::alerts::route::CellRouter::new(&config.cells)),
        zones: live.history.zones().clone(),
        history: live.history.clone(),
        commands: Some(parts.commands),
    });
    crate::api::connections::spawn(listener, router, config.api.limits(), shutdown.clone())?;
    if let Some(ready) = parts.ready {
        let _ = ready.send(bound);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_take_their_directory_zone_and_others_the_detectors() {
        let d = Directory::from_toml_str(
            "[[cells]]\nid = \"c\"\non_duty = []\n[[sites]]\nid = \"west\"\ncell = \"c\"\ntime_zone = \"Asia/Urumqi\"\n\
             [[sites]]\nid = \"east\"\ncell = \"c\"\n",
            "directory.toml",
        )
        .unwrap();
        let z = d.zones(AnalyticsConfig::default().detect.utc_offset_min);
        assert_eq!(z.of("west"), 360);
        assert_eq!(z.of("east"), 480);
        assert_eq!(z.of("unknown"), 480);
    }
}
