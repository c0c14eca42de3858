//! Readers that publish JSON on the building's local broker.
//!
//! Plate cameras and networked RFID readers publish a message per read to
//! a broker on the LAN — usually a Mosquitto on the gateway itself — and
//! that broker is **not** the uplink broker: raw plates must never cross
//! the building's boundary. One client subscribes to every reader's topic
//! filter (again after each reconnect, as the session is clean), maps each
//! message with the reader's [`JsonMapping`](super::mapping::JsonMapping)
//! and hands it to the reader's [`SightingSink`].

use super::mapping::JsonMapping;
use super::SightingSink;
use crate::net::{words, Backoff};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How often readers are checked for silence (`offline_after_silence_s`).
pub const SILENCE_CHECK: Duration = Duration::from_secs(1);

/// The `[local_mqtt]` table: the LAN broker the readers publish to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMqttConfig {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Client id on that broker.
    pub client_id: String,
}

/// One reader on the local broker: its topic filter, mapping and sink.
pub struct MqttReader {
    /// Topic filter the reader publishes on.
    pub topic: String,
    /// How its JSON maps to a sighting.
    pub mapping: JsonMapping,
    /// Where its sightings go.
    pub sink: SightingSink,
}

/// Subscribes to every reader's topic on `broker` and feeds their sinks
/// until `shutdown`. Never fails: an unreachable broker is retried with
/// backoff, and said once per outage.
pub async fn run(
    broker: LocalMqttConfig,
    mut readers: Vec<MqttReader>,
    shutdown: CancellationToken,
) {
    let mut options = MqttOptions::new(&broker.client_id, &broker.host, broker.port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(true);
    options.set_max_packet_size(
        super::mapping::MAX_MESSAGE_BYTES * 4,
        super::mapping::MAX_MESSAGE_BYTES * 4,
    );
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    let mut down_since_logged = false;
    let mut silence = tokio::time::interval(SILENCE_CHECK);
    silence.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            e = eventloop.poll() => e,
            _ = silence.tick() => {
                for r in &mut readers {
                    if !r.sink.check_silence(&shutdown).await {
                        return;
                    }
                }
                continue;
            }
            _ = shutdown.cancelled() => break,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                down_since_logged = false;
                info!(
                    "connected to the readers' broker {}:{}; subscribing to {} reader topic{}",
                    broker.host,
                    broker.port,
                    readers.len(),
                    if readers.len() == 1 { "" } else { "s" }
                );
                for r in &mut readers {
                    r.sink.set_online(true);
                    r.sink.listening();
                    if let Err(e) = client.try_subscribe(&r.topic, QoS::AtLeastOnce) {
                        warn!("could not subscribe to {}: {e}", r.topic);
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                for r in readers
                    .iter_mut()
                    .filter(|r| rumqttc::matches(&p.topic, &r.topic))
                {
                    if !r.sink.heard(&shutdown).await {
                        return;
                    }
                    match r.mapping.apply(&p.payload) {
                        Ok(raw) => {
                            if !r.sink.sighting(raw, &shutdown).await {
                                return;
                            }
                        }
                        Err(e) => r.sink.malformed(&format!("topic {}", p.topic), &e),
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                for r in &mut readers {
                    r.sink.set_online(false);
                }
                let delay = backoff.next_delay();
                if !down_since_logged {
                    down_since_logged = true;
                    warn!(
                        "the readers' broker {}:{} is unreachable ({e}); sightings from MQTT \
                         readers wait until it is back; retrying, at most every {}",
                        broker.host,
                        broker.port,
                        words(backoff.max())
                    );
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }
    }
    let _ = client.try_disconnect();
    for r in &mut readers {
        r.sink.set_online(false);
    }
}
