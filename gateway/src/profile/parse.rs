//! Profile TOML → [`Profile`], with every check that needs more than serde.

use super::{ByteOrder, Channel, ChannelCount, Function, Profile, Register, WordOrder, WritePoint};
use crate::toml_file::{list, FieldError, Location, SourceFile};
use gridwatch_telemetry::DeviceKind;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

mod range;
mod register;

use register::{check_value_name, convert_register, value_type};

/// Planner default: reading a few unused registers is cheaper than a second
/// request on a slow bus, and 8 stays well clear of the next block on most maps.
pub const DEFAULT_MAX_GAP_REGISTERS: u16 = 8;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    model: Spanned<String>,
    vendor: String,
    kind: Spanned<DeviceKind>,
    document: String,
    function: Option<Function>,
    byte_order: Option<ByteOrder>,
    word_order: Option<WordOrder>,
    max_gap_registers: Option<u16>,
    #[serde(default)]
    registers: Vec<RawRegister>,
    channel: Option<Spanned<RawChannel>>,
    #[serde(default)]
    commands: Vec<RawCommand>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    action: Spanned<String>,
    function: Spanned<Function>,
    address: Spanned<u16>,
    socket_stride: Option<Spanned<u16>>,
    value: Spanned<u16>,
    result: Option<String>,
}

/// The `type` names as written; `string` takes its length from `count`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawType {
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    Bool,
    Bcd16,
    Bcd32,
    String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    name: Spanned<String>,
    kind: Option<DeviceKind>,
    base: u16,
    stride: Spanned<u16>,
    count: Option<Spanned<u16>>,
    count_register: Option<Spanned<String>>,
    max_count: Option<Spanned<u16>>,
    #[serde(default)]
    registers: Vec<RawRegister>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegister {
    name: Spanned<String>,
    function: Option<Function>,
    /// One value's address; or `range` for a block (see `range.rs`).
    address: Option<Spanned<u16>>,
    range: Option<Spanned<String>>,
    #[serde(rename = "type")]
    value_type: Spanned<RawType>,
    count: Option<Spanned<u16>>,
    bit: Option<Spanned<u8>>,
    byte_order: Option<ByteOrder>,
    word_order: Option<WordOrder>,
    scale: Option<Spanned<f64>>,
    offset: Option<Spanned<f64>>,
    unit: Option<Spanned<String>>,
    values: Option<Spanned<BTreeMap<String, String>>>,
    expect: Option<Spanned<i64>>,
    expect_text: Option<Spanned<String>>,
    deadband: Option<Spanned<f64>>,
}

/// Defaults a profile sets for all its registers.
struct Defaults {
    function: Function,
    byte_order: ByteOrder,
    word_order: WordOrder,
}

/// Which list a register belongs to, for field paths and address checks.
#[derive(Clone, Copy)]
enum Scope {
    Device,
    Channel { stride: u16 },
}

impl Scope {
    fn path(self) -> &'static str {
        match self {
            Scope::Device => "registers",
            Scope::Channel { .. } => "channel.registers",
        }
    }
}

pub(super) fn parse(
    text: &str,
    origin: &str,
    expected_model: Option<&str>,
) -> Result<Profile, FieldError> {
    let src = SourceFile::new(origin, text);
    let raw: RawProfile = src.parse()?;

    let model = raw.model.get_ref();
    if let Err(why) = gridwatch_telemetry::ids::validate_id(model) {
        return Err(src.error(raw.model.span(), "model", format!("{model:?} {why}")));
    }
    if let Some(expected) = expected_model {
        if model != expected {
            return Err(src.error(
                raw.model.span(),
                "model",
                format!(
                    "is {model:?} but the file is named {expected}.toml; \
                     name the file after the model"
                ),
            ));
        }
    }

    let defaults = Defaults {
        function: raw.function.unwrap_or(Function::Holding),
        byte_order: raw.byte_order.unwrap_or_default(),
        word_order: raw.word_order.unwrap_or_default(),
    };
    let registers = convert_registers(&src, &raw.registers, Scope::Device, &defaults)?;

    let kind = *raw.kind.get_ref();
    let channel = match &raw.channel {
        Some(ch) => Some(convert_channel(&src, ch, kind, &registers, &defaults)?),
        None => None,
    };
    let commands = convert_commands(&src, &raw.commands, channel.as_ref())?;
    if registers.is_empty() && channel.as_ref().is_none_or(|c| c.registers.is_empty()) {
        return Err(src.error(
            0..0,
            "registers",
            "the profile lists no registers; a device needs at least one value to read",
        ));
    }

    Ok(Profile {
        model: model.clone(),
        vendor: raw.vendor,
        kind,
        document: raw.document,
        max_gap_registers: raw.max_gap_registers.unwrap_or(DEFAULT_MAX_GAP_REGISTERS),
        registers,
        channel,
        commands,
        origin: origin.to_owned(),
    })
}

/// Checks `[[commands]]`: a writable table, a value the table can hold, and
/// an address that exists for every socket.
fn convert_commands(
    src: &SourceFile,
    raws: &[RawCommand],
    channel: Option<&Channel>,
) -> Result<Vec<WritePoint>, FieldError> {
    let mut out: Vec<WritePoint> = Vec::with_capacity(raws.len());
    for (i, raw) in raws.iter().enumerate() {
        let path = |field: &str| format!("commands[{i}].{field}");
        let action = raw.action.get_ref();
        if let Err(why) = check_value_name(action) {
            return Err(src.error(raw.action.span(), path("action"), why));
        }
        if let Some(prev) = out.iter().find(|p| p.action == *action) {
            return Err(src.error(
                raw.action.span(),
                path("action"),
                format!("{action:?} is already defined at line {}", prev.line),
            ));
        }
        let function = *raw.function.get_ref();
        let value = *raw.value.get_ref();
        match function {
            Function::Coils if value > 1 => {
                return Err(src.error(
                    raw.value.span(),
                    path("value"),
                    format!("a coil is written 0 (off) or 1 (on), not {value}"),
                ))
            }
            Function::Coils | Function::Holding => {}
            other => {
                return Err(src.error(
                    raw.function.span(),
                    path("function"),
                    format!("{other} is read-only; commands write \"coils\" or \"holding\""),
                ))
            }
        }
        let address = *raw.address.get_ref();
        let socket_stride = match (&raw.socket_stride, channel) {
            (None, _) => None,
            (Some(s), None) => {
                return Err(src.error(
                    s.span(),
                    path("socket_stride"),
                    "the profile has no [channel], so there are no sockets to address",
                ))
            }
            (Some(s), Some(ch)) => {
                let last = u32::from(address)
                    + u32::from(*s.get_ref()) * u32::from(ch.max_count().saturating_sub(1));
                if last > u32::from(u16::MAX) {
                    return Err(src.error(
                        s.span(),
                        path("socket_stride"),
                        format!(
                            "socket {} would be written at {last}, past address 65535",
                            ch.max_count()
                        ),
                    ));
                }
                Some(*s.get_ref())
            }
        };
        out.push(WritePoint {
            action: action.clone(),
            function,
            address,
            socket_stride,
            value,
            result: raw.result.clone(),
            line: src.location(raw.action.span().start).line,
        });
    }
    Ok(out)
}

fn convert_channel(
    src: &SourceFile,
    raw: &Spanned<RawChannel>,
    device_kind: DeviceKind,
    device_registers: &[Register],
    defaults: &Defaults,
) -> Result<Channel, FieldError> {
    let ch = raw.get_ref();
    if ch.name.get_ref() != "socket" {
        return Err(src.error(
            ch.name.span(),
            "channel.name",
            format!(
                "{:?} is not supported: readings carry only a socket number, \
                 so the repeated block must be named \"socket\"",
                ch.name.get_ref()
            ),
        ));
    }
    let kind = match (ch.kind, device_kind) {
        (Some(k), _) => k,
        (None, DeviceKind::ChargingPile) => DeviceKind::ChargingSocket,
        (None, _) => {
            return Err(src.error(
                raw.span(),
                "channel.kind",
                format!(
                    "missing: say what each channel's reading is (one of {}); \
                     only a charging_pile profile defaults it (to charging_socket)",
                    list(DeviceKind::ALL)
                ),
            ))
        }
    };
    let stride = *ch.stride.get_ref();
    if stride == 0 {
        return Err(src.error(ch.stride.span(), "channel.stride", "must be at least 1"));
    }

    let count = match (&ch.count, &ch.count_register, &ch.max_count) {
        (Some(n), None, None) => {
            if *n.get_ref() == 0 {
                return Err(src.error(n.span(), "channel.count", "must be at least 1"));
            }
            ChannelCount::Fixed(*n.get_ref())
        }
        (None, Some(reg), Some(max)) => {
            let Some(source) = device_registers.iter().find(|r| r.name == *reg.get_ref()) else {
                return Err(src.error(
                    reg.span(),
                    "channel.count_register",
                    format!(
                        "names {:?}, which is not one of the device-level registers ({})",
                        reg.get_ref(),
                        list(device_registers.iter().map(|r| &r.name))
                    ),
                ));
            };
            if !source.value_type.is_integer() || !source.is_emitted() {
                return Err(src.error(
                    reg.span(),
                    "channel.count_register",
                    format!(
                        "register {:?} must be an integer register without `expect`",
                        source.name
                    ),
                ));
            }
            if *max.get_ref() == 0 {
                return Err(src.error(max.span(), "channel.max_count", "must be at least 1"));
            }
            ChannelCount::FromRegister {
                register: reg.get_ref().clone(),
                max: *max.get_ref(),
            }
        }
        (None, Some(reg), None) => {
            return Err(src.error(
                reg.span(),
                "channel.max_count",
                "missing: with `count_register`, say the most channels this model has",
            ))
        }
        _ => {
            return Err(src.error(
                raw.span(),
                "channel.count",
                "give either `count = N`, or `count_register = \"name\"` with `max_count = N`",
            ))
        }
    };

    let max_count = match &count {
        ChannelCount::Fixed(n) => *n,
        ChannelCount::FromRegister { max, .. } => *max,
    };
    let area_end = u32::from(ch.base) + u32::from(stride) * u32::from(max_count);
    if area_end > 65_536 {
        return Err(src.error(
            raw.span(),
            "channel",
            format!(
                "{max_count} blocks of {stride} registers from {} run past address 65535",
                ch.base
            ),
        ));
    }

    let registers = convert_registers(src, &ch.registers, Scope::Channel { stride }, defaults)?;

    // A device-level register inside the channel area would be read twice
    // and mean two things.
    for r in device_registers {
        let start = u32::from(r.address);
        let end = start + u32::from(r.len());
        let clashes = registers.iter().any(|c| c.function == r.function);
        if clashes && start < area_end && end > u32::from(ch.base) {
            return Err(FieldError {
                location: Location {
                    origin: src.origin().to_owned(),
                    line: r.line,
                    column: 1,
                },
                field: format!("registers ({:?})", r.name),
                message: format!(
                    "{} {} lies inside the channel area {}..={}; \
                     each address must mean one thing",
                    r.function,
                    range_text(r.address, r.len()),
                    ch.base,
                    area_end - 1
                ),
            });
        }
    }

    Ok(Channel {
        name: ch.name.get_ref().clone(),
        kind,
        base: ch.base,
        stride,
        count,
        registers,
    })
}

fn convert_registers(
    src: &SourceFile,
    raws: &[RawRegister],
    scope: Scope,
    defaults: &Defaults,
) -> Result<Vec<Register>, FieldError> {
    let expanded = range::expand(src, raws, scope.path(), defaults)?;
    let mut out: Vec<Register> = Vec::with_capacity(expanded.len());
    for (i, raw) in &expanded {
        let path = format!("{}[{i}]", scope.path());
        let reg = convert_register(src, raw, &path, scope, defaults)?;
        if let Some(prev) = out.iter().find(|p| p.name == reg.name) {
            return Err(src.error(
                raw.name.span(),
                format!("{path}.name"),
                format!("{:?} is already used at line {}", reg.name, prev.line),
            ));
        }
        let (start, end) = (
            u32::from(reg.address),
            u32::from(reg.address) + u32::from(reg.len()),
        );
        if let Some(prev) = out.iter().find(|p| {
            let (ps, pe) = (
                u32::from(p.address),
                u32::from(p.address) + u32::from(p.len()),
            );
            p.function == reg.function && start < pe && ps < end
        }) {
            return Err(src.error(
                raw.address.as_ref().map_or(raw.name.span(), |a| a.span()),
                format!("{path}.address"),
                format!(
                    "{:?} ({} {}) overlaps {:?} ({} {}, line {})",
                    reg.name,
                    reg.function,
                    range_text(reg.address, reg.len()),
                    prev.name,
                    prev.function,
                    range_text(prev.address, prev.len()),
                    prev.line
                ),
            ));
        }
        out.push(reg);
    }
    Ok(out)
}

/// `100..=112`, or `7` for a single register.
pub(crate) fn range_text(start: u16, len: u16) -> String {
    if len <= 1 {
        format!("{start}")
    } else {
        format!("{start}..={}", u32::from(start) + u32::from(len) - 1)
    }
}
