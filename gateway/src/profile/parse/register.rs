//! One `[[registers]]` table (after `range.rs` expanded ranges) into a
//! [`Register`]: its name, function, address, type with its length, scale,
//! unit and deadband, each checked against the others.

use super::{Defaults, RawRegister, RawType, Scope};
use crate::profile::{units, Function, Register, ValueType};
use crate::toml_file::{list, FieldError, SourceFile};
use std::collections::BTreeMap;
use toml::Spanned;

pub(super) fn convert_register(
    src: &SourceFile,
    raw: &RawRegister,
    path: &str,
    scope: Scope,
    defaults: &Defaults,
) -> Result<Register, FieldError> {
    let name = raw.name.get_ref();
    if let Err(why) = check_value_name(name) {
        return Err(src.error(raw.name.span(), format!("{path}.name"), why));
    }
    let function = raw.function.unwrap_or(defaults.function);
    let value_type = value_type(src, raw, path, function)?;
    // `range::expand` gave every register an address or refused it.
    let Some(at) = &raw.address else {
        return Err(src.error(raw.name.span(), format!("{path}.address"), "missing"));
    };
    let address = *at.get_ref();
    let end = u32::from(address) + u32::from(value_type.words());
    match scope {
        Scope::Device if end > 65_536 => {
            return Err(src.error(
                at.span(),
                format!("{path}.address"),
                format!(
                    "a {value_type} needs {} registers, which run past address 65535",
                    value_type.words()
                ),
            ))
        }
        Scope::Channel { stride } if end > u32::from(stride) => {
            return Err(src.error(
                at.span(),
                format!("{path}.address"),
                format!(
                    "a {value_type} at offset {address} needs {} registers, \
                     which run past the block of {stride} (`channel.stride`)",
                    value_type.words()
                ),
            ))
        }
        _ => {}
    }

    let scale = match &raw.scale {
        Some(s) if !s.get_ref().is_finite() || *s.get_ref() == 0.0 => {
            return Err(src.error(
                s.span(),
                format!("{path}.scale"),
                "must be a finite number other than 0",
            ))
        }
        Some(s) => *s.get_ref(),
        None => 1.0,
    };
    let offset = match &raw.offset {
        Some(o) if !o.get_ref().is_finite() => {
            return Err(src.error(o.span(), format!("{path}.offset"), "must be finite"))
        }
        Some(o) => *o.get_ref(),
        None => 0.0,
    };

    let mut meanings = BTreeMap::new();
    if let Some(values) = &raw.values {
        if !value_type.is_integer() {
            return Err(src.error(
                values.span(),
                format!("{path}.values"),
                format!("enumerated meanings need an integer type, not {value_type}"),
            ));
        }
        for (key, meaning) in values.get_ref() {
            let Ok(k) = key.trim().parse::<i64>() else {
                return Err(src.error(
                    values.span(),
                    format!("{path}.values"),
                    format!("key {key:?} is not a whole number"),
                ));
            };
            meanings.insert(k, meaning.clone());
        }
    }
    if let Some(expect) = &raw.expect {
        if !value_type.is_integer() {
            return Err(src.error(
                expect.span(),
                format!("{path}.expect"),
                format!("`expect` needs an integer type, not {value_type}"),
            ));
        }
    }
    if let Some(text) = &raw.expect_text {
        if !value_type.is_text() {
            return Err(src.error(
                text.span(),
                format!("{path}.expect_text"),
                format!("`expect_text` needs type \"string\", not {value_type}; use `expect` for numbers"),
            ));
        }
    }
    if let Some(unit) = &raw.unit {
        if !units::is_known(unit.get_ref()) {
            return Err(src.error(
                unit.span(),
                format!("{path}.unit"),
                format!(
                    "{:?} is not a known unit; known units: {}",
                    unit.get_ref(),
                    list(units::KNOWN.iter())
                ),
            ));
        }
    }
    let deadband = match &raw.deadband {
        Some(d) if !d.get_ref().is_finite() || *d.get_ref() < 0.0 => {
            return Err(src.error(
                d.span(),
                format!("{path}.deadband"),
                "must be a finite number of at least 0",
            ))
        }
        Some(d) => *d.get_ref(),
        None => 0.0,
    };
    if value_type.is_text() {
        let numeric = [
            ("scale", raw.scale.as_ref().map(Spanned::span)),
            ("offset", raw.offset.as_ref().map(Spanned::span)),
            ("values", raw.values.as_ref().map(Spanned::span)),
            ("deadband", raw.deadband.as_ref().map(Spanned::span)),
            ("unit", raw.unit.as_ref().map(Spanned::span)),
        ];
        if let Some((field, Some(span))) = numeric.into_iter().find(|(_, s)| s.is_some()) {
            return Err(src.error(
                span,
                format!("{path}.{field}"),
                "a string is text, not a number: it takes no scale, offset, values, deadband or unit",
            ));
        }
    }

    Ok(Register {
        name: name.clone(),
        function,
        address,
        value_type,
        byte_order: raw.byte_order.unwrap_or(defaults.byte_order),
        word_order: raw.word_order.unwrap_or(defaults.word_order),
        scale,
        offset,
        unit: raw.unit.as_ref().map(|u| u.get_ref().clone()),
        meanings,
        expect: raw.expect.as_ref().map(|e| *e.get_ref()),
        expect_text: raw.expect_text.as_ref().map(|e| e.get_ref().clone()),
        bit: raw.bit.as_ref().map(|b| *b.get_ref()),
        deadband,
        line: src.location(raw.name.span().start).line,
    })
}

/// The register's type with its length, checked against the table, `count`
/// and `bit`.
pub(super) fn value_type(
    src: &SourceFile,
    raw: &RawRegister,
    path: &str,
    function: Function,
) -> Result<ValueType, FieldError> {
    let span = raw.value_type.span();
    let value_type = match raw.value_type.get_ref() {
        RawType::U16 => ValueType::U16,
        RawType::I16 => ValueType::I16,
        RawType::U32 => ValueType::U32,
        RawType::I32 => ValueType::I32,
        RawType::U64 => ValueType::U64,
        RawType::I64 => ValueType::I64,
        RawType::F32 => ValueType::F32,
        RawType::F64 => ValueType::F64,
        RawType::Bool => ValueType::Bool,
        RawType::Bcd16 => ValueType::Bcd16,
        RawType::Bcd32 => ValueType::Bcd32,
        RawType::String => match &raw.count {
            Some(c) if (1..=crate::profile::MAX_READ_REGISTERS).contains(c.get_ref()) => {
                ValueType::String {
                    words: *c.get_ref(),
                }
            }
            Some(c) => {
                return Err(src.error(
                    c.span(),
                    format!("{path}.count"),
                    "a string occupies 1 to 125 registers",
                ))
            }
            None => {
                return Err(src.error(
                    span,
                    format!("{path}.count"),
                    "missing: a string needs `count`, the registers it occupies \
                     (two characters each)",
                ))
            }
        },
    };
    if let Some(c) = &raw.count {
        if *c.get_ref() != value_type.words() {
            return Err(src.error(
                c.span(),
                format!("{path}.count"),
                format!(
                    "says {} but a {value_type} occupies {} {}",
                    c.get_ref(),
                    value_type.words(),
                    if function.is_bits() {
                        "bit"
                    } else {
                        "registers"
                    }
                ),
            ));
        }
    }
    if function.is_bits() && value_type != ValueType::Bool {
        return Err(src.error(
            span,
            format!("{path}.type"),
            format!("{function}s hold single bits, so the type must be \"bool\", not {value_type}"),
        ));
    }
    if let Some(bit) = &raw.bit {
        if value_type != ValueType::Bool || function.is_bits() {
            return Err(src.error(
                bit.span(),
                format!("{path}.bit"),
                "`bit` picks a flag out of a register: it needs type \"bool\" in a holding or input register",
            ));
        }
        if *bit.get_ref() > 15 {
            return Err(src.error(
                bit.span(),
                format!("{path}.bit"),
                format!("a register has bits 0 to 15, not {}", bit.get_ref()),
            ));
        }
    }
    Ok(value_type)
}

/// Value names become JSON keys and InfluxDB field names: keep them plain.
pub(super) fn check_value_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 64 {
        return Err(format!("{name:?} is longer than 64 bytes"));
    }
    let ok_start = name.starts_with(|c: char| c.is_ascii_lowercase());
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !(ok_start && ok_rest) {
        return Err(format!(
            "{name:?} must start with a lower-case letter and use only a-z, 0-9 and '_' \
             (with the unit as suffix, e.g. current_a)"
        ));
    }
    Ok(())
}
