//! What a config needs of the machine it runs on: files that must be there
//! (TLS certificates, password, token and key files) and serial ports.
//!
//! Collected while the config is parsed, so each need keeps the line and
//! column it was written at; checked by [`crate::config::GatewayConfig::check_host`]
//! (`check` and `run`) and not by parsing itself, so that a config can be
//! written and checked on another machine (`check --config-only`).

use super::RawConfig;
use crate::config::{HostNeed, NeedKind};
use crate::toml_file::SourceFile;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Every file and serial port `raw` names, resolved against `base_dir`.
pub(super) fn needs(src: &SourceFile, raw: &RawConfig, base_dir: Option<&Path>) -> Vec<HostNeed> {
    let mut out = Vec::new();
    let mut add = |v: Option<&Spanned<PathBuf>>, field: String, kind: NeedKind| {
        if let Some(v) = v {
            out.push(HostNeed {
                at: src.location(v.span().start),
                field,
                path: super::resolve(base_dir, v.get_ref()),
                kind,
            });
        }
    };
    let m = &raw.mqtt;
    add(m.ca_file.as_ref(), "mqtt.ca_file".into(), NeedKind::File);
    add(
        m.client_cert_file.as_ref(),
        "mqtt.client_cert_file".into(),
        NeedKind::File,
    );
    add(
        m.client_key_file.as_ref(),
        "mqtt.client_key_file".into(),
        NeedKind::File,
    );
    add(
        m.password_file.as_ref(),
        "mqtt.password_file".into(),
        NeedKind::File,
    );
    if let Some(i) = &raw.influx {
        add(
            i.token_file.as_ref(),
            "influx.token_file".into(),
            NeedKind::File,
        );
        add(
            i.password_file.as_ref(),
            "influx.password_file".into(),
            NeedKind::File,
        );
    }
    if let Some(p) = &raw.pseudonym {
        add(
            Some(p.site_key_file()),
            "pseudonym.site_key_file".into(),
            NeedKind::File,
        );
    }
    if let Some(r) = &raw.remote {
        add(
            Some(&r.public_key_file),
            "remote.public_key_file".into(),
            NeedKind::File,
        );
    }
    for (i, b) in raw.buses.iter().enumerate() {
        add(
            Some(b.get_ref().port_spanned()),
            format!("buses[{i}].port"),
            NeedKind::SerialPort,
        );
    }
    for (i, d) in raw.devices.iter().enumerate() {
        add(
            d.get_ref().serial_port.as_ref(),
            format!("devices[{i}].serial_port"),
            NeedKind::SerialPort,
        );
    }
    for (i, r) in raw.readers.iter().enumerate() {
        add(
            r.get_ref().port(),
            format!("readers[{i}].port"),
            NeedKind::SerialPort,
        );
    }
    out
}
