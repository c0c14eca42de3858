//! A simulated charging yard: one charging pile on Modbus TCP, the gateway
//! polling it and analytics watching the stream, all wired through an MQTT
//! broker the caller names.
//!
//! The demo and the end-to-end tests both start one of these, so the demo
//! shows exactly the chain the tests prove: simulator → gateway → broker →
//! analytics → alert.

use crate::pile::{serve, spawn_clock, ChargerKind, Fault, PileConfig, PileModel, SharedPile};
use crate::sim_clock::ScaledClock;
use anyhow::Context as _;
use gridwatch_telemetry::Clock;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What the yard looks like and how fast it runs.
#[derive(Debug, Clone)]
pub struct YardOptions {
    /// Broker host and port shared by the gateway and analytics.
    pub broker: SocketAddr,
    /// Simulated time per wall time (30 = half a minute per second).
    pub speed: f64,
    /// Sockets on the pile.
    pub sockets: u16,
    /// Sockets with a charger plugged in at the start.
    pub plugged: Vec<(u16, ChargerKind)>,
    /// How often the gateway polls the pile (wall time).
    pub poll_interval_ms: u64,
    /// Site id; also the topic level.
    pub site: String,
    /// Gateway id.
    pub gateway: String,
    /// Device id of the pile.
    pub device: String,
    /// Grid cell the site belongs to.
    pub cell: String,
    /// Seed of the pile's noise.
    pub seed: u64,
    /// Serve analytics' API and dashboard here (port 0: any free port; the
    /// bound address is [`Yard::api_addr`]). `None`: no API.
    pub api_listen: Option<SocketAddr>,
    /// The directory file analytics reads users, cells and sites from.
    pub directory: Option<PathBuf>,
    /// The register of flats and tags analytics reads (the demo district's
    /// `register.json`), so group rental knows each flat's registered
    /// occupants instead of assuming them.
    pub register: Option<PathBuf>,
    /// Further sites whose readings reach the same broker (the demo's
    /// simulated district), routed to the yard's grid cell.
    pub more_sites: Vec<String>,
    /// `[detect.meter_health] no_data_min` of analytics, when not its
    /// default: the demo raises it while its district recording plays (a
    /// recording played beside a live yard would look silent).
    pub meter_no_data_min: Option<u32>,
}

impl YardOptions {
    /// A six-socket yard with three bikes charging, on the given broker.
    pub fn new(broker: SocketAddr) -> Self {
        YardOptions {
            broker,
            speed: 30.0,
            sockets: 6,
            plugged: vec![
                (1, ChargerKind::Lithium),
                (2, ChargerKind::Lithium),
                (4, ChargerKind::LeadAcid),
            ],
            poll_interval_ms: 1000,
            site: "demo-yard".into(),
            gateway: "gw-demo-yard".into(),
            device: "pile-1".into(),
            cell: "cell-demo".into(),
            seed: 7,
            api_listen: None,
            directory: None,
            register: None,
            more_sites: Vec::new(),
            meter_no_data_min: None,
        }
    }

    /// The gateway config, as an installer would write it.
    pub fn gateway_toml(&self, pile: SocketAddr) -> String {
        format!(
            r#"[gateway]
id = "{gateway}"
site = "{site}"
building = "yard"

[mqtt]
host = "{bhost}"
port = {bport}

[[devices]]
id = "{device}"
profile = "gridwatch-ebp12"
protocol = "modbus_tcp"
host = "{phost}"
port = {pport}
unit_id = 1
poll_interval_ms = {poll}
timeout_ms = 1000
"#,
            gateway = self.gateway,
            site = self.site,
            bhost = self.broker.ip(),
            bport = self.broker.port(),
            device = self.device,
            phost = pile.ip(),
            pport = pile.port(),
            poll = self.poll_interval_ms,
        )
    }

    /// The analytics config: the site mapped to its grid cell, default
    /// thresholds, and the API and directory when asked for.
    pub fn analytics_toml(&self) -> String {
        let mut text = format!(
            r#"[mqtt]
host = "{bhost}"
port = {bport}
client_id = "analytics-{gateway}"

[cells]
default = "unassigned"

[[cells.sites]]
site = "{site}"
cell = "{cell}"
"#,
            bhost = self.broker.ip(),
            bport = self.broker.port(),
            gateway = self.gateway,
            site = self.site,
            cell = self.cell,
        );
        for site in &self.more_sites {
            text.push_str(&format!(
                "\n[[cells.sites]]\nsite = \"{site}\"\ncell = \"{cell}\"\n",
                cell = self.cell
            ));
        }
        if let Some(min) = self.meter_no_data_min {
            text.push_str(&format!("\n[detect.meter_health]\nno_data_min = {min}\n"));
        }
        if let Some(listen) = self.api_listen {
            text.push_str(&format!("\n[api]\nlisten = \"{listen}\"\n"));
        }
        for (section, file) in [("directory", &self.directory), ("register", &self.register)] {
            if let Some(file) = file {
                // A TOML basic string: escape what could end or bend it.
                let path = file
                    .display()
                    .to_string()
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"");
                text.push_str(&format!("\n[{section}]\npath = \"{path}\"\n"));
            }
        }
        text
    }
}

/// A running yard. Dropping it does not stop it: call [`Yard::stop`].
pub struct Yard {
    /// The simulated pile, for plugging in and injecting faults.
    pub pile: SharedPile,
    /// Where the pile's Modbus server listens.
    pub pile_addr: SocketAddr,
    /// The clock the gateway stamps readings with.
    pub clock: ScaledClock,
    /// Where analytics' API and dashboard listen, when asked for.
    pub api_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: Tasks,
}

impl Yard {
    /// Starts the pile, its clock, the gateway and analytics.
    pub async fn start(opts: &YardOptions) -> anyhow::Result<Yard> {
        let shutdown = CancellationToken::new();
        let mut model = PileModel::new(PileConfig {
            sockets: opts.sockets,
            seed: opts.seed,
            ..PileConfig::default()
        })?;
        for (socket, kind) in &opts.plugged {
            model
                .plug_in(*socket, *kind)
                .with_context(|| format!("plugging a charger into socket {socket}"))?;
        }
        // Start with the sessions some minutes old, so the first readings show real load.
        model.step(10 * 60 * 1000);
        let pile = SharedPile::new(model);

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the pile simulator's Modbus TCP port on 127.0.0.1")?;
        let pile_addr = listener.local_addr()?;
        let mut tasks: Tasks = Vec::new();
        {
            let (pile, shutdown) = (pile.clone(), shutdown.clone());
            tasks.push((
                "pile simulator",
                tokio::spawn(async move {
                    serve(listener, pile, 1, shutdown).await?;
                    Ok(())
                }),
            ));
        }
        let clock_task = spawn_clock(pile.clone(), opts.speed, 100, shutdown.clone())?;
        tasks.push((
            "pile clock",
            tokio::spawn(async move {
                clock_task.await?;
                Ok(())
            }),
        ));

        let clock = ScaledClock::starting_now(opts.speed);
        let gateway_config = gridwatch_gateway::GatewayConfig::from_toml_str(
            &opts.gateway_toml(pile_addr),
            "yard gateway config",
        )?;
        let analytics_config = gridwatch_analytics::AnalyticsConfig::from_toml_str(
            &opts.analytics_toml(),
            "yard analytics config",
        )?;
        let gw_clock: Arc<dyn Clock> = Arc::new(clock);
        let (chain, api_rx) =
            spawn_gateway_and_analytics(gateway_config, analytics_config, gw_clock, &shutdown);
        tasks.extend(chain);
        let api_addr = match opts.api_listen {
            None => None,
            Some(listen) => match tokio::time::timeout(Duration::from_secs(10), api_rx).await {
                Ok(Ok(addr)) => Some(addr),
                _ => {
                    // analytics gave up before listening: report why.
                    let yard = Yard {
                        pile,
                        pile_addr,
                        clock,
                        api_addr: None,
                        shutdown,
                        tasks,
                    };
                    let why = yard.stop().await.err();
                    anyhow::bail!(
                        "analytics did not start its API on {listen}: {}",
                        why.map(|e| format!("{e:#}"))
                            .unwrap_or_else(|| "no reason given".into())
                    );
                }
            },
        };
        Ok(Yard {
            pile,
            pile_addr,
            clock,
            api_addr,
            shutdown,
            tasks,
        })
    }

    /// Injects a fault into a socket of the pile.
    pub fn inject(&self, socket: u16, fault: Fault) -> anyhow::Result<()> {
        self.pile
            .with(|m| m.inject(socket, fault))
            .with_context(|| format!("injecting {fault:?} into socket {socket}"))
    }

    /// Stops everything and waits (at most 10 s) for each part to finish:
    /// the gateway publishes its offline status on the way out.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        stop_tasks(self.tasks).await
    }
}

/// Named tasks of a running chain, each ending with its outcome.
pub type Tasks = Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>;

/// Starts a gateway and analytics in this process on one clock: the gateway
/// stamps readings with it, and analytics judges them (clock guard) and
/// stamps staff actions with it, so a case's trail reads on one clock.
/// Shared by the yard and the scenario runner ([`crate::scenario`]), which
/// brings its own simulators. The receiver gets the API's address once it
/// listens (when the analytics config has an `[api]`).
pub fn spawn_gateway_and_analytics(
    gateway: gridwatch_gateway::GatewayConfig,
    analytics: gridwatch_analytics::AnalyticsConfig,
    clock: Arc<dyn Clock>,
    shutdown: &CancellationToken,
) -> (Tasks, tokio::sync::oneshot::Receiver<SocketAddr>) {
    let (api_tx, api_rx) = tokio::sync::oneshot::channel();
    let run_options = gridwatch_analytics::RunOptions {
        api_ready: Some(api_tx),
        clock: Some(clock.clone()),
        ..Default::default()
    };
    let tasks: Tasks = vec![
        (
            "analytics",
            tokio::spawn(gridwatch_analytics::run_with(
                analytics,
                shutdown.clone(),
                run_options,
            )),
        ),
        (
            "gateway",
            tokio::spawn(gridwatch_gateway::run(gateway, clock, shutdown.clone())),
        ),
    ];
    (tasks, api_rx)
}

/// Waits (at most 10 s each) for tasks whose shutdown was cancelled; the
/// first failure, panic or hang is the error.
pub async fn stop_tasks(tasks: Tasks) -> anyhow::Result<()> {
    for (name, task) in tasks {
        match tokio::time::timeout(Duration::from_secs(10), task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => anyhow::bail!("{name} failed: {e:#}"),
            Ok(Err(e)) => anyhow::bail!("{name} panicked: {e}"),
            Err(_) => anyhow::bail!("{name} did not stop within 10 s"),
        }
    }
    Ok(())
}
