//! Remote config: a signed, versioned config (and its profiles) pushed on
//! the gateway's command topic as `…/cmd/_config`, checked and tried here,
//! kept if it works and rolled back if it does not.
//!
//! The private key that signs stays with the operator (`config-sign`); the
//! gateway holds only the public key (`[remote] public_key_file`), so a
//! stolen gateway cannot sign a config for another one. The steps:
//!
//! 1. [`bundle::open`] checks the signature before reading anything else.
//! 2. [`rollout::admissible`]: only a version above the running one.
//! 3. The config is written to `trial/` ([`store`]) and loaded exactly as
//!    `check` loads a file (profiles, host files, serial ports), then
//!    [`rollout::compatible`]: same gateway, still `[remote]`.
//! 4. The supervisor (`crate::supervisor`) restarts the daemon in-process
//!    with it, waits the grace period and asks [`rollout::judge`]: every
//!    device answering (except those already dead before) and the uplinks
//!    up. If so it becomes `current`; if not the previous config runs again.
//!
//! Each outcome is acked on `…/cmd-ack/_config` and told in the status
//! (`config`: version and state). The parts here are pure or thin; the
//! uplink meets the supervisor through a [`RemoteLink`].

pub mod bundle;
pub mod rollout;
pub mod store;

use crate::command::Ack;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

pub use crate::command::CONFIG_DEVICE;
/// Signed configs waiting for the supervisor, at most.
const REQUEST_CAPACITY: usize = 4;

/// How the MQTT uplink and the supervisor talk: signed configs go one way,
/// acks of their outcome the other. Cloned into each run of the daemon, it
/// outlives them, so an ack decided while the daemon restarts is published
/// by the next run.
#[derive(Debug, Clone)]
pub struct RemoteLink {
    requests: mpsc::Sender<Vec<u8>>,
    outcomes: Arc<Outcomes>,
}

#[derive(Debug, Default)]
struct Outcomes {
    acks: Mutex<VecDeque<Ack>>,
    ready: Notify,
}

/// The supervisor's end of a [`RemoteLink`].
#[derive(Debug)]
pub struct RemoteDesk {
    /// Signed configs as they arrived.
    pub requests: mpsc::Receiver<Vec<u8>>,
    outcomes: Arc<Outcomes>,
}

/// A link and its supervisor's end.
pub fn link() -> (RemoteLink, RemoteDesk) {
    let (tx, rx) = mpsc::channel(REQUEST_CAPACITY);
    let outcomes = Arc::new(Outcomes::default());
    (
        RemoteLink {
            requests: tx,
            outcomes: outcomes.clone(),
        },
        RemoteDesk {
            requests: rx,
            outcomes,
        },
    )
}

impl RemoteLink {
    /// Hands a signed config to the supervisor; `false` when
    /// [`REQUEST_CAPACITY`] are already waiting (it is dropped, and logged).
    pub fn submit(&self, envelope: Vec<u8>) -> bool {
        self.requests.try_send(envelope).is_ok()
    }

    /// Waits until an ack is ready to publish.
    pub async fn ack_ready(&self) {
        self.outcomes.ready.notified().await;
    }

    /// The acks waiting to be published, oldest first.
    pub fn take_acks(&self) -> Vec<Ack> {
        let mut q = self.outcomes.acks.lock().unwrap_or_else(|p| p.into_inner());
        q.drain(..).collect()
    }
}

impl RemoteDesk {
    /// Queues `ack` for the MQTT uplink of whichever run is connected.
    pub fn answer(&self, ack: Ack) {
        self.outcomes
            .acks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(ack);
        self.outcomes.ready.notify_one();
    }
}
