//! The remote-config supervisor: runs the daemon and, when a signed config
//! arrives, restarts it in-process with that config, watches it for the
//! grace period and keeps it or goes back (see [`crate::remote`] for the
//! rules).
//!
//! Without `[remote]` it is a plain [`crate::run`]. With it, the gateway
//! starts from the stored `current` config when there is one (a config
//! pushed earlier that survived its trial), else from the local file. One
//! config is on trial at a time; a config pushed meanwhile is refused with
//! a reason, not queued.

use crate::command::Ack;
use crate::config::GatewayConfig;
use crate::daemon::{health_for, run_with, Supervision};
use crate::remote::bundle::{self, BundleError};
use crate::remote::rollout::{self, Expectation};
use crate::remote::store::Store;
use crate::remote::{link, RemoteDesk, RemoteLink, CONFIG_DEVICE};
use crate::status::{Health, SharedConfigStatus};
use gridwatch_telemetry::{Clock, ConfigState, ConfigStatus, SCHEMA_VERSION};
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Runs the gateway from `local` (the config file) until `shutdown`,
/// applying signed configs pushed to it when `[remote]` is on.
pub async fn run(
    local: GatewayConfig,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(remote) = local.remote.clone() else {
        return crate::run(local, clock, shutdown).await;
    };
    let store = Store::open(&remote.dir).map_err(anyhow::Error::msg)?;
    let status = SharedConfigStatus::default();
    let (active, version, state, detail) = starting_config(local, &store);
    set_status(&status, version, state, detail);
    let (link, desk) = link();
    let mut s = Supervisor {
        clock,
        link,
        desk,
        store,
        status,
        active,
        version,
    };
    let mut daemon = s.start(s.active.clone());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return daemon.stop().await,
            why = daemon.ended() => {
                anyhow::bail!("the gateway stopped: {why}");
            }
            Some(envelope) = s.desk.requests.recv() => {
                daemon = s.consider(&envelope, daemon, &shutdown).await?;
            }
        }
    }
}

/// The config to start from: the stored current one if it loads and this
/// host has what it needs, else the local file. Returns it with its
/// version, state and why.
fn starting_config(
    local: GatewayConfig,
    store: &Store,
) -> (GatewayConfig, u64, ConfigState, Option<String>) {
    let lost = store
        .discard_trial()
        .map(|v| format!("the gateway restarted while version {v} was on trial; it was not kept"));
    let Some(current) = store.current() else {
        let state = if lost.is_some() {
            ConfigState::RolledBack
        } else {
            ConfigState::Local
        };
        return (local, 0, state, lost);
    };
    // As `run` treats the local file: missing files stop it, a serial
    // adapter that appears after boot does not.
    let loaded = GatewayConfig::load(&current.config_file)
        .map_err(|e| e.to_string())
        .and_then(|c| match c.missing_files().first() {
            Some(e) => Err(e.to_string()),
            None => Ok(c),
        });
    match loaded {
        Ok(config) => {
            info!(
                "running remote config version {} from {}",
                current.version,
                current.config_file.display()
            );
            let state = if lost.is_some() {
                ConfigState::RolledBack
            } else {
                ConfigState::Applied
            };
            (config, current.version, state, lost)
        }
        Err(why) => {
            error!(
                "the stored remote config version {} cannot run here ({why}); running the \
                 local config {} instead",
                current.version, local.origin
            );
            (local, 0, ConfigState::Local, Some(why))
        }
    }
}

/// Loads `path` as `check` does: the config, its profiles, and the files
/// and serial ports it names on this host.
fn load_checked(path: &std::path::Path) -> Result<GatewayConfig, String> {
    let config = GatewayConfig::load(path).map_err(|e| e.to_string())?;
    let problems = config.host_problems();
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "))
    }
}

fn set_status(
    status: &SharedConfigStatus,
    version: u64,
    state: ConfigState,
    detail: Option<String>,
) {
    *status.lock().unwrap_or_else(|p| p.into_inner()) = Some(ConfigStatus {
        version,
        state,
        detail,
    });
}

struct Supervisor {
    clock: Arc<dyn Clock>,
    link: RemoteLink,
    desk: RemoteDesk,
    store: Store,
    status: SharedConfigStatus,
    /// The config that runs when no trial does.
    active: GatewayConfig,
    /// Its version (0: the local file).
    version: u64,
}

/// One run of the daemon.
struct Daemon {
    stop: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    health: Arc<Health>,
}

impl Daemon {
    /// Waits until the run ends by itself and says why.
    async fn ended(&mut self) -> String {
        let Some(task) = &mut self.task else {
            return std::future::pending().await;
        };
        let why = match task.await {
            Ok(Ok(())) => "it ended".to_owned(),
            Ok(Err(e)) => format!("{e:#}"),
            Err(e) => format!("it failed: {e}"),
        };
        self.task = None;
        why
    }

    /// Stops the run and waits for it to have delivered and closed.
    async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        match self.task.take() {
            Some(t) => t
                .await
                .map_err(|e| anyhow::anyhow!("the gateway failed: {e}"))?,
            None => Ok(()),
        }
    }
}

impl Supervisor {
    fn start(&self, config: GatewayConfig) -> Daemon {
        let health = Arc::new(health_for(&config).with_config_status(self.status.clone()));
        let stop = CancellationToken::new();
        let task = tokio::spawn(run_with(
            config,
            self.clock.clone(),
            stop.clone(),
            Supervision {
                health: Some(health.clone()),
                remote: Some(self.link.clone()),
            },
        ));
        Daemon {
            stop,
            task: Some(task),
            health,
        }
    }

    fn ack(&self, version: Option<u64>, outcome: Result<String, String>) {
        let (ok, result, error) = match outcome {
            Ok(r) => (true, Some(r), None),
            Err(e) => (false, None, Some(e)),
        };
        self.desk.answer(Ack {
            schema: SCHEMA_VERSION,
            ts: self.clock.now(),
            device: CONFIG_DEVICE.to_owned(),
            id: version.map(|v| v.to_string()),
            ok,
            result,
            error,
        });
    }

    fn refuse(&self, version: Option<u64>, why: String) {
        warn!("remote config refused: {why}");
        set_status(
            &self.status,
            self.version,
            ConfigState::Refused,
            Some(why.clone()),
        );
        self.ack(version, Err(why));
    }

    /// Opens, checks and stages a signed config: the config to try and its
    /// version, or why not (with the version, when it got that far).
    fn prepare(&self, envelope: &[u8]) -> Result<(GatewayConfig, u64), (Option<u64>, String)> {
        let remote = self
            .active
            .remote
            .as_ref()
            .ok_or((None, "[remote] is off in the running config".to_owned()))?;
        let key = std::fs::read_to_string(&remote.public_key_file)
            .map_err(|e| {
                format!(
                    "cannot read the public key {}: {e}",
                    remote.public_key_file.display()
                )
            })
            .and_then(|t| bundle::public_key(&t).map_err(|e| e.to_string()))
            .map_err(|e| (None, e))?;
        let b = bundle::open(envelope, &key).map_err(|e: BundleError| (None, e.to_string()))?;
        let v = Some(b.version);
        rollout::admissible(b.version, self.version).map_err(|e| (v, e))?;
        let file = self.store.stage(&b, envelope).map_err(|e| (v, e))?;
        let refuse = |why: String| {
            self.store.discard_trial();
            (
                v,
                format!("version {} does not pass check: {why}", b.version),
            )
        };
        let config = load_checked(&file).map_err(refuse)?;
        rollout::compatible(&self.active, &config).map_err(refuse)?;
        Ok((config, b.version))
    }

    /// Handles one signed config; returns the daemon that runs afterwards.
    async fn consider(
        &mut self,
        envelope: &[u8],
        daemon: Daemon,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Daemon> {
        let (config, version) = match self.prepare(envelope) {
            Ok(c) => c,
            Err((v, why)) => {
                self.refuse(v, why);
                return Ok(daemon);
            }
        };
        let grace = config
            .remote
            .as_ref()
            .map(|r| r.grace_period())
            .unwrap_or_default();
        info!(
            "trying remote config version {version} (running {}); it has {} to show its \
             devices answering and its uplinks up",
            self.version,
            crate::net::words(grace)
        );
        let mut expect = Expectation::for_trial(&config, &daemon.health.device_figures());
        expect.uplinks = vec![crate::uplink::mqtt::NAME];
        if config.influx.is_some() {
            expect.uplinks_if_reported = vec![crate::uplink::influx::NAME];
        }
        set_status(&self.status, self.version, ConfigState::Trial, None);
        if let Err(e) = daemon.stop().await {
            error!("the gateway did not stop cleanly for the new config: {e:#}");
        }
        set_status(&self.status, version, ConfigState::Trial, None);
        let mut trial = self.start(config.clone());
        let deadline = tokio::time::Instant::now() + grace;
        let verdict = loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    break rollout::judge(
                        &expect,
                        &trial.health.device_figures(),
                        &trial.health.uplink_figures(),
                    );
                }
                why = trial.ended() => break Err(vec![format!("the gateway stopped: {why}")]),
                _ = shutdown.cancelled() => {
                    // Not kept: the next start discards the trial.
                    let health = trial.health.clone();
                    trial.stop().await?;
                    return Ok(Daemon { stop: CancellationToken::new(), task: None, health });
                }
                Some(other) = self.desk.requests.recv() => {
                    let v = peek_version(&other);
                    self.ack(v, Err(format!(
                        "version {version} is on trial; push again once its outcome is acked"
                    )));
                }
            }
        };
        match verdict {
            Ok(()) => match self.store.promote() {
                Ok(()) => {
                    let before = self.version;
                    info!("remote config version {version} survived its trial and is kept");
                    self.active = config;
                    self.version = version;
                    set_status(&self.status, version, ConfigState::Applied, None);
                    self.ack(
                        Some(version),
                        Ok(format!(
                            "version {version} applied; version {before} is kept for rollback"
                        )),
                    );
                    Ok(trial)
                }
                Err(e) => {
                    self.roll_back(trial, version, vec![format!("it could not be kept: {e}")])
                        .await
                }
            },
            Err(reasons) => self.roll_back(trial, version, reasons).await,
        }
    }

    async fn roll_back(
        &mut self,
        trial: Daemon,
        version: u64,
        reasons: Vec<String>,
    ) -> anyhow::Result<Daemon> {
        let why = format!(
            "version {version} rolled back to version {}: {}",
            self.version,
            reasons.join("; ")
        );
        warn!("{why}");
        if let Err(e) = trial.stop().await {
            error!("the gateway on trial did not stop cleanly: {e:#}");
        }
        self.store.discard_trial();
        set_status(
            &self.status,
            self.version,
            ConfigState::RolledBack,
            Some(why.clone()),
        );
        self.ack(Some(version), Err(why));
        Ok(self.start(self.active.clone()))
    }
}

/// The version a signed config claims, unverified: only to label the ack
/// of one refused because another is on trial.
fn peek_version(envelope: &[u8]) -> Option<u64> {
    use base64::Engine;
    let e: bundle::Envelope = serde_json::from_slice(envelope).ok()?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(e.payload)
        .ok()?;
    serde_json::from_slice::<bundle::Bundle>(&payload)
        .ok()
        .map(|b| b.version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::bundle::Bundle;
    use gridwatch_telemetry::SystemClock;
    use std::path::Path;

    fn config_text(dir: &Path, gateway: &str, profile: &str) -> String {
        format!(
            "[gateway]\nid = \"{gateway}\"\nsite = \"s\"\nprofiles_dir = \"profiles\"\n\
             [mqtt]\nhost = \"127.0.0.1\"\n\
             [remote]\npublic_key_file = \"{}\"\ndir = \"{}\"\n\
             [[devices]]\nid = \"m\"\nprofile = \"{profile}\"\nprotocol = \"modbus_tcp\"\n\
             host = \"127.0.0.1\"\n",
            dir.join("key.pub").display(),
            dir.join("remote").display()
        )
    }

    /// A supervisor running version 3 of a config with `[remote]` in `dir`.
    fn supervisor(dir: &Path) -> (Supervisor, ed25519_dalek::SigningKey) {
        let (private, public) = bundle::key_pair([9; 32]);
        std::fs::write(dir.join("key.pub"), public).unwrap();
        std::fs::create_dir_all(dir.join("profiles")).unwrap();
        let local = dir.join("gateway.toml");
        std::fs::write(&local, config_text(dir, "gw", "eastron-sdm120")).unwrap();
        let (link, desk) = link();
        let s = Supervisor {
            clock: Arc::new(SystemClock),
            link,
            desk,
            store: Store::open(&dir.join("remote")).unwrap(),
            status: SharedConfigStatus::default(),
            active: GatewayConfig::load(&local).unwrap(),
            version: 3,
        };
        (s, bundle::private_key(&private).unwrap())
    }

    #[test]
    fn a_config_with_its_own_profile_is_staged_and_loaded_as_check_loads_it() {
        let dir = tempfile::tempdir().unwrap();
        let (s, key) = supervisor(dir.path());
        let profile = crate::profile::BUILT_IN
            .iter()
            .find(|(n, _)| *n == "eastron-sdm120")
            .unwrap()
            .1;
        let b = Bundle {
            version: 4,
            config: config_text(dir.path(), "gw", "site-meter"),
            profiles: [(
                "site-meter.toml".to_owned(),
                profile.replace("model = \"eastron-sdm120\"", "model = \"site-meter\""),
            )]
            .into(),
        };
        let (config, version) = s.prepare(&bundle::sign(&b, &key)).unwrap();
        assert_eq!(version, 4);
        assert_eq!(config.devices[0].profile.model, "site-meter");
        assert!(dir
            .path()
            .join("remote/trial/profiles/site-meter.toml")
            .is_file());
    }

    #[test]
    fn another_gateway_an_old_version_or_a_missing_profile_is_refused_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let (s, key) = supervisor(dir.path());
        let push = |version, gateway: &str, profile: &str| {
            let b = Bundle {
                version,
                config: config_text(dir.path(), gateway, profile),
                profiles: Default::default(),
            };
            s.prepare(&bundle::sign(&b, &key)).map(|_| ()).unwrap_err()
        };
        let (v, why) = push(3, "gw", "eastron-sdm120");
        assert_eq!(v, Some(3));
        assert!(why.contains("not newer than version 3"), "{why}");
        let (_, why) = push(4, "gw-other", "eastron-sdm120");
        assert!(why.contains("keeps the gateway's identity"), "{why}");
        let (_, why) = push(5, "gw", "no-such-meter");
        assert!(
            why.contains("version 5 does not pass check") && why.contains("no-such-meter"),
            "{why}"
        );
        assert_eq!(s.store.discard_trial(), None, "a refused trial is removed");
    }
}
