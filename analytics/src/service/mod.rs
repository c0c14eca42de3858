//! The running service: one MQTT connection, readings and events in, alerts out.
//!
//! Read top to bottom, this is the whole data path of the binary:
//! broker → [`MessageDecoder`] → [`Pipeline`] → log line + [`AlertOutbox`] →
//! broker. It runs as one task that owns rumqttc's event loop. Readings are
//! and events (tag sightings at a lift, devices going offline) are
//! processed where they arrive (the detectors are cheap and sans-IO), and
//! alerts are handed to the client with `try_publish` only: awaiting a full
//! request channel from the task that must drain it would deadlock.
//!
//! After every (re)connection the subscription is made again: rumqttc does
//! not restore it, and the broker only remembers it when it kept the session.
//! Un-acknowledged alerts are re-sent by the outbox when the session was lost.

mod counters;
mod register_reload;

use crate::alerts::directory::Directory;
use crate::clock_guard::{Admission, ClockGuard};
use crate::config::AnalyticsConfig;
use crate::connection::Backoff;
use crate::dead_letter::DeadLetters;
use crate::dispatch::Cases;
use crate::ingest::{Incoming, MessageDecoder};
use crate::notify::mqtt::{AlertOutbox, OutgoingAlert};
use crate::pipeline::Pipeline;
use crate::store::Store;
use gridwatch_telemetry::Alert;
use gridwatch_telemetry::{Clock, SystemClock};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Outgoing, Packet, QoS, SubscribeReasonCode,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, info_span, warn, Instrument};

/// Requests rumqttc's client may queue before `try_publish` reports it full.
const CLIENT_CAPACITY: usize = 64;
/// Malformed messages logged one by one per minute; the rest are counted.
const MALFORMED_LOG_BUDGET: u32 = 10;
/// How often the counters are logged while messages flow.
const STATS_EVERY: Duration = Duration::from_secs(60);

/// Connects to the broker in `config.mqtt`, processes readings and publishes
/// alerts until `shutdown` is cancelled. Broker outages are retried with
/// backoff for as long as it takes; only an invalid config is an error.
pub async fn run(config: AnalyticsConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with_tap(config, shutdown, None).await
}

/// [`run`], also sending every raised alert to `tap` (the demo prints them
/// with [`crate::render_alert`]). The tap never slows the service down: when
/// it is full, alerts for it are dropped and counted.
pub async fn run_with_tap(
    config: AnalyticsConfig,
    shutdown: CancellationToken,
    tap: Option<mpsc::Sender<Alert>>,
) -> anyhow::Result<()> {
    let options = RunOptions {
        tap,
        ..RunOptions::default()
    };
    run_with(config, shutdown, options).await
}

/// What a caller embedding the service (the demo, tests) may ask of it
/// besides the config.
#[derive(Default)]
pub struct RunOptions {
    /// Receives every raised alert; see [`run_with_tap`].
    pub tap: Option<mpsc::Sender<Alert>>,
    /// Receives the address the API listens on once it does (with
    /// `[api] listen` on port 0 this is how the caller learns the port).
    pub api_ready: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
    /// The host's clock, when not the wall clock: the demo runs its yard on
    /// a clock 30× faster and gives analytics the same one, so that the
    /// clock guard believes the yard's timestamps and a case's trail (raised
    /// in event time, acted on in host time) reads on one clock.
    pub clock: Option<Arc<dyn Clock>>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("tap", &self.tap)
            .field("api_ready", &self.api_ready)
            .field("clock", &self.clock.as_ref().map(|c| c.now()))
            .finish()
    }
}

/// [`run`] with [`RunOptions`].
pub async fn run_with(
    config: AnalyticsConfig,
    shutdown: CancellationToken,
    options: RunOptions,
) -> anyhow::Result<()> {
    let RunOptions {
        tap,
        api_ready,
        clock,
    } = options;
    let clock: Arc<dyn Clock> = clock.unwrap_or_else(|| Arc::new(SystemClock));
    config.validate()?;
    let mut config = config;
    let directory = match &config.directory.path {
        Some(p) => Directory::load(p)?,
        None => Directory::default(),
    };
    directory
        .route_into(&mut config.cells)
        .map_err(anyhow::Error::msg)?;
    let register = match &config.register.path {
        Some(p) => {
            let r = crate::register::Register::load(p)?;
            let (flats, tags) = r.counts();
            info!("register {}: {flats} flats, {tags} tags", p.display());
            r
        }
        None => {
            info!(
                "no register ([register] path): group rental assumes {} occupants per flat; sightings name their reader",
                config.detect.group_rental.default_occupants
            );
            crate::register::Register::default()
        }
    };
    let store = Store::open(&config.store)?;
    let (commands, command_rx) = crate::command::CommandSender::channel();
    let directory = Arc::new(directory);
    let live = crate::live::Live::new(&config, &directory, register.clone());
    let parts = crate::live::ApiParts {
        store: store.clone(),
        directory: directory.clone(),
        clock: clock.clone(),
        commands,
        ready: api_ready,
    };
    crate::live::serve_api(&config, &live, parts, &shutdown)?;
    live.spawn_saver(
        Duration::from_secs(config.checkpoint.every_s),
        shutdown.clone(),
    );
    let span =
        info_span!("analytics", broker = %config.mqtt.broker(), client_id = %config.mqtt.client_id);
    let channels = crate::notify::start_channels(&config, directory.clone(), &shutdown)?;
    let link = crate::command::CommandLink::new(&config.mqtt.topic_prefix, store.clone());
    let cases = Cases::new(store, directory, &config).with_channels(channels);
    let mut service = Service::new(&config, register, tap, cases, live.clone(), clock);
    service.commands = Some((link, command_rx));
    crate::checkpoint::restore(&config, &mut service.pipeline)?;
    if let Some(c) = &mut service.checkpoint {
        // Proves at start that the file can be written, not an hour later.
        c.save(&service.pipeline)
            .map_err(|e| anyhow::anyhow!("{e} ([checkpoint] path)"))?;
    }
    let (client, eventloop) = AsyncClient::new(config.mqtt.options()?, CLIENT_CAPACITY);
    service
        .run(client, eventloop, shutdown)
        .instrument(span)
        .await;
    live.save();
    Ok(())
}

struct Service {
    mqtt: crate::connection::MqttConfig,
    decoder: MessageDecoder,
    pipeline: Pipeline,
    outbox: AlertOutbox,
    tap: Option<mpsc::Sender<Alert>>,
    connected: bool,
    subscribe_due: bool,
    malformed: u64,
    malformed_budget: crate::log_budget::LogBudget,
    /// Messages over `[ingest] max_message_bytes`, dropped unread.
    oversized: u64,
    max_message_bytes: usize,
    clock_guard: ClockGuard,
    /// The host's clock the guard judges timestamps against.
    clock: Arc<dyn Clock>,
    dead_letters: DeadLetters,
    tap_dropped: u64,
    last_stats: Instant,
    cases: Cases,
    live: crate::live::Live,
    checkpoint: Option<crate::checkpoint::Checkpointer>,
    /// The register file, re-read when it changes (`[register]
    /// reload_check_s`), and when to look next.
    register_watch: Option<crate::register::shared::RegisterWatch>,
    register_tick: tokio::time::Interval,
    /// Commands from the API to gateways, and their answers.
    commands: Option<(
        crate::command::CommandLink,
        mpsc::Receiver<crate::command::SocketOff>,
    )>,
}

impl Service {
    fn new(
        config: &AnalyticsConfig,
        register: crate::register::Register,
        tap: Option<mpsc::Sender<Alert>>,
        cases: Cases,
        live: crate::live::Live,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            mqtt: config.mqtt.clone(),
            decoder: MessageDecoder::new(&config.mqtt.topic_prefix),
            pipeline: Pipeline::with_register(config, register),
            outbox: AlertOutbox::new(config.mqtt.max_queued_alerts),
            tap,
            connected: false,
            subscribe_due: false,
            malformed: 0,
            malformed_budget: crate::log_budget::LogBudget::new(
                MALFORMED_LOG_BUDGET,
                Duration::from_secs(60),
            ),
            oversized: 0,
            max_message_bytes: config.ingest.max_message_bytes,
            clock_guard: ClockGuard::new(&config.ingest),
            clock,
            dead_letters: DeadLetters::new(
                config.ingest.dead_letter_path.clone(),
                config.ingest.dead_letter_max_bytes,
            ),
            tap_dropped: 0,
            last_stats: Instant::now(),
            cases,
            live,
            checkpoint: crate::checkpoint::Checkpointer::new(config),
            register_watch: register_reload::watch(&config.register),
            register_tick: register_reload::tick(&config.register),
            commands: None,
        }
    }

    /// Saves a checkpoint when one is due; a failure is logged and counted,
    /// never fatal (detection goes on; the next attempt may succeed).
    fn checkpoint_if_due(&mut self, force: bool) {
        let Some(c) = &mut self.checkpoint else {
            return;
        };
        if !force && !c.due() {
            return;
        }
        let started = Instant::now();
        match c.save(&self.pipeline) {
            Ok(bytes) => debug!(
                "checkpoint {} saved: {bytes} bytes in {} ms",
                c.path().display(),
                started.elapsed().as_millis()
            ),
            Err(e) => warn!("{e} ({} failed so far)", c.failed()),
        }
    }

    async fn run(
        &mut self,
        client: AsyncClient,
        mut eventloop: EventLoop,
        shutdown: CancellationToken,
    ) {
        let mut backoff = Backoff::for_config(&self.mqtt);
        info!(
            "analytics starting: readings from {} on broker {} as client {}",
            self.filters(),
            self.mqtt.broker(),
            self.mqtt.client_id
        );
        loop {
            let command = crate::command::next(self.commands.as_mut().map(|(_, rx)| rx));
            let event = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(c) = command => {
                    if let Some((link, _)) = &mut self.commands {
                        link.queue(c);
                    }
                    None
                }
                event = eventloop.poll() => Some(event),
                _ = self.register_tick.tick() => {
                    self.reload_register();
                    None
                }
            };
            match event {
                None => {}
                Some(Ok(event)) => {
                    if matches!(event, Event::Incoming(Packet::ConnAck(_))) {
                        backoff.reset();
                    }
                    self.on_event(event);
                }
                Some(Err(e)) => {
                    let delay = backoff.next_delay();
                    self.on_connection_error(&e, delay);
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
            self.hand_over(&client);
            self.log_stats_if_due();
            self.checkpoint_if_due(false);
        }
        self.finish(&client, &mut eventloop).await;
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                self.connected = true;
                self.subscribe_due = true;
                let unacked = self.outbox.unacknowledged();
                let session = match (ack.session_present, unacked) {
                    (true, _) => "the broker kept our session".to_owned(),
                    (false, 0) => "new session".to_owned(),
                    (false, n) => {
                        format!("new session; re-sending {n} alerts not yet acknowledged")
                    }
                };
                info!(
                    session_present = ack.session_present,
                    "connected to broker {}; {session}; subscribing to {}",
                    self.mqtt.broker(),
                    self.filters()
                );
                self.outbox.on_connected(ack.session_present);
            }
            Event::Incoming(Packet::SubAck(ack)) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure))
                {
                    error!(
                        "broker {} refused the subscription to {}; no readings will arrive (check the broker's ACL for {})",
                        self.mqtt.broker(),
                        self.filters(),
                        self.mqtt.client_id
                    );
                } else {
                    info!("subscribed to {}", self.filters());
                }
            }
            Event::Incoming(Packet::Publish(p)) => self.on_message(&p.topic, &p.payload),
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(a) = self.outbox.on_acked(ack.pkid) {
                    debug!(alert_id = %a.id, "broker acknowledged alert {} on {}", a.id, a.topic);
                }
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => self.outbox.on_sent(pkid),
            Event::Outgoing(Outgoing::AwaitAck(pkid)) => self.outbox.on_parked(pkid),
            _ => {}
        }
    }

    fn on_connection_error(&mut self, e: &ConnectionError, delay: Duration) {
        let was = std::mem::replace(&mut self.connected, false);
        let what = if was {
            "lost the connection to"
        } else {
            "cannot connect to"
        };
        warn!(
            "{what} broker {}: {e}; retrying in {} ms ({} alerts waiting)",
            self.mqtt.broker(),
            delay.as_millis(),
            self.outbox.unacknowledged()
        );
    }

    /// The subscription filters, for log lines.
    fn filters(&self) -> String {
        self.decoder.filters().join(" and ")
    }

    fn on_message(&mut self, topic: &str, payload: &[u8]) {
        let now = self.clock.now();
        if let Some((link, _)) = self.commands.as_mut().filter(|(l, _)| l.is_ack(topic)) {
            link.on_ack(topic, payload, now);
            return;
        }
        if payload.len() > self.max_message_bytes {
            self.oversized += 1;
            let reason = format!(
                "{} bytes, over [ingest] max_message_bytes ({})",
                payload.len(),
                self.max_message_bytes
            );
            if self.malformed_budget.allow() {
                warn!(topic, "dropped a message unread: {reason}");
            }
            self.dead_letters.record(now, topic, &reason, payload);
            return;
        }
        let incoming = match self.decoder.decode_message(topic, payload) {
            Ok(incoming) => incoming,
            Err(e) => {
                self.malformed += 1;
                if self.malformed_budget.allow() {
                    warn!(topic, "dropped a message: {e}");
                }
                self.dead_letters
                    .record(now, topic, &e.to_string(), payload);
                return;
            }
        };
        let (site, gateway, ts) = match &incoming {
            Incoming::Reading(r) => (r.site.as_str(), r.gateway.as_str(), r.ts),
            Incoming::Event(e) => (e.site.as_str(), e.gateway.as_str(), e.ts),
        };
        if let Admission::Quarantine { reason, finding } =
            self.clock_guard.admit(site, gateway, ts, now)
        {
            debug!(topic, "quarantined: {reason}");
            if let Some(f) = finding {
                let alert = self.pipeline.raise_finding(*f);
                self.raise(alert);
            }
            return;
        }
        let reading = match incoming {
            Incoming::Reading(r) => r,
            Incoming::Event(e) => {
                let span = tracing::debug_span!("event", device = %e.device, seq = e.seq);
                let _guard = span.enter();
                self.live.observe_event(&e);
                for alert in self.pipeline.process_event(&e) {
                    self.raise(alert);
                }
                self.cases.tick(e.ts);
                return;
            }
        };
        if let Err(e) = self.pipeline.plausibility().check(&reading) {
            // The pipeline counts it and keeps it from every detector; here
            // it is named in the log and kept in the dead-letter file.
            if self.malformed_budget.allow() {
                warn!(topic, "kept out of the detectors: {e}");
            }
            self.dead_letters
                .record(now, topic, &e.to_string(), payload);
        }
        let span = tracing::debug_span!("reading", entity = %reading.entity(), seq = reading.seq);
        let _guard = span.enter();
        self.live.observe(&reading);
        for alert in self.pipeline.process(&reading) {
            self.raise(alert);
        }
        self.cases.tick(reading.ts);
    }

    /// Records the alert, then publishes it (and the alert store's own
    /// alert, if this record started a store failure episode).
    fn raise(&mut self, alert: Alert) {
        if !self.cases.record(&alert) {
            return;
        }
        self.publish(alert);
        if let Some(health) = self.cases.take_store_alert() {
            self.publish(health);
        }
    }

    /// Logs the alert as one line, queues it for the broker and the tap.
    fn publish(&mut self, alert: Alert) {
        info!(
            alert_id = %alert.id,
            rule = %alert.rule,
            cell = %alert.cell,
            severity = %alert.severity,
            "{} alert for cell {}: {} [{}]",
            alert.severity.as_str().to_uppercase(),
            alert.cell,
            alert.title,
            alert.id
        );
        match OutgoingAlert::for_alert(&alert) {
            Ok(out) => {
                if let Some(dropped) = self.outbox.push(out) {
                    error!(
                        "{} alerts are waiting for the broker (max_queued_alerts); dropped the oldest, {}",
                        self.mqtt.max_queued_alerts, dropped.id
                    );
                }
            }
            Err(e) => error!(alert_id = %alert.id, "could not encode alert {}: {e}", alert.id),
        }
        if let Some(tap) = &self.tap {
            if tap.try_send(alert).is_err() {
                self.tap_dropped += 1;
            }
        }
    }

    /// Subscribes when due and hands waiting alerts to the client while it
    /// has room; what does not fit waits for the next event.
    fn hand_over(&mut self, client: &AsyncClient) {
        if !self.connected {
            return;
        }
        if self.subscribe_due {
            let acks = self.commands.as_ref().map(|(l, _)| l.ack_filter());
            let filters = self
                .decoder
                .filters()
                .into_iter()
                .chain(acks)
                .map(|f| rumqttc::SubscribeFilter::new(f, QoS::AtLeastOnce));
            match client.try_subscribe_many(filters) {
                Ok(()) => self.subscribe_due = false,
                Err(_) => return,
            }
        }
        if let Some((link, _)) = &mut self.commands {
            link.hand_over(client);
        }
        while let Some(a) = self.outbox.next_waiting() {
            match client.try_publish(a.topic.clone(), QoS::AtLeastOnce, false, a.payload.clone()) {
                Ok(()) => self.outbox.mark_handed(),
                Err(_) => break,
            }
        }
    }

    /// On shutdown: give alerts already raised `shutdown_flush_ms` to reach
    /// the broker, then disconnect cleanly.
    async fn finish(&mut self, client: &AsyncClient, eventloop: &mut EventLoop) {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.mqtt.shutdown_flush_ms);
        while self.connected && self.outbox.unacknowledged() > 0 {
            match tokio::time::timeout_at(deadline, eventloop.poll()).await {
                Ok(Ok(event)) => self.on_event(event),
                Ok(Err(_)) | Err(_) => break,
            }
            self.hand_over(client);
        }
        let left = self.outbox.unacknowledged();
        if left > 0 {
            warn!(
                "stopping with {left} alerts not acknowledged by the broker; they are in this log"
            );
        }
        if self.connected && client.try_disconnect().is_ok() {
            let until = tokio::time::Instant::now() + Duration::from_millis(500);
            while let Ok(Ok(event)) = tokio::time::timeout_at(until, eventloop.poll()).await {
                if matches!(event, Event::Outgoing(Outgoing::Disconnect)) {
                    break;
                }
            }
        }
        self.checkpoint_if_due(true);
        self.log_stats();
        info!("analytics stopped");
    }
}
