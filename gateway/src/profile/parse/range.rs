//! Register ranges: one `[[registers]]` entry for a block of registers of
//! one type, `range = "0-99"` with a name pattern such as `"reg{n}"`.
//!
//! Other gateways take a block in one line; without this a 100-register
//! block is 100 tables. The entry expands, before anything else is checked,
//! into one register per element, so every later check (overlaps, names,
//! types) sees ordinary registers. In the name, `{n}` is the element's
//! address and `{i}` its index from 0.

use super::{value_type, Defaults, RawRegister};
use crate::toml_file::{FieldError, SourceFile};
use toml::Spanned;

/// Values one range may hold at most: more is not one device's values,
/// and each is checked against the others for overlaps.
const MAX_ELEMENTS: u32 = 2_000;

/// `raws` with every `range` entry expanded, each register paired with the
/// index of the table it came from (for error paths like `registers[3]`).
pub(super) fn expand(
    src: &SourceFile,
    raws: &[RawRegister],
    scope_path: &str,
    defaults: &Defaults,
) -> Result<Vec<(usize, RawRegister)>, FieldError> {
    let mut out = Vec::with_capacity(raws.len());
    for (i, raw) in raws.iter().enumerate() {
        let path = format!("{scope_path}[{i}]");
        match (&raw.address, &raw.range) {
            (Some(_), None) => out.push((i, raw.clone())),
            (None, None) => {
                return Err(src.error(
                    raw.name.span(),
                    format!("{path}.address"),
                    "missing: give address (one value) or range (a block, \"0-99\")",
                ))
            }
            (Some(a), Some(_)) => {
                return Err(src.error(
                    a.span(),
                    format!("{path}.address"),
                    "give address or range, not both",
                ))
            }
            (None, Some(range)) => {
                let function = raw.function.unwrap_or(defaults.function);
                let words = u32::from(value_type(src, raw, &path, function)?.words());
                let (start, end) = bounds(range.get_ref()).ok_or_else(|| {
                    src.error(
                        range.span(),
                        format!("{path}.range"),
                        format!(
                            "{:?} is not a range of addresses; write \"first-last\", e.g. \"0-99\" or \"0x0100-0x011F\"",
                            range.get_ref()
                        ),
                    )
                })?;
                let len = end - start + 1;
                if len % words != 0 || len / words > MAX_ELEMENTS {
                    return Err(src.error(
                        range.span(),
                        format!("{path}.range"),
                        format!(
                            "{len} registers are not a whole number of {}-register values",
                            words
                        ),
                    ));
                }
                let pattern = raw.name.get_ref();
                if len > words && !pattern.contains("{n}") && !pattern.contains("{i}") {
                    return Err(src.error(
                        raw.name.span(),
                        format!("{path}.name"),
                        format!(
                            "{pattern:?} names every value of the range alike; put {{n}} \
                             (the address) or {{i}} (the index) in it, e.g. \"reg{{n}}\""
                        ),
                    ));
                }
                for (index, address) in (start..=end).step_by(words as usize).enumerate() {
                    let name = pattern
                        .replace("{n}", &address.to_string())
                        .replace("{i}", &index.to_string());
                    let mut one = raw.clone();
                    one.name = Spanned::new(raw.name.span(), name);
                    // `bounds` keeps addresses below 65536.
                    one.address = Some(Spanned::new(
                        range.span(),
                        u16::try_from(address).unwrap_or(u16::MAX),
                    ));
                    one.range = None;
                    out.push((i, one));
                }
            }
        }
    }
    Ok(out)
}

/// `"first-last"` (decimal or `0x` hex, inclusive) as numbers, first ≤ last
/// ≤ 65535; a single address is a range of one.
fn bounds(text: &str) -> Option<(u32, u32)> {
    let number = |s: &str| {
        let s = s.trim();
        let n = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => s.parse::<u32>().ok()?,
        };
        (n <= 65_535).then_some(n)
    };
    let (start, end) = match text.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => (number(text)?, number(text)?),
    };
    (start <= end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::bounds;

    #[test]
    fn bounds_read_decimal_and_hex_inclusive() {
        assert_eq!(bounds("0-99"), Some((0, 99)));
        assert_eq!(bounds(" 0x0100 - 0x011F "), Some((256, 287)));
        assert_eq!(bounds("7"), Some((7, 7)));
        assert_eq!(bounds("9-3"), None);
        assert_eq!(bounds("0-65536"), None);
        assert_eq!(bounds("a-b"), None);
    }
}
