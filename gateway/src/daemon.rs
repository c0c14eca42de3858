//! Wiring: one poller task per device, a queue to the outbox writer, the
//! durable outbox, and the MQTT uplink reading it from its cursor. Read top
//! to bottom, this is the gateway.

use crate::bus::cjt188::Cjt188Line;
use crate::bus::dlt645::Dlt645Line;
use crate::bus::modbus_rtu::{self, RtuBus};
use crate::bus::modbus_tcp::{ModbusTcpBus, TcpLinks};
use crate::config::{DeviceConfig, GatewayConfig, Transport};
use crate::devices::cjt188::Cjt188Device;
use crate::devices::dlt645::Dlt645Device;
use crate::devices::metronome::Metronomes;
use crate::devices::modbus::{ModbusDevice, ModbusRtuDevice, ModbusTcpDevice};
use crate::devices::poller::{Poller, Schedule};
use crate::devices::{Device, DeviceStamp};
use crate::edge::{self, Edge};
use crate::net::words;
use crate::outbox::writer::{self, OutboxHandle};
use crate::outbox::{self, RecordSender};
use crate::outbox::{Outbox, OutboxStats};
use crate::pseudonym::SiteKey;
use crate::readers::mqtt::MqttReader;
use crate::readers::{self, serial, ReaderSource, SightingSink};
use crate::status::Health;
use crate::uplink::influx::{self, InfluxUplink};
use crate::uplink::mqtt::{self, MqttUplink};
use anyhow::Context;
use gridwatch_telemetry::Clock;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, info_span, warn, Instrument};

/// Runs the gateway described by `config` until `shutdown` is cancelled,
/// then stops the pollers, syncs the outbox, gives the uplink a moment to
/// deliver it, publishes the retained `offline` status, disconnects and
/// returns. What was not delivered stays in the outbox for the next start.
///
/// Readings are stamped with `clock` (inject a fast or manual clock in
/// simulations and tests); poll timing uses tokio's timer. Unreachable
/// devices and brokers are retried forever and never make this fail; an
/// outbox folder that cannot be opened, or unreadable TLS files, do.
pub async fn run(
    config: GatewayConfig,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with(config, clock, shutdown, Supervision::default()).await
}

/// What the remote-config supervisor (`crate::supervisor`) gives each run
/// of the daemon: the health it judges a config on trial by, and the link
/// signed configs and their acks travel on.
#[derive(Debug, Clone, Default)]
pub struct Supervision {
    /// The counters this run fills (a fresh one per run).
    pub health: Option<Arc<Health>>,
    /// Signed configs in, acks out.
    pub remote: Option<crate::remote::RemoteLink>,
}

/// The health counters for a run of `config`.
pub fn health_for(config: &GatewayConfig) -> Health {
    Health::new(
        config.gateway.id.clone(),
        config.gateway.site.clone(),
        u32::try_from(config.devices.len() + config.readers.len()).unwrap_or(u32::MAX),
    )
}

/// [`run`], supervised: see [`Supervision`].
pub async fn run_with(
    config: GatewayConfig,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    supervision: Supervision,
) -> anyhow::Result<()> {
    // Two rustls crypto back ends are built in (rumqttc's and reqwest's);
    // rustls then refuses to guess, so name one. Already set is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let span = info_span!("gateway", gateway = %config.gateway.id, site = %config.gateway.site);
    async move {
        let health = supervision
            .health
            .clone()
            .unwrap_or_else(|| Arc::new(health_for(&config)));

        // The outbox first: sequence numbers come from it.
        let (_temporary, dir) = match &config.outbox.dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("gridwatch-outbox-")
                    .tempdir()
                    .context("cannot create a temporary outbox folder")?;
                warn!(
                    "no [outbox] dir is configured: readings wait in {}, which is removed when \
                     the gateway stops, so a restart loses what was not delivered",
                    t.path().display()
                );
                let dir = t.path().to_owned();
                (Some(t), dir)
            }
        };
        let mut uplink_names = vec![mqtt::NAME];
        if config.influx.is_some() {
            uplink_names.push(influx::NAME);
        }
        let (outbox, recovery) = Outbox::open(config.outbox.options(dir.clone()), &uplink_names)
            .with_context(|| format!("cannot open the outbox in {}", dir.display()))?;
        if recovery.records > 0 || recovery.truncated_bytes > 0 {
            info!(
                "outbox {} holds {} records in {} segments from before the restart{}",
                dir.display(),
                recovery.records,
                recovery.segments,
                if recovery.truncated_bytes > 0 {
                    format!("; cut off {} damaged bytes at the end", recovery.truncated_bytes)
                } else {
                    String::new()
                }
            );
        }
        for g in &recovery.seq_gaps {
            info!(
                "device {}: seqs {}..={} were reserved before the restart and never used;                  announced in the status as seq_gaps",
                g.device, g.from, g.to
            );
        }
        health.set_seq_gaps(
            recovery
                .seq_gaps
                .iter()
                .map(|g| gridwatch_telemetry::SeqGap {
                    device: g.device.as_str().into(),
                    from: g.from,
                    to: g.to,
                })
                .collect(),
        );
        let outbox = OutboxHandle::new(outbox);
        crate::clock_sync::init(config.gateway.require_clock_sync);
        tokio::spawn(
            crate::clock_sync::watch(config.gateway.require_clock_sync, shutdown.clone())
                .in_current_span(),
        );
        let stats = outbox.stats();
        health.set_outbox(stats.pending, stats.dropped, stats.full_dropped);
        // One task per RS-485 line that has devices on it; devices and
        // commands reach their units through it.
        let buses: BTreeMap<String, RtuBus> = config
            .buses
            .iter()
            .filter(|b| {
                let used = config.devices.iter().any(|d| {
                    matches!(&d.transport, Transport::ModbusRtu { bus, .. } if *bus == b.id)
                });
                if !used {
                    warn!("bus {} ({}) has no devices; leaving the port closed", b.id, b.describe());
                }
                used
            })
            .map(|b| (b.id.clone(), modbus_rtu::spawn(b, shutdown.clone())))
            .collect();
        // Meters naming one serial port share its line, one request at a
        // time; valve commands to CJ/T 188 meters take turns on it too.
        let mut serial_lines = SerialLines::for_commands(&config);
        let uplink = MqttUplink::new(&config, clock.clone(), health.clone(), outbox.clone())?
            .with_commands(
                crate::command::Commands::new(&config)
                    .with_rtu_buses(&buses)
                    .with_cjt188_lines(&serial_lines.cjt188),
            )
            .with_remote(supervision.remote.clone());
        let influx_uplink = config
            .influx
            .as_ref()
            .map(|i| InfluxUplink::new(i, outbox.clone(), &dir).map(|u| u.with_health(health.clone())))
            .transpose()?;

        let (sender, records) = outbox::queue();
        let writer_task = tokio::spawn(
            writer::run(
                outbox.clone(),
                records,
                sender.polls_in_flight(),
                config.outbox.fsync_interval(),
                clock.clone(),
                {
                    let health = health.clone();
                    move |s: &OutboxStats| health.set_outbox(s.pending, s.dropped, s.full_dropped)
                },
            )
            .in_current_span(),
        );
        let time_seed = DeviceStamp::first_seq_at(clock.now());
        let mut pollers = JoinSet::new();
        // Devices at one host:port share one connection.
        let mut links = TcpLinks::default();
        // Modbus TCP pollers with one interval start on one shared beat.
        // Settling after beats blocks the runtime's thread for a
        // millisecond: only when no serial line needs it meanwhile, and
        // only on a one-thread runtime (the daemon's own, `run`). On a
        // multi-thread runtime shared with others (`gridwatch-sim
        // district-live` runs a gateway per building on one) it would
        // take a worker thread from them.
        let all_tcp = config
            .devices
            .iter()
            .all(|d| matches!(d.transport, Transport::ModbusTcp { .. }));
        let own_thread = tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::CurrentThread;
        let mut metronomes =
            Metronomes::new(shutdown.clone()).with_settle(all_tcp && own_thread);
        for device in &config.devices {
            let first_seq = outbox
                .lock()
                .next_seq(device.id.as_str())
                .unwrap_or(time_seed);
            spawn_poller(
                &mut pollers,
                &mut links,
                &mut metronomes,
                &config,
                &buses,
                device,
                &mut serial_lines,
                first_seq,
                clock.clone(),
                health.clone(),
                sender.clone(),
                shutdown.clone(),
            );
        }
        let edge = start_readers(
            &mut pollers,
            &config,
            &outbox,
            time_seed,
            &clock,
            &health,
            &sender,
            &shutdown,
        )?;
        // Only pollers and readers hold senders now, so the queue closes when they end.
        drop(sender);

        let metrics_task = config.metrics.map(|m| {
            let sources = crate::metrics::Sources {
                health: health.clone(),
                outbox: outbox.clone(),
                uplinks: uplink_names.clone(),
                clock: clock.clone(),
            };
            tokio::spawn(crate::metrics::serve(m.listen, sources, shutdown.clone()).in_current_span())
        });
        let uplink_stop = CancellationToken::new();
        let uplink_task = tokio::spawn(uplink.run(uplink_stop.clone()).in_current_span());
        let influx_task = influx_uplink
            .map(|u| tokio::spawn(u.run(uplink_stop.clone()).in_current_span()));
        info!(
            "gateway {} started: polling {} device{}, publishing to MQTT broker {}:{} under {}/{}/{}/",
            config.gateway.id,
            config.devices.len(),
            if config.devices.len() == 1 { "" } else { "s" },
            config.mqtt.host,
            config.mqtt.port,
            config.mqtt.topic_prefix,
            config.gateway.site,
            config.gateway.id
        );
        // Under systemd (Type=notify, WatchdogSec=): started, then alive.
        crate::sd_notify::ready_and_watch(shutdown.clone());

        shutdown.cancelled().await;
        info!("shutting down: stopping pollers");
        while let Some(done) = pollers.join_next().await {
            if let Err(e) = done {
                error!("a poller ended abnormally: {e}");
            }
        }
        if let Some(edge) = edge {
            if let Err(e) = edge.await {
                error!("the edge outputs task ended abnormally: {e}");
            }
        }
        // The port is free again before a restart with a new config binds it.
        if let Some(Err(e)) = match metrics_task {
            Some(t) => Some(t.await),
            None => None,
        } {
            error!("the metrics endpoint ended abnormally: {e}");
        }
        // The writer ends when the pollers' queue closes, syncing what they sent.
        if let Err(e) = writer_task.await {
            error!("the outbox writer ended abnormally: {e}");
        }
        // The uplink stops after that, so the last records can go out.
        uplink_stop.cancel();
        if let Err(e) = uplink_task.await {
            error!("the MQTT uplink ended abnormally: {e}");
        }
        if let Some(Err(e)) = match influx_task {
            Some(t) => Some(t.await),
            None => None,
        } {
            error!("the InfluxDB uplink ended abnormally: {e}");
        }
        // Saves the cursors of what the uplink delivered while draining, and
        // gives back the unused seqs (a clean stop skips none).
        if let Err(e) = outbox.close().await {
            error!("could not save the outbox cursors at shutdown: {e}");
        }
        info!("gateway {} stopped", config.gateway.id);
        Ok(())
    }
    .instrument(span)
    .await
}

/// Starts the tag and plate readers (one task for all MQTT readers, one
/// per serial reader) and, when outputs are configured, the task that
/// releases edge outputs when their hold runs out. Fails only when the site
/// key cannot be read or a GPIO line cannot be opened.
#[allow(clippy::too_many_arguments)]
fn start_readers(
    set: &mut JoinSet<()>,
    config: &GatewayConfig,
    outbox: &OutboxHandle,
    time_seed: u64,
    clock: &Arc<dyn Clock>,
    health: &Arc<Health>,
    sender: &RecordSender,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let edge = if config.edge.outputs.is_empty() {
        None
    } else {
        let edge = Edge::build(&config.edge).context("cannot set up the edge outputs")?;
        Some(Arc::new(std::sync::Mutex::new(edge)))
    };
    let edge_task = edge.clone().map(|edge| {
        tokio::spawn(edge::release_outputs(edge, clock.clone(), shutdown.clone()).in_current_span())
    });
    if config.readers.is_empty() {
        return Ok(edge_task);
    }
    let key_file = config
        .site_key_file
        .as_ref()
        .context("readers are configured without [pseudonym] site_key_file")?;
    let key = Arc::new(SiteKey::load(key_file)?);
    let mut mqtt_readers = Vec::new();
    for reader in &config.readers {
        let first_seq = outbox
            .lock()
            .next_seq(reader.id.as_str())
            .unwrap_or(time_seed);
        let reader = Arc::new(reader.clone());
        let sink = SightingSink::new(
            reader.clone(),
            config.reader_stamp(&reader, first_seq),
            key.clone(),
            clock.clone(),
            sender.clone(),
            edge.clone(),
        )
        .with_health(health.clone());
        let span = info_span!("reader", reader = %reader.id);
        span.in_scope(|| {
            info!(
                "reader {} at the {} via {}",
                reader.id,
                reader.location.as_str(),
                reader.describe()
            )
        });
        match &reader.source {
            ReaderSource::Mqtt { topic, mapping } => mqtt_readers.push(MqttReader {
                topic: topic.clone(),
                mapping: mapping.clone(),
                sink,
            }),
            ReaderSource::Serial { port, baud } => {
                set.spawn(
                    serial::run(port.clone(), *baud, sink, shutdown.clone()).instrument(span),
                );
            }
        }
    }
    if let (Some(local), false) = (&config.local_mqtt, mqtt_readers.is_empty()) {
        set.spawn(
            readers::mqtt::run(local.clone(), mqtt_readers, shutdown.clone()).in_current_span(),
        );
    }
    Ok(edge_task)
}

#[allow(clippy::too_many_arguments)]
fn spawn_poller(
    set: &mut JoinSet<()>,
    links: &mut TcpLinks,
    metronomes: &mut Metronomes,
    config: &GatewayConfig,
    buses: &BTreeMap<String, RtuBus>,
    device: &DeviceConfig,
    serial_lines: &mut SerialLines,
    first_seq: u64,
    clock: Arc<dyn Clock>,
    health: Arc<Health>,
    sender: RecordSender,
    shutdown: CancellationToken,
) {
    let schedule = Schedule {
        poll_interval: device.poll_interval(),
        retry_max: device.retry_max(),
        offline_after_failures: device.offline_after_failures,
    };
    let mut start = PollerStart {
        stamp: config.device_stamp(device, first_seq),
        schedule,
        report: device.report.clone(),
        clock,
        health,
        sender,
        shutdown,
        span: info_span!("device", device = %device.id),
        beats: None,
    };
    match &device.transport {
        Transport::ModbusTcp {
            host,
            port,
            unit_id,
        } => {
            let logic = ModbusDevice::new(device.profile.clone(), device.max_gap_registers);
            let link = links.get(host, *port);
            let bus = ModbusTcpBus::on(link, host.clone(), *port, *unit_id, device.timeout());
            let bound = ModbusTcpDevice::new(logic, bus, *unit_id);
            start.beats = Some(metronomes.beats(device.poll_interval()));
            let what = format!(
                "{} ({}) at {host}:{port} unit {unit_id}",
                device.id, device.profile.model
            );
            start.spawn(set, bound, &what, device.poll_interval());
        }
        Transport::Dlt645 {
            serial_port,
            baud,
            address,
            phases,
            wake_up,
        } => {
            let line = serial_lines
                .dlt645
                .entry(serial_port.clone())
                .or_insert_with(|| Arc::new(Dlt645Line::new(serial_port.clone(), *baud)))
                .clone();
            let meter = Dlt645Device::new(
                line,
                *address,
                *phases,
                usize::from(*wake_up),
                device.timeout(),
            );
            let what = format!(
                "{} (DL/T 645 {phases}-phase meter {address}) on {} at {baud} baud",
                device.id,
                serial_port.display()
            );
            start.spawn(set, meter, &what, device.poll_interval());
        }
        Transport::Cjt188 {
            serial_port,
            baud,
            meter_type,
            address,
            preamble,
            register_max_milli,
        } => {
            let line = serial_lines.cjt188(serial_port, *baud);
            let meter = Cjt188Device::new(
                line,
                *meter_type,
                *address,
                usize::from(*preamble),
                device.timeout(),
                register_max_milli.map(|m| m as f64 / 1000.0),
            );
            let what = format!(
                "{} (CJ/T 188 {} meter {address}) on {} at {baud} baud",
                device.id,
                device.profile.kind,
                serial_port.display()
            );
            start.spawn(set, meter, &what, device.poll_interval());
        }
        Transport::ModbusRtu { bus, unit_id } => {
            // Config validation guarantees the bus exists, and the daemon
            // started every bus that has a device.
            let Some(line) = buses.get(bus) else {
                error!("{} names bus {bus}, which is not running", device.id);
                return;
            };
            let logic = ModbusDevice::new(device.profile.clone(), device.max_gap_registers);
            let bound = ModbusRtuDevice::new(
                logic,
                line.client(*unit_id)
                    .offline_after_failures(device.offline_after_failures),
            );
            let what = format!(
                "{} ({}) as unit {unit_id} on bus {bus}",
                device.id, device.profile.model
            );
            start.spawn(set, bound, &what, device.poll_interval());
        }
    }
}

/// Serial lines by port, one per protocol: meters naming one port share
/// its line, one request at a time (config validation keeps the two
/// protocols on different ports).
#[derive(Default)]
struct SerialLines {
    dlt645: HashMap<PathBuf, Arc<Dlt645Line>>,
    cjt188: HashMap<PathBuf, Arc<Cjt188Line>>,
}

impl SerialLines {
    /// The lines of the devices that take commands over them (CJ/T 188
    /// valves), made before the command layer that needs them; nothing is
    /// opened yet.
    fn for_commands(config: &GatewayConfig) -> Self {
        let mut lines = Self::default();
        for d in &config.devices {
            if let Transport::Cjt188 {
                serial_port, baud, ..
            } = &d.transport
            {
                lines.cjt188(serial_port, *baud);
            }
        }
        lines
    }

    /// The CJ/T 188 line on `port`, made on first use.
    fn cjt188(&mut self, port: &std::path::Path, baud: u32) -> Arc<Cjt188Line> {
        self.cjt188
            .entry(port.to_path_buf())
            .or_insert_with(|| Arc::new(Cjt188Line::new(port.to_path_buf(), baud)))
            .clone()
    }
}

/// What every device's poller is started with, whatever its protocol, so
/// that the transports differ only in how they build the device.
struct PollerStart {
    stamp: DeviceStamp,
    schedule: Schedule,
    report: Option<crate::devices::report::ReportPolicy>,
    clock: Arc<dyn Clock>,
    health: Arc<Health>,
    sender: RecordSender,
    shutdown: CancellationToken,
    span: tracing::Span,
    /// Beats of the shared metronome for the poll interval, if it uses one.
    beats: Option<crate::devices::metronome::Beats>,
}

impl PollerStart {
    /// Logs what is polled (`what`: the device and where it is) and spawns
    /// its poller into `set`.
    fn spawn<D: Device + 'static>(
        self,
        set: &mut JoinSet<()>,
        device: D,
        what: &str,
        every: std::time::Duration,
    ) {
        self.span
            .in_scope(|| info!("polling {what} every {}", words(every)));
        let poller = Poller::new(
            device,
            self.stamp,
            self.schedule,
            self.clock,
            self.health,
            self.sender,
        )
        .with_report(self.report)
        .with_beats(self.beats);
        set.spawn(poller.run(self.shutdown).instrument(self.span));
    }
}
