//! Setting up a connection to the broker: TLS and credentials from the
//! `[mqtt]` table, and connection errors in words for the log. Shared by
//! the uplink and `selftest`.

use super::MqttSetupError;
use crate::config::MqttConfig;
use crate::net::io_reason;
use gridwatch_telemetry::secret::read_secret_file;
use rumqttc::{ConnectionError, MqttOptions, StateError, TlsConfiguration, Transport};

/// Applies `[mqtt]` TLS and credentials to `options` (secret files 0600, see
/// [`gridwatch_telemetry::secret`]).
pub(crate) fn configure_security(
    options: &mut MqttOptions,
    m: &MqttConfig,
) -> Result<(), MqttSetupError> {
    let read = |what: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| MqttSetupError::Unreadable {
            what,
            path: path.to_owned(),
            source,
        })
    };
    if let Some(tls) = &m.tls {
        let ca = read("the MQTT CA file", &tls.ca_file)?;
        let client_auth = match &tls.client_auth {
            Some((cert, key)) => Some((read("the MQTT client certificate", cert)?, {
                gridwatch_telemetry::secret::check_private("the MQTT client key", key)?;
                read("the MQTT client key", key)?
            })),
            None => None,
        };
        options.set_transport(Transport::Tls(TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth,
        }));
    }
    if let Some(c) = &m.credentials {
        let password = read_secret_file("the MQTT password file", &c.password_file)?;
        options.set_credentials(c.username.clone(), password);
    }
    Ok(())
}

/// A connection error in words for the log.
pub(crate) fn reason(e: &ConnectionError) -> String {
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
