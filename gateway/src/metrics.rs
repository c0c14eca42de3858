//! The Prometheus metrics endpoint (`[metrics]`, off by default, loopback
//! by default): polls, failures and latency per device, outbox depth and
//! drops, and how far each uplink is behind, as Prometheus text on
//! `GET /metrics`.
//!
//! [`render`] is pure (figures in, text out); [`serve`] is a few lines of
//! HTTP/1.1 over a socket, enough for a scraper and `curl`, so the gateway
//! needs no web framework. Each connection gets one answer and is closed.

use crate::outbox::writer::OutboxHandle;
use crate::status::{DeviceFigures, Health, UplinkFigures};
use gridwatch_telemetry::{Clock, GatewayState};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Bytes of a request read at most (the request line and headers).
const REQUEST_MAX_BYTES: usize = 8 * 1024;
/// Time a client has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything one scrape shows.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Per device, by id.
    pub devices: BTreeMap<String, DeviceFigures>,
    /// Per uplink, by name.
    pub uplinks: BTreeMap<&'static str, UplinkFigures>,
    /// Records per uplink not yet delivered by it (readable minus its cursor).
    pub lag: BTreeMap<&'static str, u64>,
    /// Records waiting for some uplink.
    pub outbox_pending: u64,
    /// Records dropped at the outbox's cap since start.
    pub outbox_dropped: u64,
    /// Records lost to a full disk since start.
    pub outbox_full_dropped: u64,
}

/// The Prometheus text of `f`.
pub fn render(f: &Figures) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let per_device = |value: &dyn Fn(&DeviceFigures) -> f64| {
        f.devices
            .iter()
            .map(|(id, d)| (format!("{{device=\"{}\"}}", escape(id)), value(d)))
            .collect::<Vec<_>>()
    };
    family(
        "gridwatch_device_polls_total",
        "counter",
        "Polls attempted per device.",
        per_device(&|d| d.polls as f64),
    );
    family(
        "gridwatch_device_poll_errors_total",
        "counter",
        "Polls that gave no values (no answer, or only exceptions).",
        per_device(&|d| d.unanswered as f64),
    );
    family(
        "gridwatch_device_poll_partial_total",
        "counter",
        "Polls that gave values and an error for some registers.",
        per_device(&|d| d.partial as f64),
    );
    let mut latency = Vec::new();
    for (id, d) in &f.devices {
        let id = escape(id);
        let answered = d.polls.saturating_sub(d.unanswered);
        latency.push((
            format!("_sum{{device=\"{id}\"}}"),
            d.latency_ms_sum as f64 / 1000.0,
        ));
        latency.push((format!("_count{{device=\"{id}\"}}"), answered as f64));
    }
    family(
        "gridwatch_device_poll_duration_seconds",
        "summary",
        "Time answered polls took.",
        latency,
    );
    family(
        "gridwatch_device_up",
        "gauge",
        "1 while the device answers, 0 once it was reported offline or never answered.",
        per_device(&|d| f64::from(u8::from(d.online))),
    );
    family(
        "gridwatch_outbox_pending_records",
        "gauge",
        "Records in the outbox not yet delivered to every uplink.",
        vec![(String::new(), f.outbox_pending as f64)],
    );
    family(
        "gridwatch_outbox_dropped_records_total",
        "counter",
        "Records the outbox dropped since start (cap or full disk): readings that never arrive.",
        vec![(String::new(), f.outbox_dropped as f64)],
    );
    family(
        "gridwatch_outbox_full_dropped_records_total",
        "counter",
        "The part of the drops lost because the disk was full.",
        vec![(String::new(), f.outbox_full_dropped as f64)],
    );
    let per_uplink = |value: &dyn Fn(&UplinkFigures) -> f64| {
        f.uplinks
            .iter()
            .map(|(name, u)| (format!("{{uplink=\"{name}\"}}"), value(u)))
            .collect::<Vec<_>>()
    };
    family(
        "gridwatch_uplink_up",
        "gauge",
        "1 while the uplink is connected (MQTT) or its last write went through (InfluxDB).",
        per_uplink(&|u| f64::from(u8::from(u.up))),
    );
    family(
        "gridwatch_uplink_failures_total",
        "counter",
        "Connection attempts or writes of the uplink that failed.",
        per_uplink(&|u| u.failures as f64),
    );
    family(
        "gridwatch_uplink_lag_records",
        "gauge",
        "Records in the outbox the uplink has not delivered yet.",
        f.lag
            .iter()
            .map(|(name, n)| (format!("{{uplink=\"{name}\"}}"), *n as f64))
            .collect(),
    );
    out
}

/// A label value with `\`, `"` and line ends escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What a scrape reads from.
#[derive(Clone)]
pub struct Sources {
    /// The counters of the running gateway.
    pub health: Arc<Health>,
    /// The outbox, for each uplink's lag.
    pub outbox: Arc<OutboxHandle>,
    /// The uplinks delivering from it, by outbox name.
    pub uplinks: Vec<&'static str>,
    /// For the status the outbox figures come from.
    pub clock: Arc<dyn Clock>,
}

impl Sources {
    /// The figures now.
    pub fn figures(&self) -> Figures {
        let status = self.health.status(GatewayState::Online, self.clock.now());
        let lag = {
            let outbox = self.outbox.lock();
            let readable = outbox.readable();
            self.uplinks
                .iter()
                .map(|&u| (u, readable.saturating_sub(outbox.cursor(u).unwrap_or(0))))
                .collect()
        };
        Figures {
            devices: self.health.device_figures(),
            uplinks: self.health.uplink_figures(),
            lag,
            outbox_pending: status.outbox_pending,
            outbox_dropped: status
                .outbox_dropped
                .saturating_sub(status.outbox_full_dropped),
            outbox_full_dropped: status.outbox_full_dropped,
        }
    }
}

/// Binds `listen` and answers scrapes until `shutdown`. A port that cannot
/// be bound is logged and the gateway goes on without metrics.
pub async fn serve(listen: SocketAddr, sources: Sources, shutdown: CancellationToken) {
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            warn!("cannot serve metrics on {listen} ({e}); the gateway runs without them");
            return;
        }
    };
    info!("metrics on http://{listen}/metrics");
    loop {
        let (mut stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!("metrics: could not accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let sources = sources.clone();
        tokio::spawn(async move {
            let path = match tokio::time::timeout(REQUEST_TIMEOUT, request_path(&mut stream)).await
            {
                Ok(Ok(Some(p))) => p,
                _ => return,
            };
            let (status, body) = if path == "/metrics" || path.starts_with("/metrics?") {
                ("200 OK", render(&sources.figures()))
            } else {
                ("404 Not Found", "the metrics are at /metrics\n".to_owned())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// Reads a request's head and returns the path of a `GET`; `None` for
/// anything else.
async fn request_path(stream: &mut tokio::net::TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < REQUEST_MAX_BYTES {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut words = head.lines().next().unwrap_or_default().split(' ');
    Ok(match (words.next(), words.next()) {
        (Some("GET"), Some(path)) => Some(path.to_owned()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_render_as_prometheus_text() {
        let mut f = Figures::default();
        f.devices.insert(
            "meter-3".into(),
            DeviceFigures {
                polls: 10,
                unanswered: 2,
                partial: 1,
                latency_ms_sum: 400,
                answered: true,
                online: true,
            },
        );
        f.uplinks.insert(
            "mqtt",
            UplinkFigures {
                up: true,
                ever_up: true,
                failures: 3,
            },
        );
        f.lag.insert("mqtt", 7);
        f.outbox_pending = 7;
        let text = render(&f);
        for line in [
            "gridwatch_device_polls_total{device=\"meter-3\"} 10",
            "gridwatch_device_poll_errors_total{device=\"meter-3\"} 2",
            "gridwatch_device_poll_duration_seconds_sum{device=\"meter-3\"} 0.4",
            "gridwatch_device_poll_duration_seconds_count{device=\"meter-3\"} 8",
            "gridwatch_device_up{device=\"meter-3\"} 1",
            "gridwatch_outbox_pending_records 7",
            "gridwatch_uplink_failures_total{uplink=\"mqtt\"} 3",
            "gridwatch_uplink_lag_records{uplink=\"mqtt\"} 7",
            "# TYPE gridwatch_device_poll_duration_seconds summary",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert_eq!(escape("a\"b\\"), "a\\\"b\\\\");
    }
}
