//! The MQTT uplink: readings and events at QoS 1, and the gateway's retained
//! status with a last will.
//!
//! Two tasks: this one takes [`Record`]s from the queue and hands them to
//! rumqttc's [`AsyncClient`]; a driver task polls rumqttc's [`EventLoop`],
//! which owns the connection. rumqttc reconnects when polled after an error;
//! the driver waits with a backoff between attempts and logs each in a
//! sentence. On every ConnAck it publishes a retained `online` status (the
//! broker may have published the last will meanwhile); the last will itself
//! is a retained `offline` status. At shutdown the uplink publishes `offline`
//! and disconnects cleanly, so the broker discards the will.
//!
//! Known gap until the outbox lands (DESIGN.md §10): rumqttc keeps unacked
//! publishes in memory only and drops them when the broker reports no stored
//! session. The session is requested persistent (`clean_session = false`) so
//! that a broker that keeps it lets rumqttc resend them.

use super::Record;
use crate::backoff::{words, Backoff};
use crate::bus::io_reason;
use crate::config::GatewayConfig;
use crate::status::Health;
use gridwatch_telemetry::topic::Topics;
use gridwatch_telemetry::{codec, Clock, GatewayId, GatewayState, SiteId};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
    StateError,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn, Instrument};

/// Requests rumqttc queues between this task and its event loop.
const CLIENT_CAPACITY: usize = 256;
/// First and longest wait between reconnection attempts.
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// Time allowed at shutdown to hand queued records to the client.
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// Time allowed at shutdown to publish `offline` and disconnect.
const GOODBYE_TIME: Duration = Duration::from_secs(3);

/// The MQTT uplink of one gateway.
pub struct MqttUplink {
    options: MqttOptions,
    broker: String,
    topics: Topics,
    gateway: GatewayId,
    site: SiteId,
    clock: Arc<dyn Clock>,
    health: Arc<Health>,
}

impl MqttUplink {
    /// An uplink for `config`'s `[mqtt]` table; nothing is connected yet.
    pub fn new(config: &GatewayConfig, clock: Arc<dyn Clock>, health: Arc<Health>) -> Self {
        let m = &config.mqtt;
        let mut options = MqttOptions::new(m.client_id.clone(), m.host.clone(), m.port);
        options.set_keep_alive(Duration::from_secs(u64::from(m.keep_alive_s)));
        options.set_clean_session(false);
        let mut uplink = Self {
            options,
            broker: format!("{}:{}", m.host, m.port),
            topics: config.topics(),
            gateway: config.gateway.id.clone(),
            site: config.gateway.site.clone(),
            clock,
            health,
        };
        let will = uplink.last_will();
        uplink.options.set_last_will(will);
        uplink
    }

    fn status_topic(&self) -> String {
        self.topics
            .status(self.site.as_str(), self.gateway.as_str())
    }

    fn status_payload(&self, state: GatewayState) -> Vec<u8> {
        let status = self.health.status(state, self.clock.now());
        // A Status has no floats: encoding cannot fail, but never panic on it.
        codec::encode(&status).unwrap_or_default()
    }

    /// The retained `offline` status the broker publishes if we vanish.
    fn last_will(&self) -> LastWill {
        LastWill::new(
            self.status_topic(),
            self.status_payload(GatewayState::Offline),
            QoS::AtLeastOnce,
            true,
        )
    }

    /// Forwards records from `records` until `shutdown`, then says goodbye.
    pub async fn run(self, mut records: mpsc::Receiver<Record>, shutdown: CancellationToken) {
        let (client, eventloop) = AsyncClient::new(self.options.clone(), CLIENT_CAPACITY);
        let this = Arc::new(self);
        let closing = CancellationToken::new();
        let driver = tokio::spawn(
            drive(this.clone(), eventloop, client.clone(), closing.clone()).in_current_span(),
        );

        loop {
            let record = tokio::select! {
                r = records.recv() => r,
                _ = shutdown.cancelled() => None,
            };
            let Some(record) = record else { break };
            tokio::select! {
                r = this.publish(&client, record) => if let Err(e) = r {
                    if driver.is_finished() {
                        error!("the MQTT event loop has ended; no more records can be sent");
                        break;
                    }
                    // rumqttc refused this one record (e.g. its topic); the rest still go.
                    error!("the MQTT client refused a record: {e}");
                },
                _ = shutdown.cancelled() => break,
            }
        }

        // Records already queued were measured: give them a short chance.
        let deadline = Instant::now() + DRAIN_TIME;
        let mut left_behind = 0usize;
        while let Ok(record) = records.try_recv() {
            match tokio::time::timeout_at(deadline, this.publish(&client, record)).await {
                Ok(Ok(())) => {}
                _ => left_behind += 1,
            }
        }
        if left_behind > 0 {
            warn!(
                "{left_behind} queued records were not handed to the MQTT client before shutdown"
            );
        }

        closing.cancel();
        let goodbye = async {
            client
                .publish(
                    this.status_topic(),
                    QoS::AtLeastOnce,
                    true,
                    this.status_payload(GatewayState::Offline),
                )
                .await?;
            client.disconnect().await
        };
        if timeout(GOODBYE_TIME, goodbye).await.is_err() {
            warn!("could not queue the offline status in time; the broker's last will reports it");
        }
        let abort = driver.abort_handle();
        if timeout(GOODBYE_TIME, driver).await.is_err() {
            abort.abort();
            warn!(
                "MQTT broker {} did not take the goodbye in time; its last will marks the \
                 gateway offline",
                this.broker
            );
        }
    }

    async fn publish(
        &self,
        client: &AsyncClient,
        record: Record,
    ) -> Result<(), rumqttc::ClientError> {
        let (topic, payload, what) = match &record {
            Record::Reading(r) => (
                self.topics
                    .reading(self.site.as_str(), self.gateway.as_str(), r.device.as_str()),
                codec::encode(r),
                "reading",
            ),
            Record::Event(e) => (
                self.topics
                    .event(self.site.as_str(), self.gateway.as_str(), e.device.as_str()),
                codec::encode(e),
                "event",
            ),
        };
        match payload {
            Ok(bytes) => client.publish(topic, QoS::AtLeastOnce, false, bytes).await,
            Err(e) => {
                // Only a non-finite value gets here; a profile bug, not an outage.
                error!("dropping a {what} for {topic}: {e}");
                Ok(())
            }
        }
    }
}

/// Polls the event loop: connects, reconnects with backoff, announces
/// `online` on every ConnAck. Ends after the clean disconnect, or on an
/// error once `closing` is set.
async fn drive(
    uplink: Arc<MqttUplink>,
    mut eventloop: EventLoop,
    client: AsyncClient,
    closing: CancellationToken,
) {
    let mut backoff = Backoff::new(RECONNECT_FIRST, RECONNECT_MAX);
    let mut connected = false;
    let broker = uplink.broker.clone();
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                info!(
                    "connected to MQTT broker {broker} as {}",
                    eventloop.mqtt_options.client_id()
                );
                connected = true;
                backoff.reset();
                if !closing.is_cancelled() {
                    let (client, topic) = (client.clone(), uplink.status_topic());
                    let payload = uplink.status_payload(GatewayState::Online);
                    // Not awaited here: the event loop must keep running to
                    // drain the request queue this publish may wait on.
                    tokio::spawn(async move {
                        let _ = client.publish(topic, QoS::AtLeastOnce, true, payload).await;
                    });
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                debug!("disconnected from MQTT broker {broker}");
                break;
            }
            Ok(_) => {}
            Err(ConnectionError::RequestsDone) => break,
            Err(e) => {
                if closing.is_cancelled() {
                    break;
                }
                let delay = backoff.next_delay();
                let why = reason(&e);
                if connected {
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
                connected = false;
                // The will's timestamp says when the gateway (re)connected.
                eventloop.mqtt_options.set_last_will(uplink.last_will());
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = closing.cancelled() => break,
                }
            }
        }
    }
}

/// A connection error in words for the log.
fn reason(e: &ConnectionError) -> String {
    match e {
        ConnectionError::Io(io) => io_reason(io),
        ConnectionError::MqttState(StateError::Io(io)) => io_reason(io),
        ConnectionError::MqttState(StateError::ConnectionAborted) => {
            "the broker closed the connection".into()
        }
        ConnectionError::MqttState(StateError::AwaitPingResp) => {
            "the broker stopped answering pings".into()
        }
        ConnectionError::NetworkTimeout => "no answer to the connection attempt".into(),
        ConnectionError::FlushTimeout => "sending timed out".into(),
        ConnectionError::ConnectionRefused(code) => {
            format!("the broker refused the connection: {code:?}")
        }
        other => other.to_string(),
    }
}
