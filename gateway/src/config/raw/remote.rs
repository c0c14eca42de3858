//! `[remote]`: configs pushed from afar, signed by a key the gateway does
//! not hold (see [`crate::remote`]), and `[metrics]`: the Prometheus
//! endpoint. Both are off unless their table is there.

use crate::toml_file::{bounded, FieldError, SourceFile};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Grace period when `[remote]` names none: two minutes, long enough for
/// devices polled every minute to answer twice.
pub const DEFAULT_GRACE_PERIOD_S: u64 = 120;
/// Where the metrics endpoint listens when `[metrics]` names no address:
/// loopback only, Prometheus's registered port for node-style exporters.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// The `[remote]` table: where signed configs are checked and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    /// The public half of the config-signing key (`config-keygen`): only a
    /// config signed by its private half, which stays with the operator, is
    /// applied.
    pub public_key_file: PathBuf,
    /// Folder where the current, previous and trial configs are kept (the
    /// gateway must be able to write it: `/var/lib/gridwatch/remote`).
    pub dir: PathBuf,
    /// Time a pushed config has to show its devices answering and its
    /// uplinks connected; if it does not, the previous one comes back.
    pub grace_period_s: u64,
}

impl RemoteConfig {
    /// [`Self::grace_period_s`] as a duration.
    pub fn grace_period(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.grace_period_s)
    }
}

/// The `[metrics]` table: a Prometheus text endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Address to listen on (loopback by default: the figures carry no
    /// secrets but say which devices a building has).
    pub listen: SocketAddr,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawRemote {
    pub(in crate::config) public_key_file: Spanned<PathBuf>,
    dir: Spanned<PathBuf>,
    grace_period_s: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawMetrics {
    listen: Option<Spanned<String>>,
}

/// Checks `[remote]`; paths are taken relative to the config's folder.
pub(super) fn build_remote(
    src: &SourceFile,
    raw: &RawRemote,
    base_dir: Option<&Path>,
) -> Result<RemoteConfig, FieldError> {
    if raw.dir.get_ref().as_os_str().is_empty() {
        return Err(src.error(raw.dir.span(), "remote.dir", "must not be empty"));
    }
    Ok(RemoteConfig {
        public_key_file: super::resolve(base_dir, raw.public_key_file.get_ref()),
        dir: super::resolve(base_dir, raw.dir.get_ref()),
        grace_period_s: bounded(
            src,
            &raw.grace_period_s,
            DEFAULT_GRACE_PERIOD_S,
            "remote.grace_period_s",
            1,
            3600,
        )?,
    })
}

/// Refuses the device id signed configs are addressed to
/// (`…/cmd/_config`): such a device could never take a command.
pub(super) fn refuse_reserved(
    src: &SourceFile,
    span: std::ops::Range<usize>,
    i: usize,
    id: &str,
) -> Result<(), FieldError> {
    if id == gridwatch_telemetry::topic::CONFIG_DEVICE {
        return Err(src.error(
            span,
            format!("devices[{i}].id"),
            format!("{id:?} is reserved for remote configs; name the device otherwise"),
        ));
    }
    Ok(())
}

/// Checks `[metrics]`.
pub(super) fn build_metrics(
    src: &SourceFile,
    raw: &RawMetrics,
) -> Result<MetricsConfig, FieldError> {
    let listen = match &raw.listen {
        None => DEFAULT_METRICS_LISTEN
            .parse()
            .map_err(|_| src.error(0..0, "metrics.listen", "the default address does not parse"))?,
        Some(l) => l.get_ref().parse().map_err(|_| {
            src.error(
                l.span(),
                "metrics.listen",
                format!(
                    "{:?} is not an address and port; write e.g. \"127.0.0.1:9464\"",
                    l.get_ref()
                ),
            )
        })?,
    };
    Ok(MetricsConfig { listen })
}

#[cfg(test)]
mod tests {
    use crate::config::GatewayConfig;

    const BASE: &str = "[gateway]\nid = \"gw-1\"\nsite = \"s\"\n[mqtt]\nhost = \"127.0.0.1\"\n\
                        [[devices]]\nid = \"m\"\nprofile = \"eastron-sdm120\"\n\
                        protocol = \"modbus_tcp\"\nhost = \"127.0.0.1\"\n";

    #[test]
    fn remote_and_metrics_are_off_unless_their_table_is_there() {
        let c = GatewayConfig::from_toml_str(BASE, "t").unwrap();
        assert!(c.remote.is_none() && c.metrics.is_none());
    }

    #[test]
    fn remote_defaults_and_metrics_listen_on_loopback() {
        let text = format!(
            "{BASE}[remote]\npublic_key_file = \"/k.pub\"\ndir = \"/var/lib/r\"\n[metrics]\n"
        );
        let c = GatewayConfig::from_toml_str(&text, "t").unwrap();
        let r = c.remote.unwrap();
        assert_eq!(r.grace_period_s, super::DEFAULT_GRACE_PERIOD_S);
        assert_eq!(r.dir, std::path::PathBuf::from("/var/lib/r"));
        assert_eq!(c.metrics.unwrap().listen.to_string(), "127.0.0.1:9464");
        assert!(
            c.host_needs
                .iter()
                .any(|n| n.field == "remote.public_key_file"),
            "check looks for the public key file"
        );
    }

    #[test]
    fn bad_values_are_named_with_their_line() {
        let text =
            format!("{BASE}[remote]\npublic_key_file = \"k\"\ndir = \"d\"\ngrace_period_s = 0\n");
        let e = GatewayConfig::from_toml_str(&text, "t")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t:14") && e.contains("remote.grace_period_s"),
            "{e}"
        );
        let text = format!("{BASE}[metrics]\nlisten = \"localhost\"\n");
        let e = GatewayConfig::from_toml_str(&text, "t")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("metrics.listen") && e.contains("not an address"),
            "{e}"
        );
    }
}
