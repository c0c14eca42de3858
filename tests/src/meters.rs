//! Simulated Modbus meters for the end-to-end tests: units of the built-in
//! profiles, each an hour into its run, behind one Modbus TCP address on a
//! free loopback port (as behind a TCP-to-RS-485 gateway).

use gridwatch_gateway::profile::ProfileLibrary;
use gridwatch_simulators::meter::{self, Behaviour, Control, MeterModel, SharedMeter};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The served units; stopped by [`ServedMeters::stop`] (or on drop of the
/// runtime).
pub struct ServedMeters {
    /// The port the units answer on (127.0.0.1).
    pub port: u16,
    /// Behaviour and the count of writes the units received.
    pub control: Control,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ServedMeters {
    /// Serves `units` (unit id, built-in profile name), behaving normally.
    pub async fn start(units: &[(u8, &str)]) -> ServedMeters {
        let units: meter::Units = Arc::new(
            units
                .iter()
                .map(|&(id, profile)| {
                    let p = ProfileLibrary::built_in()
                        .get(profile)
                        .unwrap_or_else(|e| panic!("built-in profile {profile}: {e}"));
                    let mut m = MeterModel::new(p, u64::from(id));
                    m.step(3_600_000);
                    (id, SharedMeter::new(m))
                })
                .collect::<BTreeMap<_, _>>(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let port = listener.local_addr().expect("bound").port();
        let control = Control::new(Behaviour::Normal);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(meter::serve(
            listener,
            units,
            control.clone(),
            shutdown.clone(),
        ));
        ServedMeters {
            port,
            control,
            shutdown,
            task,
        }
    }

    /// Stops serving and waits (at most 5 s) for the server to end.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}
