//! A plate camera or networked RFID reader that publishes one JSON message
//! per read to an MQTT broker, in the shape many vendors use:
//!
//! ```json
//! {"device":"gate-cam","ts":"2026-03-01T22:15:03.120Z","result":{"plate":"粤B12345","dir":"0"}}
//! ```
//! `dir` is the vendor's code: `"0"` entering, `"1"` leaving. The gateway
//! maps it with `identity = "/result/plate"`, `direction = "/result/dir"`,
//! `direction_map = { "0" = "in", "1" = "out" }`, `time = "/ts"`,
//! `time_format = "rfc3339"` (see `docs/readers.md`).

use gridwatch_gateway::readers::Direction;
use gridwatch_telemetry::Timestamp;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Ways the simulated reader misbehaves on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttFault {
    /// A message cut off in the middle (not JSON).
    MalformedJson,
    /// A message without the plate field.
    MissingIdentity,
    /// A direction code the mapping does not know.
    UnknownDirection,
    /// A message that is JSON but not an object at all.
    NotAnObject,
}

/// The simulated reader, connected to a broker.
pub struct MqttReaderSim {
    device: String,
    topic: String,
    client: AsyncClient,
    connected: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl MqttReaderSim {
    /// Connects to `host:port` as `device`, publishing on `topic`; returns
    /// once the broker accepted the connection (at most 10 s).
    pub async fn connect(host: &str, port: u16, device: &str, topic: &str) -> anyhow::Result<Self> {
        let mut options = MqttOptions::new(format!("sim-{device}"), host, port);
        options.set_keep_alive(Duration::from_secs(10));
        let (client, mut eventloop) = AsyncClient::new(options, 256);
        let (tx, mut connected) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = tx.send(true);
                    }
                    Ok(_) => {}
                    Err(_) => {
                        let _ = tx.send(false);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), connected.wait_for(|c| *c))
            .await
            .map_err(|_| {
                anyhow::anyhow!("broker {host}:{port} did not accept the reader within 10 s")
            })??;
        Ok(Self {
            device: device.to_owned(),
            topic: topic.to_owned(),
            client,
            connected,
            task,
        })
    }

    /// The message for a read of `plate` at `ts`.
    pub fn message(&self, plate: &str, direction: Option<Direction>, ts: Timestamp) -> Vec<u8> {
        let mut result = serde_json::json!({ "plate": plate });
        if let Some(d) = direction {
            result["dir"] = match d {
                Direction::In => "0".into(),
                Direction::Out => "1".into(),
            };
        }
        serde_json::to_vec(&serde_json::json!({
            "device": self.device,
            "ts": ts.to_rfc3339(),
            "result": result,
        }))
        .unwrap_or_default()
    }

    /// Publishes a read of `plate` (QoS 1).
    pub async fn read(
        &self,
        plate: &str,
        direction: Option<Direction>,
        ts: Timestamp,
    ) -> anyhow::Result<()> {
        self.publish(self.message(plate, direction, ts)).await
    }

    /// Publishes a message that is wrong in the way `fault` says.
    pub async fn inject(&self, fault: MqttFault, ts: Timestamp) -> anyhow::Result<()> {
        let good = self.message("FAULTY1", Some(Direction::In), ts);
        let payload = match fault {
            MqttFault::MalformedJson => good[..good.len() / 2].to_vec(),
            MqttFault::MissingIdentity => serde_json::to_vec(&serde_json::json!({
                "device": self.device, "ts": ts.to_rfc3339(), "result": {"dir": "0"}
            }))?,
            MqttFault::UnknownDirection => serde_json::to_vec(&serde_json::json!({
                "device": self.device, "ts": ts.to_rfc3339(), "result": {"plate": "FAULTY2", "dir": "9"}
            }))?,
            MqttFault::NotAnObject => b"[1,2,3]".to_vec(),
        };
        self.publish(payload).await
    }

    async fn publish(&self, payload: Vec<u8>) -> anyhow::Result<()> {
        self.client
            .publish(&self.topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| anyhow::anyhow!("reader {} could not publish: {e}", self.device))
    }

    /// Whether the broker connection is up.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// The reader disappears (loses power): it disconnects and stops.
    pub async fn disappear(self) {
        let _ = self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.task.abort();
    }
}

impl Drop for MqttReaderSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}
