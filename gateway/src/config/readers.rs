//! The `[[readers]]`, `[local_mqtt]`, `[pseudonym]` and `[edge]` parts of
//! the gateway config, as written and as checked.

use super::raw::{id_field, non_empty, resolve};
use crate::edge::EdgeConfig;
use crate::pseudonym::IdentityKind;
use crate::readers::mapping::{JsonMapping, JsonMappingConfig};
use crate::readers::mqtt::LocalMqttConfig;
use crate::readers::serial::BAUD_RATES;
use crate::readers::{Direction, Location, ReaderConfig, ReaderSource, DEFAULT_REPEAT_WINDOW_MS};
use crate::toml_file::bounded;
use crate::toml_file::{FieldError, SourceFile};
use gridwatch_telemetry::DeviceId;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// `protocol = "..."` of a reader.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ReaderProtocol {
    Mqtt,
    Serial,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReader {
    id: Spanned<String>,
    protocol: ReaderProtocol,
    location: Location,
    identity_kind: Option<IdentityKind>,
    direction: Option<Direction>,
    repeat_window_ms: Option<Spanned<u64>>,
    offline_after_silence_s: Option<Spanned<u64>>,
    building: Option<Spanned<String>>,
    topic: Option<Spanned<String>>,
    json: Option<Spanned<JsonMappingConfig>>,
    port: Option<Spanned<PathBuf>>,
    baud: Option<Spanned<u32>>,
}

impl RawReader {
    pub(super) fn id_span(&self) -> std::ops::Range<usize> {
        self.id.span()
    }

    /// The serial port of a serial reader, as written.
    pub(super) fn port(&self) -> Option<&Spanned<PathBuf>> {
        self.port.as_ref()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocalMqtt {
    host: Spanned<String>,
    port: Option<Spanned<u16>>,
    client_id: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPseudonym {
    site_key_file: Spanned<PathBuf>,
}

impl RawPseudonym {
    /// The site key file, as written.
    pub(super) fn site_key_file(&self) -> &Spanned<PathBuf> {
        &self.site_key_file
    }
}

/// The reader parts of a config, checked.
pub(super) struct Readers {
    pub readers: Vec<ReaderConfig>,
    pub local_mqtt: Option<LocalMqttConfig>,
    pub site_key_file: Option<PathBuf>,
    pub edge: EdgeConfig,
}

/// Everything the reader parts need from the rest of the config.
pub(super) struct Context<'a> {
    pub src: &'a SourceFile,
    pub base_dir: Option<&'a Path>,
    pub gateway_id: &'a str,
    pub uplink: (&'a str, u16),
}

pub(super) fn build(
    cx: &Context<'_>,
    raw: &[Spanned<RawReader>],
    local: Option<&RawLocalMqtt>,
    pseudonym: Option<&RawPseudonym>,
    edge: Option<&Spanned<EdgeConfig>>,
) -> Result<Readers, FieldError> {
    let src = cx.src;
    let readers = raw
        .iter()
        .enumerate()
        .map(|(i, r)| build_reader(cx, i, r.get_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let first_mqtt = raw
        .iter()
        .find(|r| matches!(r.get_ref().protocol, ReaderProtocol::Mqtt));
    let local_mqtt = match (local, first_mqtt) {
        (Some(l), _) => Some(build_local(cx, l)?),
        (None, Some(r)) => {
            return Err(src.error(
                r.span(),
                "local_mqtt",
                "MQTT readers need the broker they publish to: add a [local_mqtt] table with \
                 its host (usually the gateway's own Mosquitto)",
            ))
        }
        (None, None) => None,
    };
    let site_key_file = match (pseudonym, raw.first()) {
        (Some(p), _) => Some(resolve(cx.base_dir, p.site_key_file.get_ref())),
        (None, Some(r)) => {
            return Err(src.error(
                r.span(),
                "pseudonym.site_key_file",
                "readers report plates and tags, which are replaced by a keyed hash before \
                 they leave the gateway: add [pseudonym] site_key_file = \"/etc/gridwatch/site.key\"",
            ))
        }
        (None, None) => None,
    };
    let edge = match edge {
        Some(e) => {
            check_edge(src, e)?;
            e.get_ref().clone()
        }
        None => EdgeConfig::default(),
    };
    Ok(Readers {
        readers,
        local_mqtt,
        site_key_file,
        edge,
    })
}

fn build_local(cx: &Context<'_>, l: &RawLocalMqtt) -> Result<LocalMqttConfig, FieldError> {
    let src = cx.src;
    let host = non_empty(src, &l.host, "local_mqtt.host")?;
    let port = bounded(src, &l.port, 1883, "local_mqtt.port", 1, u16::MAX)?;
    if (host.as_str(), port) == cx.uplink {
        return Err(src.error(
            l.host.span(),
            "local_mqtt.host",
            format!(
                "{host}:{port} is also the uplink broker ([mqtt]); readers publish raw plates \
                 and tags, which must stay on a broker inside the building"
            ),
        ));
    }
    Ok(LocalMqttConfig {
        host,
        port,
        client_id: match &l.client_id {
            Some(c) => id_field(src, c, "local_mqtt.client_id")?,
            None => format!("{}-readers", cx.gateway_id),
        },
    })
}

fn build_reader(cx: &Context<'_>, i: usize, r: &RawReader) -> Result<ReaderConfig, FieldError> {
    let src = cx.src;
    let f = |name: &str| format!("readers[{i}].{name}");
    let id = id_field(src, &r.id, &f("id"))?;
    let not_for = |span: Option<std::ops::Range<usize>>, field: &str, protocol: &str| match span {
        Some(s) => Err(src.error(
            s,
            f(field),
            format!("{field} is not used with protocol = \"{protocol}\""),
        )),
        None => Ok(()),
    };
    let source = match r.protocol {
        ReaderProtocol::Mqtt => {
            not_for(r.port.as_ref().map(|p| p.span()), "port", "mqtt")?;
            not_for(r.baud.as_ref().map(|p| p.span()), "baud", "mqtt")?;
            let topic = r.topic.as_ref().ok_or_else(|| {
                src.error(
                    r.id.span(),
                    f("topic"),
                    "an MQTT reader needs the topic it publishes on",
                )
            })?;
            let topic_text = non_empty(src, topic, &f("topic"))?;
            if !rumqttc::valid_filter(&topic_text) {
                return Err(src.error(
                    topic.span(),
                    f("topic"),
                    format!("{topic_text:?} is not a valid MQTT topic filter"),
                ));
            }
            let json = r.json.as_ref().ok_or_else(|| {
                src.error(
                    r.id.span(),
                    f("json"),
                    "an MQTT reader needs a [readers.json] table saying which field holds the \
                     identity (identity = \"/plate\")",
                )
            })?;
            let mapping = JsonMapping::build(json.get_ref())
                .map_err(|(key, why)| src.error(json.span(), f(&format!("json.{key}")), why))?;
            ReaderSource::Mqtt {
                topic: topic_text,
                mapping,
            }
        }
        ReaderProtocol::Serial => {
            not_for(r.topic.as_ref().map(|p| p.span()), "topic", "serial")?;
            not_for(r.json.as_ref().map(|p| p.span()), "json", "serial")?;
            let port = r.port.as_ref().ok_or_else(|| {
                src.error(
                    r.id.span(),
                    f("port"),
                    "a serial reader needs its port (/dev/ttyUSB0)",
                )
            })?;
            let baud = match &r.baud {
                None => 9600,
                Some(b) if BAUD_RATES.contains(b.get_ref()) => *b.get_ref(),
                Some(b) => {
                    return Err(src.error(
                        b.span(),
                        f("baud"),
                        format!(
                            "{} is not a supported line speed; use one of {BAUD_RATES:?}",
                            b.get_ref()
                        ),
                    ))
                }
            };
            ReaderSource::Serial {
                port: resolve(cx.base_dir, port.get_ref()),
                baud,
            }
        }
    };
    Ok(ReaderConfig {
        id: DeviceId(id),
        location: r.location,
        identity_kind: r.identity_kind.unwrap_or(IdentityKind::Tag),
        direction: r.direction,
        repeat_window_ms: bounded(
            src,
            &r.repeat_window_ms,
            DEFAULT_REPEAT_WINDOW_MS,
            &f("repeat_window_ms"),
            0,
            3_600_000,
        )?,
        offline_after_silence_s: match &r.offline_after_silence_s {
            None => None,
            Some(_) => Some(bounded(
                src,
                &r.offline_after_silence_s,
                0,
                &f("offline_after_silence_s"),
                5,
                7 * 86_400,
            )?),
        },
        building: r
            .building
            .as_ref()
            .map(|b| id_field(src, b, &f("building")))
            .transpose()?,
        source,
    })
}

/// Output names unique, rules naming configured outputs and known locations.
fn check_edge(src: &SourceFile, e: &Spanned<EdgeConfig>) -> Result<(), FieldError> {
    let c = e.get_ref();
    for (i, o) in c.outputs.iter().enumerate() {
        if c.outputs[..i].iter().any(|p| p.name == o.name) {
            return Err(src.error(
                e.span(),
                format!("edge.outputs[{i}].name"),
                format!("output {:?} is configured twice", o.name),
            ));
        }
    }
    for (i, r) in c.rules.iter().enumerate() {
        for name in &r.fire {
            if !c.outputs.iter().any(|o| &o.name == name) {
                let known: Vec<&str> = c.outputs.iter().map(|o| o.name.as_str()).collect();
                return Err(src.error(
                    e.span(),
                    format!("edge.rules[{i}].fire"),
                    format!("output {name:?} is not configured; configured outputs: {known:?}"),
                ));
            }
        }
        for at in &r.when_sighted_at {
            if toml::Value::String(at.clone())
                .try_into::<Location>()
                .is_err()
            {
                return Err(src.error(
                    e.span(),
                    format!("edge.rules[{i}].when_sighted_at"),
                    format!(
                        "{at:?} is not a location; use gate, lift_lobby, lift_car, stairwell \
                         or charging_area"
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, GatewayConfig};
    use crate::readers::{Location, ReaderSource};

    const BASE: &str = r#"[gateway]
id = "gw-1"
site = "estate-7"
[mqtt]
host = "10.0.0.1"
[local_mqtt]
host = "127.0.0.1"
[pseudonym]
site_key_file = "site.key"
"#;

    const CAMERA: &str = r#"
[[readers]]
id = "gate-cam"
protocol = "mqtt"
topic = "cam/gate/plates"
location = "gate"
identity_kind = "plate"
[readers.json]
identity = "/plate"
"#;

    fn err(text: &str) -> String {
        match GatewayConfig::from_toml_str(text, "gw.toml") {
            Err(ConfigError::Invalid(e)) => e.to_string(),
            Err(other) => panic!("expected a field error, got {other}"),
            Ok(_) => panic!("expected an error in:\n{text}"),
        }
    }

    #[test]
    fn the_shipped_readers_example_loads() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/gateway-readers.example.toml"
        );
        let cfg = GatewayConfig::load(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.readers.len(), 2);
        assert_eq!(cfg.readers[1].location, Location::LiftLobby);
        assert_eq!(cfg.edge.rules[0].fire.len(), 2);
    }

    #[test]
    fn a_gateway_of_readers_alone_is_valid() {
        let cfg = GatewayConfig::from_toml_str(&format!("{BASE}{CAMERA}"), "gw.toml")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(cfg.devices.is_empty());
        let r = &cfg.readers[0];
        assert_eq!(r.location, Location::Gate);
        assert!(
            matches!(&r.source, ReaderSource::Mqtt { topic, .. } if topic == "cam/gate/plates")
        );
        let local = cfg.local_mqtt.expect("local broker");
        assert_eq!(
            (local.port, local.client_id.as_str()),
            (1883, "gw-1-readers")
        );
        assert_eq!(
            cfg.site_key_file.as_deref(),
            Some(std::path::Path::new("site.key"))
        );
    }

    #[test]
    fn reader_mistakes_name_line_and_field() {
        let cases: Vec<(String, &str)> = vec![
            (
                format!(
                    "{BASE}{}",
                    CAMERA.replace("location = \"gate\"", "location = \"roof\"")
                ),
                "gw.toml:15:12: readers[0].location: unknown variant `roof`",
            ),
            (
                format!("{BASE}{}", CAMERA.replace("/plate\"", "a..b\"")),
                "readers[0].json.identity: \"a..b\" is not a field path",
            ),
            (
                format!("{BASE}{}", CAMERA.replace("cam/gate/plates", "cam/#/x")),
                "gw.toml:14:9: readers[0].topic: \"cam/#/x\" is not a valid MQTT topic filter",
            ),
            (
                format!(
                    "{BASE}{CAMERA}{}",
                    CAMERA.replace("mqtt\"", "mqtt\"\nbaud = 9600")
                ),
                "readers[1].baud: baud is not used with protocol = \"mqtt\"",
            ),
            (
                format!(
                    "{BASE}{}",
                    CAMERA.replace("mqtt\"", "mqtt\"\noffline_after_silence_s = 1")
                ),
                "readers[0].offline_after_silence_s: 1 is out of range; use 5 to 604800",
            ),
            (
                format!("{BASE}{CAMERA}{CAMERA}"),
                "readers[1].id: \"gate-cam\" is already used",
            ),
            (
                format!(
                    "{BASE}[[readers]]\nid = \"r\"\nprotocol = \"serial\"\nport = \"/dev/ttyS0\"\n\
                     location = \"stairwell\"\nbaud = 1000\n"
                ),
                "gw.toml:15:8: readers[0].baud: 1000 is not a supported line speed",
            ),
            (
                format!(
                    "{}{CAMERA}",
                    BASE.replace("[pseudonym]\nsite_key_file = \"site.key\"\n", "")
                ),
                "pseudonym.site_key_file: readers report plates and tags",
            ),
            (
                format!(
                    "{}{CAMERA}",
                    BASE.replace("[local_mqtt]\nhost = \"127.0.0.1\"\n", "")
                ),
                "local_mqtt: MQTT readers need the broker",
            ),
            (
                format!(
                    "{}{CAMERA}",
                    BASE.replace("host = \"127.0.0.1\"", "host = \"10.0.0.1\"")
                ),
                "local_mqtt.host: 10.0.0.1:1883 is also the uplink broker",
            ),
        ];
        for (text, want) in cases {
            let e = err(&text);
            assert!(e.contains(want), "wanted {want:?} in {e:?}");
        }
    }

    #[test]
    fn edge_rules_must_name_outputs_and_locations() {
        let edge = r#"
[[edge.outputs]]
name = "buzzer"
gpio_bcm = 17
hold_ms = 5000
[[edge.rules]]
when_sighted_at = ["lift_lobby"]
fire = ["buzzer"]
"#;
        let ok = format!("{BASE}{CAMERA}{edge}");
        let cfg = GatewayConfig::from_toml_str(&ok, "gw.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.edge.rules.len(), 1);
        let e = err(&ok.replace("fire = [\"buzzer\"]", "fire = [\"siren\"]"));
        assert!(
            e.contains("edge.rules[0].fire: output \"siren\" is not configured"),
            "{e}"
        );
        let e = err(&ok.replace("[\"lift_lobby\"]", "[\"lobby\"]"));
        assert!(
            e.contains("edge.rules[0].when_sighted_at: \"lobby\" is not a location"),
            "{e}"
        );
    }
}
