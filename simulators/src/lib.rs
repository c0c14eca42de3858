//! Protocol-true device simulators for Gridwatch, and the demo.
//!
//! Each simulator speaks the real wire protocol of the device it stands in
//! for, over a real socket, and takes its time from the caller rather than
//! the wall clock, so the gateway can be tested against it unchanged and a
//! district can run many times faster than real time. [`pile`] is a
//! multi-socket e-bike charging pile on Modbus TCP; [`rtu`] puts it (or any
//! Modbus service) on a pseudo-terminal as Modbus RTU units; [`readers`] are
//! tag and plate readers on MQTT and on a serial pty; [`dlt645`] electricity
//! meters and [`cjt188`] water, gas and heat meters on pseudo-terminals.
//!
//! ```
//! use gridwatch_simulators::pile::{ChargerKind, Fault, PileConfig, PileModel};
//!
//! let mut pile = PileModel::new(PileConfig::default())?;
//! pile.plug_in(1, ChargerKind::Lithium)?;
//! pile.inject(1, Fault::Overcurrent)?;
//! pile.step(60_000);
//! assert!(pile.socket(1)?.current_a > 5.5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod broker;
pub mod cjt188;
pub mod control;
pub mod demo;
pub mod district;
pub mod dlt645;
pub mod meter;
pub mod pile;
pub mod readers;
pub mod rtu;
pub mod scenario;
pub mod sim_clock;
pub mod yard;

/// Resolves on Ctrl-C or SIGTERM: scripts and the scenario runner stop
/// simulators with `kill`, people with Ctrl-C.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
