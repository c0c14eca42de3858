//! The MQTT uplink: records from the outbox at QoS 1, and the gateway's
//! retained status with a last will.
//!
//! The outbox, not rumqttc, is the source of truth (docs/pitfalls.md: rumqttc
//! keeps unacknowledged publishes in memory only and drops them when the
//! broker has no session). So each connection attempt gets a fresh rumqttc
//! client and event loop, and each connection re-sends from the uplink's
//! cursor in the outbox: everything not yet PUBACKed, oldest first. A record
//! is acknowledged to the outbox only on its PUBACK, and the cursor moves
//! only over an unbroken run of PUBACKed records. At most `inflight`
//! publishes are unacknowledged at a time and at most `max_publish_per_s`
//! are sent a second, so a fleet catching up after an outage does not
//! flatten the broker. Between attempts the uplink waits with jittered
//! exponential backoff.
//!
//! On every ConnAck it publishes a retained `online` status (the birth
//! message; the broker may have published the will meanwhile), and again on
//! change and at least every minute ([`status`]); the last will is a
//! retained `offline` status. At shutdown it sends what the outbox holds
//! for a short while, publishes `offline` and disconnects cleanly.
//!
//! Downlink commands: on every ConnAck it subscribes to `…/cmd/+`; each
//! command runs in its own task ([`crate::command`]) and its ack is published
//! on `…/cmd-ack/{device}`. Acks are answers, not measurements: they do not
//! go through the outbox, and an ack for a connection that dropped is lost
//! (the sender sees no ack and may ask again). A signed config on
//! `…/cmd/_config` goes to the remote-config supervisor instead, when
//! `[remote]` is on ([`crate::remote`]); its ack is published by whichever
//! run of the daemon is connected when the outcome is known.
//!
//! A driver task polls rumqttc's event loop and forwards its events on a
//! channel, so this task can wait on the broker, the outbox and the clock at
//! once without cancelling a poll halfway.

mod setup;
pub mod status;
pub mod window;

pub(crate) use self::setup::{configure_security, reason};

use self::status::{status_due, Published, StatusFigures};
use self::window::{DeliveryWindow, Next, Publish};
use crate::command::{Ack, Commands};
use crate::config::GatewayConfig;
use crate::net::{jittered, words, Backoff};
use crate::outbox::writer::OutboxHandle;
use crate::outbox::StoredRecord;
use crate::outbox::{Entry, ReadCursor};
use crate::remote::{RemoteLink, CONFIG_DEVICE};
use crate::status::Health;
use gridwatch_telemetry::topic::TopicKind;
use gridwatch_telemetry::topic::Topics;
use gridwatch_telemetry::{Clock, GatewayId, GatewayState, SiteId};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn, Instrument};

/// The MQTT uplink's name in the outbox (its cursor).
pub const NAME: &str = "mqtt";
/// First wait between reconnection attempts.
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
/// Time allowed at shutdown to send what the outbox holds and see it acknowledged.
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// Time allowed at shutdown to publish `offline` and disconnect.
const GOODBYE_TIME: Duration = Duration::from_secs(3);
/// How often the uplink checks whether the status has news to publish.
const STATUS_CHECK: Duration = Duration::from_secs(5);
/// Events buffered between the driver task and the uplink.
const EVENT_CAPACITY: usize = 256;

/// Why TLS or credentials could not be set up: a file missing, readable by
/// others (password, key) or empty (password), named in the message.
pub type MqttSetupError = gridwatch_telemetry::secret::SecretError;

/// The MQTT uplink of one gateway.
pub struct MqttUplink {
    options: MqttOptions,
    broker: String,
    topics: Topics,
    gateway: GatewayId,
    site: SiteId,
    inflight: usize,
    max_publish_per_s: u32,
    reconnect_max: Duration,
    clock: Arc<dyn Clock>,
    health: Arc<Health>,
    outbox: Arc<OutboxHandle>,
    commands: Commands,
    remote: Option<RemoteLink>,
}

/// Acks of commands carried out, on their way to be published.
type AckReceiver = mpsc::Receiver<Ack>;
/// A command that arrived: (device, payload).
type Incoming = (String, Vec<u8>);
/// Commands waiting to be carried out, at most; more are refused in the log.
const COMMAND_CAPACITY: usize = 64;

/// How one connection ended.
enum Ended {
    Shutdown,
    Lost { why: String, was_connected: bool },
}

impl MqttUplink {
    /// An uplink for `config`'s `[mqtt]` table that delivers `outbox`;
    /// nothing is connected yet. Reads the TLS and password files.
    pub fn new(
        config: &GatewayConfig,
        clock: Arc<dyn Clock>,
        health: Arc<Health>,
        outbox: Arc<OutboxHandle>,
    ) -> Result<Self, MqttSetupError> {
        let m = &config.mqtt;
        let mut options = MqttOptions::new(m.client_id.clone(), m.host.clone(), m.port);
        options.set_keep_alive(Duration::from_secs(u64::from(m.keep_alive_s)));
        options.set_clean_session(false);
        options.set_inflight(m.inflight.max(1));
        // Signed configs (`cmd/_config`) are larger than rumqttc's 10 KiB
        // default; a larger packet would end every connection.
        options.set_max_packet_size(
            crate::remote::bundle::MAX_ENVELOPE_BYTES + 4096,
            options.max_packet_size().max(10 * 1024),
        );
        configure_security(&mut options, m)?;
        Ok(Self {
            options,
            broker: format!("{}:{}", m.host, m.port),
            topics: config.topics(),
            gateway: config.gateway.id.clone(),
            site: config.gateway.site.clone(),
            inflight: usize::from(m.inflight.max(1)),
            max_publish_per_s: m.max_publish_per_s,
            reconnect_max: Duration::from_millis(m.reconnect_max_ms),
            clock,
            health,
            outbox,
            commands: Commands::new(config),
            remote: None,
        })
    }

    /// Hands signed configs (`…/cmd/_config`) to the supervisor through
    /// `link` and publishes the acks it decides.
    pub fn with_remote(mut self, link: Option<RemoteLink>) -> Self {
        self.remote = link;
        self
    }

    /// Replaces the command executor (the daemon's knows the running
    /// RS-485 buses, which the config alone does not).
    pub fn with_commands(mut self, commands: Commands) -> Self {
        self.commands = commands;
        self
    }

    fn status_topic(&self) -> String {
        self.topics
            .status(self.site.as_str(), self.gateway.as_str())
    }

    /// The status for `state` now: its figures and its payload.
    fn status_message(&self, state: GatewayState) -> (StatusFigures, Vec<u8>) {
        status::message(&self.health.status(state, self.clock.now()))
    }

    /// The retained `offline` status the broker publishes if we vanish.
    fn last_will(&self) -> LastWill {
        LastWill::new(
            self.status_topic(),
            self.status_message(GatewayState::Offline).1,
            QoS::AtLeastOnce,
            true,
        )
    }

    /// The topic and payload of a stored record.
    fn message(&self, entry: &Entry) -> Option<(String, Vec<u8>)> {
        match StoredRecord::parse(&entry.payload) {
            Ok(r) => {
                let (site, gw) = (self.site.as_str(), self.gateway.as_str());
                let topic = if r.is_event {
                    self.topics.event(site, gw, r.device)
                } else {
                    self.topics.reading(site, gw, r.device)
                };
                Some((topic, r.json.to_vec()))
            }
            Err(e) => {
                error!(
                    "outbox record {} cannot be published and is skipped: {e}",
                    entry.id
                );
                None
            }
        }
    }

    /// Delivers the outbox until `shutdown`, then says goodbye.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(RECONNECT_FIRST, self.reconnect_max);
        let (acks_tx, mut acks) = mpsc::channel(COMMAND_CAPACITY);
        let (commands_tx, mut commands) = mpsc::channel::<Incoming>(COMMAND_CAPACITY);
        // One executor: commands run one at a time, in the order they came.
        let (executor, clock) = (self.commands.clone(), self.clock.clone());
        let executor_task = tokio::spawn(
            async move {
                while let Some((device, payload)) = commands.recv().await {
                    let ack = executor.execute(&device, &payload, clock.now()).await;
                    match (&ack.result, &ack.error) {
                        (Some(done), _) => info!("command for {device} done: {done}"),
                        (_, Some(why)) => warn!("command for {device} refused: {why}"),
                        _ => {}
                    }
                    if acks_tx.send(ack).await.is_err() {
                        break;
                    }
                }
            }
            .in_current_span(),
        );
        loop {
            match self
                .connection(&shutdown, &mut backoff, &commands_tx, &mut acks)
                .await
            {
                Ended::Shutdown => break,
                Ended::Lost { why, was_connected } => {
                    if shutdown.is_cancelled() {
                        break;
                    }
                    self.health.record_uplink(NAME, false);
                    let delay = jittered(backoff.next_delay(), rand::random::<f64>());
                    let broker = &self.broker;
                    if was_connected {
                        warn!(
                            "lost the connection to MQTT broker {broker} ({why}); reconnecting in {}",
                            words(delay)
                        );
                    } else {
                        warn!(
                            "MQTT broker {broker} unreachable ({why}); retrying in {}",
                            words(delay)
                        );
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
            }
        }
        // A command still running has no connection left to ack on.
        executor_task.abort();
    }

    /// One connection: connect, send from the cursor, until it fails or
    /// `shutdown` (then drain briefly and say goodbye).
    async fn connection(
        &self,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
        commands: &mpsc::Sender<Incoming>,
        acks: &mut AckReceiver,
    ) -> Ended {
        let mut options = self.options.clone();
        // The will's timestamp says when the gateway (re)connected.
        options.set_last_will(self.last_will());
        let (client, eventloop) = AsyncClient::new(options, self.inflight + 16);
        let (events_tx, mut events) = mpsc::channel(EVENT_CAPACITY);
        let driver = tokio::spawn(drive(eventloop, events_tx).in_current_span());
        let mut s = Session::new(self);
        let mut drain_until: Option<Instant> = None;
        let mut writer_gone = false;
        let mut status_check = tokio::time::interval(STATUS_CHECK);
        status_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        let ended = loop {
            let rate_wait = if s.connected {
                match s.send(self, &client) {
                    Ok(w) => w,
                    Err(why) => {
                        break Ended::Lost {
                            why,
                            was_connected: true,
                        }
                    }
                }
            } else {
                None
            };
            if let Some(until) = drain_until {
                let drained = s.window.is_idle()
                    && s.ahead.is_empty()
                    && s.reader.next_id() >= *s.readable.borrow();
                if !s.connected || drained || Instant::now() >= until {
                    break Ended::Shutdown;
                }
            }
            let want_more =
                !writer_gone && s.connected && s.ahead.is_empty() && s.window.room() > 0;
            let until = drain_until.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(Ok(Event::Incoming(Packet::Publish(p)))) => self.on_command(&p.topic, &p.payload, commands),
                    Some(Ok(ev)) => s.on_event(self, &client, ev, backoff),
                    Some(Err(e)) => break Ended::Lost { why: reason(&e), was_connected: s.connected },
                    None => break Ended::Lost { why: "the MQTT event loop ended".into(), was_connected: s.connected },
                },
                r = s.readable.changed(), if want_more => {
                    if r.is_err() {
                        // The outbox writer is gone (the gateway is stopping):
                        // nothing new will come.
                        writer_gone = true;
                    }
                },
                _ = tokio::time::sleep(rate_wait.unwrap_or_default()), if rate_wait.is_some() => {},
                Some(ack) = acks.recv() => s.publish_ack(self, &client, ack),
                _ = remote_ack_ready(self.remote.as_ref()), if s.connected => {
                    s.publish_remote_acks(self, &client);
                },
                _ = status_check.tick() => {
                    // Devices came or went, the outbox moved, or a minute passed.
                    let current = self.status_message(GatewayState::Online).0;
                    let now = Instant::now().into_std();
                    if s.connected && status_due(s.published.as_ref(), &current, now) {
                        let _ = s.publish_status(self, &client, GatewayState::Online);
                    }
                },
                _ = shutdown.cancelled(), if drain_until.is_none() => {
                    drain_until = Some(Instant::now() + DRAIN_TIME);
                },
                _ = tokio::time::sleep_until(until), if drain_until.is_some() => {},
            }
        };

        if let Ended::Shutdown = ended {
            self.goodbye(&client, &mut events, &mut s).await;
        }
        driver.abort();
        ended
    }

    /// Queues a command that arrived on `topic` for the executor.
    fn on_command(&self, topic: &str, payload: &[u8], commands: &mpsc::Sender<Incoming>) {
        let Some(parts) = self.topics.parse(topic) else {
            return;
        };
        let (TopicKind::Cmd, Some(device)) = (parts.kind, parts.device) else {
            return;
        };
        if let (CONFIG_DEVICE, Some(remote)) = (device, &self.remote) {
            info!("a signed config arrived ({} bytes)", payload.len());
            if !remote.submit(payload.to_vec()) {
                warn!("signed configs are already waiting; this one is dropped without an ack");
            }
            return;
        }
        info!("command for {device}: {}", String::from_utf8_lossy(payload));
        if commands
            .try_send((device.to_owned(), payload.to_vec()))
            .is_err()
        {
            warn!(
                "{COMMAND_CAPACITY} commands are already waiting; the command for {device} \
                 is dropped without an ack"
            );
        }
    }

    /// Publishes `offline` and disconnects, within [`GOODBYE_TIME`].
    async fn goodbye(
        &self,
        client: &AsyncClient,
        events: &mut mpsc::Receiver<Result<Event, ConnectionError>>,
        s: &mut Session,
    ) {
        if !s.connected {
            return;
        }
        let deadline = Instant::now() + GOODBYE_TIME;
        let _ = s.publish_status(self, client, GatewayState::Offline);
        if client.try_disconnect().is_err() {
            warn!("could not queue the MQTT disconnect; the broker's last will reports the gateway offline");
            return;
        }
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(Ok(Event::Outgoing(Outgoing::Disconnect)))) => {
                    debug!("disconnected from MQTT broker {}", self.broker);
                    return;
                }
                Ok(Some(Ok(ev))) => {
                    let mut b = Backoff::new(RECONNECT_FIRST, RECONNECT_FIRST);
                    s.on_event(self, client, ev, &mut b);
                }
                _ => {
                    warn!(
                        "MQTT broker {} did not take the goodbye in time; its last will marks \
                         the gateway offline",
                        self.broker
                    );
                    return;
                }
            }
        }
    }
}

/// The state of one connection.
struct Session {
    connected: bool,
    /// The last `online` status published on this connection.
    published: Option<Published>,
    reader: ReadCursor,
    readable: tokio::sync::watch::Receiver<u64>,
    /// Records read from the outbox, not yet handed to rumqttc.
    ahead: VecDeque<Entry>,
    /// What is in flight, and how far the cursor may move.
    window: DeliveryWindow,
}

impl Session {
    fn new(uplink: &MqttUplink) -> Self {
        let from = uplink.outbox.cursor(NAME).unwrap_or(0);
        Self {
            connected: false,
            published: None,
            reader: ReadCursor::at(from),
            readable: uplink.outbox.readable(),
            ahead: VecDeque::new(),
            window: DeliveryWindow::new(
                uplink.inflight,
                uplink.max_publish_per_s,
                from,
                Instant::now().into_std(),
            ),
        }
    }

    fn publish_ack(&mut self, uplink: &MqttUplink, client: &AsyncClient, ack: Ack) {
        let topic =
            uplink
                .topics
                .cmd_ack(uplink.site.as_str(), uplink.gateway.as_str(), &ack.device);
        match client.try_publish(topic, QoS::AtLeastOnce, false, ack.to_json()) {
            Ok(()) => self.window.handed(Publish::Other),
            Err(e) => warn!(
                "could not publish the ack of a command for {}: {e}",
                ack.device
            ),
        }
    }

    /// Publishes the acks of remote configs decided meanwhile.
    fn publish_remote_acks(&mut self, uplink: &MqttUplink, client: &AsyncClient) {
        if let Some(remote) = &uplink.remote {
            for ack in remote.take_acks() {
                self.publish_ack(uplink, client, ack);
            }
        }
    }

    fn publish_status(
        &mut self,
        uplink: &MqttUplink,
        client: &AsyncClient,
        state: GatewayState,
    ) -> Result<(), rumqttc::ClientError> {
        let (figures, payload) = uplink.status_message(state);
        client.try_publish(uplink.status_topic(), QoS::AtLeastOnce, true, payload)?;
        self.window.handed(Publish::Other);
        self.published = Some(Published::new(figures, Instant::now().into_std()));
        Ok(())
    }

    /// Hands records to rumqttc while the window and the rate allow. Returns
    /// how long to wait when the rate is what stops it.
    fn send(
        &mut self,
        uplink: &MqttUplink,
        client: &AsyncClient,
    ) -> Result<Option<Duration>, String> {
        while self.window.room() > 0 {
            if self.ahead.is_empty() {
                let room = self.window.room();
                match uplink.outbox.read(&mut self.reader, room.max(16)) {
                    Ok(got) => self.ahead.extend(got),
                    Err(e) => {
                        error!("the MQTT uplink cannot read the outbox: {e}");
                        return Ok(Some(Duration::from_secs(1)));
                    }
                }
            }
            let Some(entry) = self.ahead.front() else {
                return Ok(None);
            };
            match self.window.next(Instant::now().into_std()) {
                Next::Send => {}
                Next::Wait(wait) => return Ok(Some(wait)),
                Next::Full => return Ok(None),
            }
            let id = entry.id;
            let message = uplink.message(entry);
            self.ahead.pop_front();
            let Some((topic, payload)) = message else {
                // Unpublishable: count it as delivered so it never blocks the queue.
                if let Some(cursor) = self.window.skipped(id) {
                    uplink.outbox.acknowledge(NAME, cursor);
                }
                continue;
            };
            if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, payload) {
                return Err(format!("the MQTT client refused a publish: {e}"));
            }
            self.window.handed(Publish::Record(id));
        }
        Ok(None)
    }

    fn on_event(
        &mut self,
        uplink: &MqttUplink,
        client: &AsyncClient,
        ev: Event,
        backoff: &mut Backoff,
    ) {
        match ev {
            Event::Incoming(Packet::ConnAck(ack)) => {
                info!(
                    "connected to MQTT broker {} as {}{}; sending from outbox record {}",
                    uplink.broker,
                    uplink.options.client_id(),
                    if ack.session_present {
                        " (session kept)"
                    } else {
                        ""
                    },
                    self.reader.next_id()
                );
                self.connected = true;
                uplink.health.record_uplink(NAME, true);
                backoff.reset();
                if let Err(e) = self.publish_status(uplink, client, GatewayState::Online) {
                    warn!("could not queue the online status: {e}");
                }
                self.publish_remote_acks(uplink, client);
                let commands =
                    uplink
                        .topics
                        .cmd(uplink.site.as_str(), uplink.gateway.as_str(), "+");
                if let Err(e) = client.try_subscribe(commands, QoS::AtLeastOnce) {
                    warn!("could not subscribe to commands: {e}");
                }
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => self.window.on_outgoing(pkid),
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(cursor) = self.window.on_puback(ack.pkid) {
                    uplink.outbox.acknowledge(NAME, cursor);
                }
            }
            _ => {}
        }
    }
}

/// Resolves when the supervisor has a remote-config ack to publish; never
/// without a link.
async fn remote_ack_ready(remote: Option<&RemoteLink>) {
    match remote {
        Some(r) => r.ack_ready().await,
        None => std::future::pending().await,
    }
}

/// Polls the event loop and forwards every event, until the first error
/// (forwarded too) or until the uplink stops listening.
async fn drive(mut eventloop: EventLoop, events: mpsc::Sender<Result<Event, ConnectionError>>) {
    loop {
        let ev = eventloop.poll().await;
        let failed = ev.is_err();
        if events.send(ev).await.is_err() || failed {
            break;
        }
    }
}
