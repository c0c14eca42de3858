//! `gridwatch-gateway check`: what a valid config will make the gateway do.

use crate::config::GatewayConfig;
use crate::devices::modbus::plan;
use crate::net::words;
use crate::profile::{ChannelCount, Profile};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Prints the summary of a config that loaded (hence is valid).
pub(super) fn print(config: &GatewayConfig, as_json: bool) {
    if as_json {
        println!("{}", summary_json(config));
    } else {
        print!("{}", summary_text(config));
    }
}

/// Requests per poll: (total, device-level, channel) at the profile's maximum
/// channel count.
fn requests(profile: &Profile, max_gap: u16) -> (usize, usize, usize) {
    let (d, c) = plan::requests_per_poll(profile, max_gap);
    (d + c, d, c)
}

/// Requests one poll of `d` costs: a DL/T 645 meter needs one per value.
fn device_requests(d: &crate::config::DeviceConfig) -> (usize, usize, usize) {
    match &d.transport {
        crate::config::Transport::Dlt645 { phases, .. } => {
            let n = crate::devices::dlt645::quantities(*phases).len();
            (n, n, 0)
        }
        // One 901FH request reads everything a CJ/T 188 meter sends.
        crate::config::Transport::Cjt188 { .. } => (1, 1, 0),
        crate::config::Transport::ModbusTcp { .. } | crate::config::Transport::ModbusRtu { .. } => {
            requests(&d.profile, d.max_gap_registers)
        }
    }
}

fn channel_text(p: &Profile) -> String {
    match &p.channel {
        None => String::new(),
        Some(ch) => {
            let count = match &ch.count {
                ChannelCount::Fixed(n) => format!("{n} {}s", ch.name),
                ChannelCount::FromRegister { register, max } => {
                    format!("up to {max} {}s (count from {register})", ch.name)
                }
            };
            format!(
                ", {} registers per {}, {count}",
                ch.registers.len(),
                ch.name
            )
        }
    }
}

fn summary_text(config: &GatewayConfig) -> String {
    let g = &config.gateway;
    let topics = config.topics();
    let mut out = String::new();
    let _ = writeln!(out, "{} is valid.", config.origin);
    let _ = writeln!(
        out,
        "gateway {} at site {}{}",
        g.id,
        g.site,
        g.building
            .as_ref()
            .map(|b| format!(", building {b}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "MQTT broker {}:{} as client {}, keep-alive {} s",
        config.mqtt.host, config.mqtt.port, config.mqtt.client_id, config.mqtt.keep_alive_s
    );
    let _ = writeln!(
        out,
        "  readings to {}, events to {}, status (retained) to {}",
        topics.reading(g.site.as_str(), g.id.as_str(), "<device>"),
        topics.event(g.site.as_str(), g.id.as_str(), "<device>"),
        topics.status(g.site.as_str(), g.id.as_str())
    );
    let _ = writeln!(
        out,
        "  {}; at most {} publishes in flight, {} a second when catching up; commands on {}",
        match (&config.mqtt.tls, &config.mqtt.credentials) {
            (None, _) => "plain TCP (no TLS)".to_owned(),
            (Some(t), c) => format!(
                "TLS with CA {}{}{}",
                t.ca_file.display(),
                if t.client_auth.is_some() {
                    " and a client certificate"
                } else {
                    ""
                },
                c.as_ref()
                    .map(|c| format!(", user {}", c.username))
                    .unwrap_or_default()
            ),
        },
        config.mqtt.inflight,
        config.mqtt.max_publish_per_s,
        topics.cmd(g.site.as_str(), g.id.as_str(), "+")
    );
    let o = &config.outbox;
    let _ = writeln!(
        out,
        "outbox {}: synced every {}, capped at {} bytes{}",
        o.dir.as_ref().map_or_else(
            || "in a temporary folder (lost at restart: set [outbox] dir)".to_owned(),
            |d| d.display().to_string()
        ),
        words(o.fsync_interval()),
        o.max_bytes,
        o.max_age_s
            .map(|a| format!(" and {a} s"))
            .unwrap_or_default()
    );
    if let Some(i) = &config.influx {
        let _ = writeln!(
            out,
            "InfluxDB {} ({}): batches of up to {} lines{}",
            i.url,
            match &i.api {
                crate::config::InfluxApi::V2 { org, bucket, .. } =>
                    format!("v2, org {org}, bucket {bucket}"),
                crate::config::InfluxApi::V1 { db, .. } => format!("v1, database {db}"),
            },
            i.batch_max_lines,
            if i.gzip { ", gzip" } else { "" }
        );
    }
    if let Some(r) = &config.remote {
        let _ = writeln!(
            out,
            "remote config: signed with the key in {}, tried for {} before it is kept; kept in {}",
            r.public_key_file.display(),
            words(r.grace_period()),
            r.dir.display()
        );
    }
    if let Some(m) = &config.metrics {
        let _ = writeln!(out, "metrics: http://{}/metrics", m.listen);
    }
    let mut profiles: BTreeMap<&str, &Profile> = BTreeMap::new();
    for d in &config.devices {
        profiles.insert(d.profile.model.as_str(), &d.profile);
    }
    let _ = writeln!(out, "profiles ({}):", profiles.len());
    for p in profiles.values() {
        let _ = writeln!(
            out,
            "  {} ({}, {}) from {}: {} device-level registers{}",
            p.model,
            p.vendor,
            p.kind,
            p.origin,
            p.registers.len(),
            channel_text(p)
        );
    }
    let _ = writeln!(out, "devices ({}):", config.devices.len());
    for d in &config.devices {
        let (total, dev, ch) = device_requests(d);
        let split = match &d.profile.channel {
            Some(c) => format!(" ({dev} + {ch} for {} {}s)", c.max_count(), c.name),
            None => String::new(),
        };
        let protocol = match &d.transport {
            crate::config::Transport::Dlt645 { .. } => "DL/T 645",
            crate::config::Transport::Cjt188 { .. } => "CJ/T 188",
            crate::config::Transport::ModbusTcp { .. }
            | crate::config::Transport::ModbusRtu { .. } => "Modbus",
        };
        let _ = writeln!(
            out,
            "  {}: {} via {}, every {} (timeout {}): {total} {protocol} {} per poll{split}",
            d.id,
            d.profile.model,
            d.transport.describe(),
            words(d.poll_interval()),
            words(d.timeout()),
            if total == 1 { "request" } else { "requests" },
        );
    }
    out.push_str(&super::readers::summary_text(config));
    out
}

fn summary_json(config: &GatewayConfig) -> serde_json::Value {
    let g = &config.gateway;
    let devices: Vec<_> = config
        .devices
        .iter()
        .map(|d| {
            let (total, _, _) = device_requests(d);
            json!({
                "id": d.id.as_str(),
                "profile": d.profile.model,
                "profile_origin": d.profile.origin,
                "transport": d.transport.describe(),
                "poll_interval_ms": d.poll_interval_ms,
                "timeout_ms": d.timeout_ms,
                "requests_per_poll": total,
            })
        })
        .collect();
    json!({
        "valid": true,
        "config": config.origin,
        "gateway": g.id.as_str(),
        "site": g.site.as_str(),
        "building": g.building,
        "mqtt": { "host": config.mqtt.host, "port": config.mqtt.port, "client_id": config.mqtt.client_id },
        "status_topic": config.topics().status(g.site.as_str(), g.id.as_str()),
        "mqtt_tls": config.mqtt.tls.is_some(),
        "outbox": {
            "dir": config.outbox.dir,
            "fsync_interval_ms": config.outbox.fsync_interval_ms,
            "max_bytes": config.outbox.max_bytes,
            "max_age_s": config.outbox.max_age_s,
        },
        "influx": config.influx.as_ref().map(|i| i.url.clone()),
        "remote": config.remote.as_ref().map(|r| json!({
            "public_key_file": r.public_key_file,
            "dir": r.dir,
            "grace_period_s": r.grace_period_s,
        })),
        "metrics": config.metrics.map(|m| m.listen.to_string()),
        "devices": devices,
        "readers": super::readers::summary_json(config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_requests_per_poll() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/gateway.example.toml"
        );
        let cfg = GatewayConfig::load(path).unwrap();
        let text = summary_text(&cfg);
        assert!(
            text.contains("3 Modbus requests per poll (1 + 2 for 12 sockets)"),
            "{text}"
        );
        let v = summary_json(&cfg);
        assert_eq!(v["devices"][0]["requests_per_poll"], 3);
    }

    #[test]
    fn summary_counts_one_request_per_dlt645_value() {
        let cfg = GatewayConfig::from_toml_str(
            "[gateway]\nid = \"gw-1\"\nsite = \"s\"\n[mqtt]\nhost = \"h\"\n\
             [[devices]]\nid = \"m3\"\nprotocol = \"dlt645\"\nserial_port = \"/dev/ttyUSB0\"\n\
             meter_address = \"000000000002\"\nphases = 3\n",
            "gw.toml",
        )
        .unwrap();
        let text = summary_text(&cfg);
        assert!(
            text.contains(
                "m3: dlt645-3p via dlt645 /dev/ttyUSB0 at 2400 baud 8E1, meter 000000000002"
            ),
            "{text}"
        );
        assert!(text.contains("17 DL/T 645 requests per poll"), "{text}");
        assert_eq!(summary_json(&cfg)["devices"][0]["requests_per_poll"], 17);
    }
}
