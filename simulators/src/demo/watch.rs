//! The demo's own MQTT subscription: what the console shows has really
//! crossed the broker.

use anyhow::Context as _;
use gridwatch_telemetry::topic::{TopicKind, Topics};
use gridwatch_telemetry::{codec, Alert, Event, Reading, Status};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use std::time::Duration;
use tokio::sync::mpsc;

/// A decoded message of the demo's subscription.
pub(crate) enum Seen {
    Reading(Box<Reading>),
    Event(Event),
    Status(Status),
    Alert(Box<Alert>),
}

/// Subscribes to everything the demo shows and forwards it, decoded.
pub(crate) async fn watch(
    port: u16,
    tx: mpsc::Sender<Seen>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut opts = MqttOptions::new("gridwatch-demo-console", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(10));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let topics = Topics::default();
    for filter in [
        "alerts/#".to_string(),
        topics.all_readings(),
        topics.all_events(),
        topics.all_status(),
    ] {
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .context("subscribing the demo console")?;
    }
    Ok(tokio::spawn(async move {
        let _client = client;
        loop {
            match eventloop.poll().await {
                Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                    let seen = if p.topic.starts_with("alerts/") {
                        codec::decode::<Alert>(&p.payload)
                            .ok()
                            .map(|a| Seen::Alert(Box::new(a)))
                    } else {
                        match topics.parse(&p.topic).map(|t| t.kind) {
                            Some(TopicKind::Reading) => codec::decode::<Reading>(&p.payload)
                                .ok()
                                .map(|r| Seen::Reading(Box::new(r))),
                            Some(TopicKind::Event) => {
                                codec::decode::<Event>(&p.payload).ok().map(Seen::Event)
                            }
                            Some(TopicKind::Status) => {
                                codec::decode::<Status>(&p.payload).ok().map(Seen::Status)
                            }
                            _ => None,
                        }
                    };
                    if let Some(seen) = seen {
                        if tx.send(seen).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }))
}
