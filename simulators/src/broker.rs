//! The embedded MQTT broker (rumqttd) that lets the demo and the in-process
//! tests run the real MQTT path without anything installed.
//!
//! rumqttd cannot report the port it bound and cannot be stopped, so the
//! broker takes a free loopback port found by binding port 0 first, and its
//! threads live until the process exits. That suits a demo and a test binary;
//! a deployment uses Mosquitto or EMQX instead.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why the embedded broker did not come up.
#[derive(Debug, Error)]
pub enum BrokerError {
    /// No free port on loopback, or the port could not be probed.
    #[error("could not find a free loopback port for the embedded MQTT broker: {0}")]
    Port(#[source] std::io::Error),
    /// rumqttd rejected the configuration built here (a bug).
    #[error("embedded MQTT broker configuration rejected: {0}")]
    Config(String),
    /// The broker did not accept connections in time.
    #[error("embedded MQTT broker did not start listening on {0} within 10 s")]
    NotListening(SocketAddr),
}

/// A running embedded broker on 127.0.0.1.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts a broker on a free loopback port and waits until it accepts
    /// connections.
    pub fn start() -> Result<Self, BrokerError> {
        let probe = TcpListener::bind("127.0.0.1:0").map_err(BrokerError::Port)?;
        let addr = probe.local_addr().map_err(BrokerError::Port)?;
        drop(probe);
        let text = format!(
            r#"
id = 0
[router]
id = 0
max_connections = 1000
max_outgoing_packet_count = 200
max_segment_size = 10485760
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "{addr}"
next_connection_delay_ms = 1
[v4.1.connections]
connection_timeout_ms = 60000
max_payload_size = 262144
max_inflight_count = 200
dynamic_filters = true
"#
        );
        let config: rumqttd::Config =
            toml::from_str(&text).map_err(|e| BrokerError::Config(e.to_string()))?;
        let mut broker = rumqttd::Broker::new(config);
        std::thread::Builder::new()
            .name("embedded-mqtt".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!("embedded MQTT broker stopped: {e}");
                }
            })
            .map_err(BrokerError::Port)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(Self { addr });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(BrokerError::NotListening(addr))
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}
