//! The one MQTT connection analytics keeps: its settings, and how long to
//! wait before trying again after the broker went away.
//!
//! Readings come in and alerts go out over the same connection, so there is
//! one `[mqtt]` section and one client. The event loop that drives it lives in
//! [`crate::service`]; this module only builds what that loop needs.

use crate::toml_file::FieldError;
use gridwatch_telemetry::ids::validate_id;
use gridwatch_telemetry::secret::{read_secret_file, SecretError};
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest packet MQTT 3.1.1 can carry (the remaining-length field's
/// maximum), the limit analytics reads incoming packets up to.
pub const MQTT_MAX_PACKET_BYTES: usize = 268_435_455;

/// The `[mqtt]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker TCP port.
    pub port: u16,
    /// MQTT client id. With `clean_session = false` the broker keeps this
    /// id's subscription and queues readings while analytics is away, so two
    /// instances must never share one (they would disconnect each other).
    pub client_id: String,
    /// Topic prefix the gateways publish under (`{prefix}/{site}/…`).
    pub topic_prefix: String,
    /// Keep-alive interval; the broker drops the connection after 1.5 × this
    /// without traffic. 0 turns keep-alive off.
    pub keep_alive_s: u64,
    /// `false` asks the broker for a persistent session: it remembers the
    /// subscription and queues QoS 1 readings while analytics restarts, and
    /// rumqttc re-sends un-acknowledged alerts when the session resumes.
    pub clean_session: bool,
    /// First wait before reconnecting; doubles after every failure.
    pub reconnect_min_ms: u64,
    /// Longest wait between reconnection attempts.
    pub reconnect_max_ms: u64,
    /// Largest MQTT packet analytics sends (an alert with its evidence).
    /// Incoming packets are read up to MQTT's own limit whatever this says:
    /// rumqttc treats a larger one as a protocol error and drops the
    /// connection, and the broker would redeliver the same message on every
    /// reconnect. Oversized messages are refused after reading instead
    /// (`[ingest] max_message_bytes`); the broker's `message_size_limit`
    /// keeps them from being sent at all.
    pub max_packet_bytes: usize,
    /// Alerts waiting for the broker (disconnected, or not yet acknowledged)
    /// beyond this many are dropped oldest first, counted and logged.
    pub max_queued_alerts: usize,
    /// On shutdown, how long to keep the connection up so that alerts already
    /// raised reach the broker.
    pub shutdown_flush_ms: u64,
    /// PEM file of the CA(s) that signed the broker's certificate; setting it
    /// turns TLS on (Mosquitto's port 8883 in the shipped config).
    pub ca_file: Option<PathBuf>,
    /// PEM certificate of analytics, for brokers that ask clients for one.
    pub client_cert_file: Option<PathBuf>,
    /// PEM key of `client_cert_file`, readable by analytics only (0600).
    pub client_key_file: Option<PathBuf>,
    /// Broker user name (the shipped ACL gives `analytics` `gw/#` and `alerts/#`).
    pub username: Option<String>,
    /// File holding the password on its first line, readable by analytics
    /// only (0600); the password never appears in the config itself.
    pub password_file: Option<PathBuf>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: "gridwatch-analytics".into(),
            topic_prefix: gridwatch_telemetry::topic::DEFAULT_PREFIX.into(),
            keep_alive_s: 30,
            clean_session: false,
            reconnect_min_ms: 500,
            reconnect_max_ms: 30_000,
            max_packet_bytes: 1024 * 1024,
            max_queued_alerts: 10_000,
            shutdown_flush_ms: 2_000,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            username: None,
            password_file: None,
        }
    }
}

impl MqttConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.host.trim().is_empty() {
            return Err(FieldError::new(
                "host",
                "is empty; give the broker's host name or address",
            ));
        }
        if self.port == 0 {
            return Err(FieldError::new(
                "port",
                "is 0; give the broker's TCP port (usually 1883)",
            ));
        }
        validate_id(&self.client_id).map_err(|m| FieldError::new("client_id", m))?;
        validate_prefix(&self.topic_prefix).map_err(|m| FieldError::new("topic_prefix", m))?;
        if self.keep_alive_s > u64::from(u16::MAX) {
            return Err(FieldError::new(
                "keep_alive_s",
                format!("is {}; MQTT allows at most {}", self.keep_alive_s, u16::MAX),
            ));
        }
        if self.reconnect_min_ms == 0 {
            return Err(FieldError::new(
                "reconnect_min_ms",
                "is 0; a reconnect loop without a pause would flood the broker",
            ));
        }
        if self.reconnect_max_ms < self.reconnect_min_ms {
            return Err(FieldError::new(
                "reconnect_max_ms",
                format!(
                    "is {} ms, shorter than reconnect_min_ms ({} ms)",
                    self.reconnect_max_ms, self.reconnect_min_ms
                ),
            ));
        }
        if self.max_packet_bytes < 4096 {
            return Err(FieldError::new(
                "max_packet_bytes",
                format!(
                    "is {}; alerts with evidence need at least 4096",
                    self.max_packet_bytes
                ),
            ));
        }
        if self.max_queued_alerts == 0 {
            return Err(FieldError::new(
                "max_queued_alerts",
                "is 0; at least one alert must be able to wait for the broker",
            ));
        }
        self.validate_security()
    }

    /// TLS and credentials belong together: a client certificate needs its
    /// key and TLS, a user name needs its password file, and a password goes
    /// over plain TCP only to a broker on this host.
    fn validate_security(&self) -> Result<(), FieldError> {
        match (&self.client_cert_file, &self.client_key_file) {
            (Some(_), None) => {
                return Err(FieldError::new(
                    "client_cert_file",
                    "a client certificate needs its key: add client_key_file",
                ))
            }
            (None, Some(_)) => {
                return Err(FieldError::new(
                    "client_key_file",
                    "a client key needs its certificate: add client_cert_file",
                ))
            }
            (Some(_), Some(_)) if self.ca_file.is_none() => {
                return Err(FieldError::new(
                    "client_cert_file",
                    "client certificates need TLS: add ca_file (the CA that signed the broker's certificate)",
                ))
            }
            _ => {}
        }
        match (&self.username, &self.password_file) {
            (Some(u), Some(_)) => {
                if u.is_empty() {
                    return Err(FieldError::new("username", "is empty"));
                }
                if self.ca_file.is_none() && !is_loopback(&self.host) {
                    return Err(FieldError::new(
                        "password_file",
                        format!(
                            "a password is sent over plain TCP only to this host, not to {}: \
                             add ca_file to use TLS",
                            self.host
                        ),
                    ));
                }
                Ok(())
            }
            (Some(_), None) => Err(FieldError::new(
                "username",
                "a user name needs password_file (the password stays out of this file)",
            )),
            (None, Some(_)) => Err(FieldError::new(
                "password_file",
                "a password needs a username",
            )),
            (None, None) => Ok(()),
        }
    }

    /// The broker as `host:port`, for log lines.
    pub fn broker(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// rumqttc's options for this config. Reads the TLS and password files,
    /// so `check` and `run` refuse a missing, loose or empty one before
    /// anything connects.
    pub fn options(&self) -> Result<MqttOptions, SecretError> {
        let mut o = MqttOptions::new(self.client_id.clone(), self.host.clone(), self.port);
        o.set_keep_alive(Duration::from_secs(self.keep_alive_s))
            .set_clean_session(self.clean_session)
            .set_max_packet_size(MQTT_MAX_PACKET_BYTES, self.max_packet_bytes);
        if let Some(ca_file) = &self.ca_file {
            // rustls is built with two crypto back ends here (through
            // rumqttc and lettre), so it cannot pick one itself; the gateway
            // makes the same choice. Installing twice is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let ca = read("the MQTT CA file", ca_file)?;
            let client_auth = match (&self.client_cert_file, &self.client_key_file) {
                (Some(cert), Some(key)) => {
                    gridwatch_telemetry::secret::check_private("the MQTT client key", key)?;
                    Some((
                        read("the MQTT client certificate", cert)?,
                        read("the MQTT client key", key)?,
                    ))
                }
                _ => None,
            };
            o.set_transport(Transport::Tls(TlsConfiguration::Simple {
                ca,
                alpn: None,
                client_auth,
            }));
        }
        if let (Some(user), Some(file)) = (&self.username, &self.password_file) {
            o.set_credentials(
                user.clone(),
                read_secret_file("the MQTT password file", file)?,
            );
        }
        Ok(o)
    }
}

/// Reads a whole file; the error names it and what it is for.
fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, SecretError> {
    std::fs::read(path).map_err(|source| SecretError::Unreadable {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Whether `host` is this machine, where a plain-TCP password cannot be
/// overheard on the network.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

/// A topic prefix may have several levels (`city/gw`) but no wildcards and no
/// empty level, or the subscription filter built from it would match other
/// streams or nothing.
fn validate_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Err("is empty; the default is \"gw\"".into());
    }
    for level in prefix.split('/') {
        validate_id(level).map_err(|m| format!("level {level:?} {m}"))?;
    }
    Ok(())
}

/// Exponential backoff between reconnection attempts: a broker restart is
/// retried quickly, a long outage does not fill the log.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `min`, doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
        }
    }

    /// The backoff for a config's reconnect settings.
    pub fn for_config(c: &MqttConfig) -> Self {
        Self::new(
            Duration::from_millis(c.reconnect_min_ms),
            Duration::from_millis(c.reconnect_max_ms),
        )
    }

    /// How long to wait now; the following wait will be twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// Back to the shortest wait, after a successful connection.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_limit_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let waits: Vec<u128> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
    }

    #[test]
    fn prefixes_with_wildcards_are_refused() {
        assert!(validate_prefix("gw").is_ok());
        assert!(validate_prefix("city/gw").is_ok());
        assert!(validate_prefix("gw/#").is_err());
        assert!(validate_prefix("gw/").is_err());
        assert!(validate_prefix("").is_err());
    }

    #[test]
    fn defaults_are_valid() {
        assert!(MqttConfig::default().validate().is_ok());
    }

    fn with(f: impl FnOnce(&mut MqttConfig)) -> Result<(), FieldError> {
        let mut c = MqttConfig::default();
        f(&mut c);
        c.validate()
    }

    #[test]
    fn a_password_goes_over_plain_tcp_only_to_this_host() {
        let creds = |c: &mut MqttConfig| {
            c.username = Some("analytics".into());
            c.password_file = Some("pw".into());
        };
        assert!(with(creds).is_ok());
        let far = with(|c| {
            creds(c);
            c.host = "broker.example".into();
        })
        .unwrap_err();
        assert_eq!(far.path.to_string(), "password_file");
        assert!(with(|c| {
            creds(c);
            c.host = "broker.example".into();
            c.ca_file = Some("ca.pem".into());
        })
        .is_ok());
    }

    #[test]
    fn half_credentials_and_certificates_are_refused() {
        let e = with(|c| c.username = Some("analytics".into())).unwrap_err();
        assert_eq!(e.path.to_string(), "username");
        let e = with(|c| c.password_file = Some("pw".into())).unwrap_err();
        assert_eq!(e.path.to_string(), "password_file");
        let e = with(|c| {
            c.ca_file = Some("ca.pem".into());
            c.client_cert_file = Some("c.pem".into());
        })
        .unwrap_err();
        assert_eq!(e.path.to_string(), "client_cert_file");
        let e = with(|c| {
            c.client_cert_file = Some("c.pem".into());
            c.client_key_file = Some("k.pem".into());
        })
        .unwrap_err();
        assert!(e.message.contains("ca_file"), "{}", e.message);
    }

    #[test]
    fn options_refuse_a_loose_password_file_naming_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("gw-an-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pw = dir.join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o640)).unwrap();
        let c = MqttConfig {
            username: Some("analytics".into()),
            password_file: Some(pw.clone()),
            ..MqttConfig::default()
        };
        let e = c.options().unwrap_err().to_string();
        assert!(
            e.contains(&pw.display().to_string()) && e.contains("0640"),
            "{e}"
        );
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(c.options().is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
