//! `gridwatch-analytics worker`: one analytics worker of a city-scale
//! deployment ([`crate::cluster`], docs/scale.md).

use super::{config_error, init_logging, stop_on_signal, EXIT_CONFIG};
use crate::cluster::{partition::Shared, sink, worker};
use crate::config::AnalyticsConfig;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The `worker` command line.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The NATS server (JetStream on, the partition mapping in its config).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// PostgreSQL connection string (`host=127.0.0.1 user=gridwatch
    /// dbname=gridwatch` or `postgresql://…`): leases, checkpoints, alerts.
    #[arg(long)]
    pub postgres: String,
    /// The JetStream stream (created, keeping `part.>`, if missing).
    #[arg(long, default_value = crate::cluster::DEFAULT_STREAM)]
    pub stream: String,
    /// Partitions: the N of the server's `{{partition(N,1)}}` mapping.
    #[arg(long, default_value_t = crate::cluster::DEFAULT_PARTITIONS)]
    pub partitions: u32,
    /// This worker's name in the checkpoint and alert tables; default
    /// `{host}-{pid}`.
    #[arg(long)]
    pub name: Option<String>,
    /// Messages of a partition between checkpoints (also saved when the
    /// partition runs dry and when it is given back).
    #[arg(long, default_value_t = 10_000)]
    pub checkpoint_every: u64,
    /// The analytics config (detectors, routing, ingest); defaults if absent.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The register of flats and tags (else the config's `[register] path`).
    #[arg(long)]
    pub register: Option<PathBuf>,
}

/// Runs a worker until SIGINT or SIGTERM.
pub(super) fn run(args: WorkerArgs) -> ExitCode {
    init_logging();
    let (config, register) = match load(args.config.as_deref(), args.register.as_deref()) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if args.checkpoint_every == 0 {
        eprintln!("error: --checkpoint-every is 0; give the messages between checkpoints");
        return ExitCode::from(EXIT_CONFIG);
    }
    let name = args.name.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let options = worker::WorkerOptions {
        nats: args.nats,
        postgres: args.postgres,
        stream: args.stream,
        partitions: args.partitions,
        name: name.clone(),
        checkpoint_every: args.checkpoint_every,
        rebalance: Duration::from_millis(500),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let store = match &config.store.url {
        Some(_) => match crate::store::Store::open(&config.store) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let shutdown = CancellationToken::new();
    let checkpoint_every = options.checkpoint_every;
    let stream = options.stream.clone();
    let result = runtime.block_on(async {
        tokio::spawn(stop_on_signal(shutdown.clone()));
        let make = move |js, pg: Arc<tokio_postgres::Client>| {
            // With `[store] url` the workers record into the alert store on
            // PostgreSQL that the API instances serve (cases, folded by
            // alert id); without it into the bare alert table beside the
            // leases and checkpoints.
            let sink: Arc<dyn sink::AlertSink> = match &store {
                Some(store) => Arc::new(sink::StoreSink::new(store.clone(), config.alerts.clone())),
                None => Arc::new(sink::PgAlerts::new(pg.clone(), &name)),
            };
            Ok(Shared {
                name: name.clone(),
                stream,
                js,
                pg,
                sink,
                config,
                register,
                checkpoint_every,
                idle: Duration::from_millis(250),
            })
        };
        worker::run(options, make, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The config (defaults without one) and the register (`--register`, else
/// the config's `[register] path`, else none); errors are printed and
/// turned into the exit code.
fn load(
    config: Option<&std::path::Path>,
    register: Option<&std::path::Path>,
) -> Result<(AnalyticsConfig, crate::register::Register), ExitCode> {
    let c = match config {
        Some(p) => AnalyticsConfig::load(p).map_err(|e| config_error(&e))?,
        None => AnalyticsConfig::default(),
    };
    let reg = match register
        .map(PathBuf::from)
        .or_else(|| c.register.path.clone())
    {
        Some(p) => crate::register::Register::load(&p).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_CONFIG)
        })?,
        None => {
            eprintln!("note: no register; group rental assumes the default occupants and sightings name the reader");
            crate::register::Register::default()
        }
    };
    Ok((c, reg))
}
