//! The checks of `selftest` that talk to something: each device answers one
//! poll, the broker takes a QoS 1 publish, InfluxDB stores a line. They use
//! the same device drivers, TLS and credential set-up as `run`, and never
//! write to a device.

use super::Check;
use crate::cli::reach::{Reached, Wires};
use crate::config::{DeviceConfig, GatewayConfig};
use crate::devices::PollOutcome;
use crate::net::words;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Polls every configured device once, one after the other (devices on one
/// line cannot be asked at once anyway), each within `limit`.
pub(super) async fn devices(config: &GatewayConfig, limit: Duration) -> Vec<Check> {
    let mut wires = Wires::new(config, CancellationToken::new());
    let mut out = Vec::new();
    for d in &config.devices {
        let name = format!("device {}", d.id);
        let result = match wires.open(d, limit) {
            Ok(device) => poll_once(device, limit).await,
            Err(why) => Err(why),
        };
        out.push(match result {
            Ok(detail) => Check::pass(name, format!("{} {detail}", where_(d))),
            Err(why) => Check::fail(name, format!("{}: {why}", where_(d))),
        });
    }
    out
}

fn where_(d: &DeviceConfig) -> String {
    format!("({}, {})", d.profile.model, d.transport.describe())
}

/// One poll of `device` within `limit`: what it answered, or why not.
async fn poll_once(mut device: Reached, limit: Duration) -> Result<String, String> {
    let started = Instant::now();
    let outcome = tokio::time::timeout(limit, device.poll()).await;
    let took = started.elapsed();
    device.close().await;
    match outcome {
        Err(_) => Err(format!("no answer within {}", words(limit))),
        Ok(PollOutcome::Unreachable(why)) => Err(format!("did not answer: {why}")),
        Ok(PollOutcome::Answered {
            measurements,
            errors,
        }) => {
            let values: usize = measurements.iter().map(|m| m.values.len()).sum();
            match errors.first() {
                None => Ok(format!(
                    "answered {values} values in {} ms",
                    took.as_millis()
                )),
                Some(first) => Err(format!(
                    "answered, but with {} problem(s), first: {first}",
                    errors.len()
                )),
            }
        }
    }
}

/// The topic `selftest` publishes on: `…/selftest` beside the gateway's
/// status topic, which the shipped ACL lets the gateway write (a test
/// message on the retained status topic would replace the real status).
pub fn selftest_topic(config: &GatewayConfig) -> String {
    let g = &config.gateway;
    let status = config.topics().status(g.site.as_str(), g.id.as_str());
    let base = status.strip_suffix("/status").unwrap_or(&status);
    format!("{base}/selftest")
}

/// Connects with the configured TLS and credentials (under its own client
/// id, so a running gateway keeps its session) and publishes one message at
/// QoS 1: passes on its PUBACK.
pub(super) async fn broker(config: &GatewayConfig, limit: Duration) -> Check {
    let m = &config.mqtt;
    let name = "mqtt";
    let broker = format!("broker {}:{}", m.host, m.port);
    let mut options = MqttOptions::new(format!("{}-selftest", m.client_id), &m.host, m.port);
    options.set_keep_alive(Duration::from_secs(u64::from(m.keep_alive_s.max(5))));
    options.set_clean_session(true);
    if let Err(e) = crate::uplink::mqtt::configure_security(&mut options, m) {
        return Check::fail(name, format!("{broker}: {e}"));
    }
    let topic = selftest_topic(config);
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    let exchange = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let payload = format!(
                        "{{\"selftest\":true,\"gateway\":\"{}\"}}",
                        config.gateway.id
                    );
                    if let Err(e) = client
                        .publish(&topic, QoS::AtLeastOnce, false, payload)
                        .await
                    {
                        return Err(format!("cannot queue the test publish: {e}"));
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => return Ok(()),
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    return Err("disconnected".to_owned());
                }
                Ok(_) => {}
                Err(e) => return Err(crate::uplink::mqtt::reason(&e)),
            }
        }
    };
    let result = tokio::time::timeout(limit, exchange).await;
    let _ = client.try_disconnect();
    let security = match (&m.tls, &m.credentials) {
        (None, None) => "plain TCP, anonymous".to_owned(),
        (None, Some(c)) => format!("plain TCP as {}", c.username),
        (Some(_), None) => "TLS".to_owned(),
        (Some(_), Some(c)) => format!("TLS as {}", c.username),
    };
    match result {
        Ok(Ok(())) => Check::pass(
            name,
            format!("{broker} ({security}) acknowledged a QoS 1 publish on {topic}"),
        ),
        Ok(Err(why)) => Check::fail(name, format!("{broker} ({security}): {why}")),
        Err(_) => Check::fail(
            name,
            format!(
                "{broker} ({security}): no acknowledgement within {}",
                words(limit)
            ),
        ),
    }
}

/// Writes one line (`gridwatch_selftest,gateway=… ok=1i`) with the
/// configured InfluxDB settings; SKIP without `[influx]`.
pub(super) async fn influx(config: &GatewayConfig, limit: Duration) -> Check {
    let name = "influx";
    let Some(i) = &config.influx else {
        return Check::skip(name, "no [influx] uplink is configured");
    };
    // The uplink reads from an outbox; the test write needs none, so a
    // throw-away one stands in.
    let scratch = match tempfile::tempdir() {
        Ok(t) => t,
        Err(e) => return Check::fail(name, format!("cannot make a scratch folder: {e}")),
    };
    let outbox = match crate::outbox::Outbox::open(
        config.outbox.options(scratch.path().to_owned()),
        &[crate::uplink::influx::NAME],
    ) {
        Ok((o, _)) => crate::outbox::writer::OutboxHandle::new(o),
        Err(e) => return Check::fail(name, format!("cannot make a scratch outbox: {e}")),
    };
    let uplink = match crate::uplink::influx::InfluxUplink::new(i, outbox, scratch.path()) {
        Ok(u) => u,
        Err(e) => return Check::fail(name, format!("InfluxDB {}: {e}", i.url)),
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let line = format!(
        "gridwatch_selftest,gateway={},site={} ok=1i {now_ms}",
        config.gateway.id, config.gateway.site
    );
    match tokio::time::timeout(limit, uplink.test_write(&line)).await {
        Ok(Ok(())) => Check::pass(name, format!("InfluxDB {} stored a test line", i.url)),
        Ok(Err(why)) => Check::fail(name, format!("InfluxDB {}: {why}", i.url)),
        Err(_) => Check::fail(
            name,
            format!("InfluxDB {}: no answer within {}", i.url, words(limit)),
        ),
    }
}
