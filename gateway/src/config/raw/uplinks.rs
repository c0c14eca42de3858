//! The uplink sections of the config file: `[mqtt]`, `[influx]` and
//! `[outbox]`, as written (serde) and checked.

use super::{non_empty, resolve};
use crate::config::*;
use crate::toml_file::{bounded, FieldError, SourceFile};
use gridwatch_telemetry::ids::validate_id;
use serde::Deserialize;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMqtt {
    pub(super) host: Spanned<String>,
    pub(super) port: Option<Spanned<u16>>,
    pub(super) client_id: Option<Spanned<String>>,
    pub(super) topic_prefix: Option<Spanned<String>>,
    pub(super) keep_alive_s: Option<Spanned<u16>>,
    pub(super) inflight: Option<Spanned<u16>>,
    pub(super) max_publish_per_s: Option<Spanned<u32>>,
    pub(super) reconnect_max_ms: Option<Spanned<u64>>,
    pub(super) ca_file: Option<Spanned<PathBuf>>,
    pub(super) client_cert_file: Option<Spanned<PathBuf>>,
    pub(super) client_key_file: Option<Spanned<PathBuf>>,
    pub(super) username: Option<Spanned<String>>,
    pub(super) password_file: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawInfluxApi {
    V1,
    V2,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInflux {
    pub(super) url: Spanned<String>,
    pub(super) api: Option<RawInfluxApi>,
    pub(super) org: Option<Spanned<String>>,
    pub(super) bucket: Option<Spanned<String>>,
    pub(super) token_file: Option<Spanned<PathBuf>>,
    pub(super) db: Option<Spanned<String>>,
    pub(super) rp: Option<Spanned<String>>,
    pub(super) username: Option<Spanned<String>>,
    pub(super) password_file: Option<Spanned<PathBuf>>,
    pub(super) batch_max_lines: Option<Spanned<usize>>,
    pub(super) batch_max_wait_ms: Option<Spanned<u64>>,
    pub(super) gzip: Option<bool>,
    pub(super) timeout_ms: Option<Spanned<u64>>,
    pub(super) retry_max_ms: Option<Spanned<u64>>,
    pub(super) dead_letter_file: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutbox {
    pub(super) dir: Option<Spanned<PathBuf>>,
    pub(super) fsync_interval_ms: Option<Spanned<u64>>,
    pub(super) max_bytes: Option<Spanned<u64>>,
    pub(super) max_age_s: Option<Spanned<u64>>,
    pub(super) segment_bytes: Option<Spanned<u64>>,
}

pub(super) fn mqtt_tls(
    src: &SourceFile,
    m: &RawMqtt,
    base_dir: Option<&Path>,
) -> Result<Option<MqttTls>, FieldError> {
    let client_auth = match (&m.client_cert_file, &m.client_key_file) {
        (None, None) => None,
        (Some(c), Some(k)) => Some((
            resolve(base_dir, c.get_ref()),
            resolve(base_dir, k.get_ref()),
        )),
        (Some(c), None) => {
            return Err(src.error(
                c.span(),
                "mqtt.client_cert_file",
                "a client certificate needs its key: add client_key_file",
            ))
        }
        (None, Some(k)) => {
            return Err(src.error(
                k.span(),
                "mqtt.client_key_file",
                "a client key needs its certificate: add client_cert_file",
            ))
        }
    };
    match &m.ca_file {
        Some(ca) => Ok(Some(MqttTls {
            ca_file: resolve(base_dir, ca.get_ref()),
            client_auth,
        })),
        None => match &m.client_cert_file {
            Some(c) => Err(src.error(
                c.span(),
                "mqtt.client_cert_file",
                "client certificates need TLS: add ca_file (the CA that signed the broker's certificate)",
            )),
            None => Ok(None),
        },
    }
}

pub(super) fn mqtt_credentials(
    src: &SourceFile,
    m: &RawMqtt,
    base_dir: Option<&Path>,
    tls: bool,
) -> Result<Option<MqttCredentials>, FieldError> {
    match (&m.username, &m.password_file) {
        (None, None) => Ok(None),
        (Some(u), Some(p)) => {
            if !tls {
                return Err(src.error(
                    u.span(),
                    "mqtt.username",
                    "a password is never sent over plain TCP: add ca_file to use TLS",
                ));
            }
            Ok(Some(MqttCredentials {
                username: non_empty(src, u, "mqtt.username")?,
                password_file: resolve(base_dir, p.get_ref()),
            }))
        }
        (Some(u), None) => Err(src.error(
            u.span(),
            "mqtt.username",
            "a user name needs password_file (the password stays out of this file)",
        )),
        (None, Some(p)) => Err(src.error(
            p.span(),
            "mqtt.password_file",
            "a password needs a username",
        )),
    }
}

pub(super) fn build_influx(
    src: &SourceFile,
    i: &RawInflux,
    base_dir: Option<&Path>,
) -> Result<InfluxConfig, FieldError> {
    let url = non_empty(src, &i.url, "influx.url")?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(src.error(
            i.url.span(),
            "influx.url",
            format!("{url:?} is not an http:// or https:// URL"),
        ));
    }
    let required = |v: &Option<Spanned<String>>, field: &str, api: &str| {
        v.as_ref()
            .ok_or_else(|| {
                src.error(
                    i.url.span(),
                    format!("influx.{field}"),
                    format!("api = \"{api}\" needs {field}"),
                )
            })
            .and_then(|v| non_empty(src, v, &format!("influx.{field}")))
    };
    let not_for = |v: Option<Range<usize>>, field: &str, api: &str| match v {
        Some(span) => Err(src.error(
            span,
            format!("influx.{field}"),
            format!("{field} is not used with api = \"{api}\""),
        )),
        None => Ok(()),
    };
    let api = match i.api.unwrap_or(RawInfluxApi::V2) {
        RawInfluxApi::V2 => {
            not_for(i.db.as_ref().map(|v| v.span()), "db", "v2")?;
            not_for(i.rp.as_ref().map(|v| v.span()), "rp", "v2")?;
            not_for(i.username.as_ref().map(|v| v.span()), "username", "v2")?;
            not_for(
                i.password_file.as_ref().map(|v| v.span()),
                "password_file",
                "v2",
            )?;
            InfluxApi::V2 {
                org: required(&i.org, "org", "v2")?,
                bucket: required(&i.bucket, "bucket", "v2")?,
                token_file: i
                    .token_file
                    .as_ref()
                    .map(|t| resolve(base_dir, t.get_ref())),
            }
        }
        RawInfluxApi::V1 => {
            not_for(i.org.as_ref().map(|v| v.span()), "org", "v1")?;
            not_for(i.bucket.as_ref().map(|v| v.span()), "bucket", "v1")?;
            not_for(i.token_file.as_ref().map(|v| v.span()), "token_file", "v1")?;
            let credentials = match (&i.username, &i.password_file) {
                (None, None) => None,
                (Some(u), Some(p)) => Some((
                    non_empty(src, u, "influx.username")?,
                    resolve(base_dir, p.get_ref()),
                )),
                (Some(u), None) => {
                    return Err(src.error(
                        u.span(),
                        "influx.username",
                        "a user name needs password_file",
                    ))
                }
                (None, Some(p)) => {
                    return Err(src.error(
                        p.span(),
                        "influx.password_file",
                        "a password needs a username",
                    ))
                }
            };
            InfluxApi::V1 {
                db: required(&i.db, "db", "v1")?,
                rp: i
                    .rp
                    .as_ref()
                    .map(|r| non_empty(src, r, "influx.rp"))
                    .transpose()?,
                credentials,
            }
        }
    };
    Ok(InfluxConfig {
        url: url.trim_end_matches('/').to_owned(),
        api,
        batch_max_lines: bounded(
            src,
            &i.batch_max_lines,
            DEFAULT_INFLUX_BATCH_LINES,
            "influx.batch_max_lines",
            1,
            100_000,
        )?,
        batch_max_wait_ms: bounded(
            src,
            &i.batch_max_wait_ms,
            DEFAULT_INFLUX_BATCH_WAIT_MS,
            "influx.batch_max_wait_ms",
            0,
            600_000,
        )?,
        gzip: i.gzip.unwrap_or(true),
        timeout_ms: bounded(
            src,
            &i.timeout_ms,
            10_000,
            "influx.timeout_ms",
            100,
            600_000,
        )?,
        retry_max_ms: bounded(
            src,
            &i.retry_max_ms,
            60_000,
            "influx.retry_max_ms",
            100,
            3_600_000,
        )?,
        dead_letter_file: i
            .dead_letter_file
            .as_ref()
            .map(|d| resolve(base_dir, d.get_ref())),
    })
}

pub(super) fn build_outbox(
    src: &SourceFile,
    o: &RawOutbox,
    base_dir: Option<&Path>,
) -> Result<OutboxConfig, FieldError> {
    let max_bytes = bounded(
        src,
        &o.max_bytes,
        DEFAULT_OUTBOX_MAX_BYTES,
        "outbox.max_bytes",
        64 * 1024,
        u64::MAX,
    )?;
    Ok(OutboxConfig {
        dir: o.dir.as_ref().map(|d| resolve(base_dir, d.get_ref())),
        fsync_interval_ms: bounded(
            src,
            &o.fsync_interval_ms,
            DEFAULT_FSYNC_INTERVAL_MS,
            "outbox.fsync_interval_ms",
            1,
            60_000,
        )?,
        max_bytes,
        max_age_s: match &o.max_age_s {
            None => None,
            Some(_) => Some(bounded(
                src,
                &o.max_age_s,
                0,
                "outbox.max_age_s",
                60,
                u64::MAX / 1000,
            )?),
        },
        segment_bytes: bounded(
            src,
            &o.segment_bytes,
            DEFAULT_SEGMENT_BYTES,
            "outbox.segment_bytes",
            4096,
            1 << 30,
        )?,
    })
}

pub(super) fn topic_prefix(src: &SourceFile, p: &Spanned<String>) -> Result<String, FieldError> {
    for level in p.get_ref().split('/') {
        if let Err(why) = validate_id(level) {
            return Err(src.error(
                p.span(),
                "mqtt.topic_prefix",
                format!(
                    "{:?}: level {level:?} {why} (levels are separated by '/')",
                    p.get_ref()
                ),
            ));
        }
    }
    Ok(p.get_ref().clone())
}
