//! The `reader-mqtt` and `reader-serial` commands of `gridwatch-sim`:
//! readers that report a rotating list of made-up tags or plates, with a
//! fault now and then when asked.

use super::{LineFault, MqttFault, MqttReaderSim, SerialReaderSim};
use gridwatch_gateway::readers::Direction;
use gridwatch_telemetry::{Clock, SystemClock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `gridwatch-sim reader-mqtt`.
#[derive(Debug, clap::Args)]
pub struct MqttArgs {
    /// Broker the reader publishes to (the gateway's local broker).
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub broker: String,
    /// Topic it publishes on.
    #[arg(long, default_value = "cam/gate-1/plates")]
    pub topic: String,
    /// Its device name, in each message.
    #[arg(long, default_value = "gate-cam-1")]
    pub device: String,
    /// Made-up plates it reads in turn (never real ones).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "粤B00001,粤B00002,京A00003"
    )]
    pub plates: Vec<String>,
    /// Time between reads.
    #[arg(long, default_value_t = 2000)]
    pub every_ms: u64,
    /// Every Nth message is malformed in turn (0: never).
    #[arg(long, default_value_t = 0)]
    pub fault_every: u64,
    /// Stop after this many messages (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
}

/// `gridwatch-sim reader-serial`.
#[derive(Debug, clap::Args)]
pub struct SerialArgs {
    /// Where to link the pty's slave end: the gateway's `port`.
    #[arg(long, default_value = "/tmp/gridwatch-rfid0")]
    pub link: std::path::PathBuf,
    /// Made-up tag ids it reads in turn.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "E2000001,E2000002,E2000003"
    )]
    pub tags: Vec<String>,
    /// Time between reads.
    #[arg(long, default_value_t = 2000)]
    pub every_ms: u64,
    /// Every Nth line is faulty in turn (0: never).
    #[arg(long, default_value_t = 0)]
    pub fault_every: u64,
    /// Every Nth read the reader disappears for 3 s (0: never).
    #[arg(long, default_value_t = 0)]
    pub vanish_every: u64,
    /// Stop after this many lines (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
}

fn is_nth(n: u64, every: u64) -> bool {
    every > 0 && n.checked_rem(every) == Some(0)
}

fn direction(n: u64) -> Option<Direction> {
    Some(if n & 1 == 0 {
        Direction::In
    } else {
        Direction::Out
    })
}

/// Runs the MQTT reader until `shutdown` or `--count`.
pub async fn run_mqtt(args: &MqttArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (host, port) = args
        .broker
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| anyhow::anyhow!("--broker {:?} is not host:port", args.broker))?;
    anyhow::ensure!(!args.plates.is_empty(), "--plates is empty");
    let sim = MqttReaderSim::connect(host, port, &args.device, &args.topic).await?;
    let faults = [
        MqttFault::MalformedJson,
        MqttFault::MissingIdentity,
        MqttFault::UnknownDirection,
        MqttFault::NotAnObject,
    ];
    let mut ticker = tokio::time::interval(Duration::from_millis(args.every_ms.max(1)));
    for n in 1.. {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        let now = SystemClock.now();
        if is_nth(n, args.fault_every) {
            let fault = faults[(n / args.fault_every) as usize % faults.len()];
            tracing::info!("publishing a faulty message: {fault:?}");
            sim.inject(fault, now).await?;
        } else {
            let plate = &args.plates[(n as usize - 1) % args.plates.len()];
            sim.read(plate, direction(n), now).await?;
        }
        if n == args.count {
            break;
        }
    }
    // Let the last publishes leave before disconnecting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    sim.disappear().await;
    Ok(())
}

/// Runs the serial reader until `shutdown` or `--count`.
pub async fn run_serial(args: &SerialArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::ensure!(!args.tags.is_empty(), "--tags is empty");
    let mut sim = SerialReaderSim::open(&args.link)?;
    tracing::info!("serial RFID reader on {}", args.link.display());
    let faults = [
        LineFault::BadChecksum,
        LineFault::Truncated,
        LineFault::Garbage,
        LineFault::Overlong,
    ];
    let mut ticker = tokio::time::interval(Duration::from_millis(args.every_ms.max(1)));
    for n in 1.. {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        if is_nth(n, args.vanish_every) {
            tracing::info!("the reader disappears for 3 s");
            sim.disappear();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3)) => {}
                _ = shutdown.cancelled() => break,
            }
            sim.reappear()?;
        }
        if is_nth(n, args.fault_every) {
            let fault = faults[(n / args.fault_every) as usize % faults.len()];
            tracing::info!("sending a faulty line: {fault:?}");
            sim.inject(fault)?;
        } else {
            let tag = &args.tags[(n as usize - 1) % args.tags.len()];
            sim.read(tag, direction(n))?;
        }
        if n == args.count {
            break;
        }
    }
    Ok(())
}
