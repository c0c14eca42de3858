//! Where a config or profile value came from, so every error can say
//! `file:line:column: field: what is wrong`.
//!
//! Installers edit these files by hand on a Raspberry Pi over SSH; an error
//! that names the line and the field saves them a hunt. The gateway config and
//! the device profiles share this one parser, so both report problems the same
//! way: TOML syntax errors, missing fields, wrong types and unknown fields come
//! from serde (with the field path tracked by `serde_path_to_error`), and the
//! checks made after parsing use the spans kept by [`toml::Spanned`].

use serde::de::DeserializeOwned;
use std::fmt;
use std::ops::Range;
use thiserror::Error;

/// A position in a source file, 1-based, as editors count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file name or another label for the text (`built-in profile gridwatch-ebp12`).
    pub origin: String,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.origin, self.line, self.column)
    }
}

/// A problem with one field of a TOML file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{location}: {field}: {message}")]
pub struct FieldError {
    /// Where the offending value (or table) starts.
    pub location: Location,
    /// The field's path, e.g. `devices[1].port`; `(document)` for syntax errors.
    pub field: String,
    /// What is wrong, as a sentence fragment a person can act on.
    pub message: String,
}

/// The text of one TOML file and the name to report it under.
#[derive(Debug, Clone)]
pub struct SourceFile {
    origin: String,
    text: String,
}

/// The serde field name `toml::Spanned` uses internally; it leaks into paths
/// reported by `serde_path_to_error` and means nothing to a person.
const SPANNED_PRIVATE: &str = "$__serde_spanned_private_";

impl SourceFile {
    /// Wraps `text`, to be reported as `origin` (usually the file path).
    pub fn new(origin: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            text: text.into(),
        }
    }

    /// The name errors are reported under.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The line and column of byte `offset`.
    pub fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        // Back off to a char boundary so slicing cannot panic on odd spans.
        let mut offset = offset;
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location {
            origin: self.origin.clone(),
            line,
            column,
        }
    }

    /// An error about `field`, whose value spans `span`.
    pub fn error(
        &self,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> FieldError {
        FieldError {
            location: self.location(span.start),
            field: field.into(),
            message: message.into(),
        }
    }

    /// Parses the whole text as `T`, naming the field of the first problem.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, FieldError> {
        let deserializer = toml::Deserializer::parse(&self.text).map_err(|e| FieldError {
            location: self.location(e.span().map_or(0, |s| s.start)),
            field: "(document)".into(),
            message: format!("TOML syntax error: {}", e.message().trim_end()),
        })?;
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = clean_path(&e.path().to_string());
            let inner = e.into_inner();
            FieldError {
                location: self.location(inner.span().map_or(0, |s| s.start)),
                field: if path.is_empty() || path == "." {
                    "(document)".into()
                } else {
                    path
                },
                message: inner.message().trim_end().to_owned(),
            }
        })
    }
}

/// Drops the `toml::Spanned` internals from a serde path:
/// `devices[0].$__serde_spanned_private_value.port` → `devices[0].port`.
fn clean_path(path: &str) -> String {
    path.split('.')
        .filter(|seg| !seg.starts_with(SPANNED_PRIVATE))
        .collect::<Vec<_>>()
        .join(".")
}

/// A `[a, b, c]`-style list for "known values" in error messages.
pub fn list<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: fmt::Display,
{
    let v: Vec<String> = items.into_iter().map(|s| s.to_string()).collect();
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

/// Checks that an optional number lies in `min..=max`, naming the field and
/// the limits; `default` when it is absent.
pub fn bounded<T>(
    src: &SourceFile,
    value: &Option<toml::Spanned<T>>,
    default: T,
    field: &str,
    min: T,
    max: T,
) -> Result<T, FieldError>
where
    T: Copy + PartialOrd + std::fmt::Display,
{
    match value {
        None => Ok(default),
        Some(v) if *v.get_ref() < min || *v.get_ref() > max => Err(src.error(
            v.span(),
            field,
            format!("{} is out of range; use {min} to {max}", v.get_ref()),
        )),
        Some(v) => Ok(*v.get_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use toml::Spanned;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        #[serde(default)]
        items: Vec<Spanned<Item>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        port: u16,
    }

    #[test]
    fn locations_count_lines_and_characters_from_one() {
        let s = SourceFile::new("f.toml", "a = 1\nbé = 2\n");
        assert_eq!(s.location(0).line, 1);
        let loc = s.location(9); // the space after "bé": 'é' is two bytes, one column
        assert_eq!((loc.line, loc.column), (2, 3));
        assert_eq!(s.location(10_000).line, 3);
    }

    #[test]
    fn wrong_type_in_array_of_tables_names_index_and_field() {
        let s = SourceFile::new(
            "f.toml",
            "name = \"x\"\n[[items]]\nport = 1\n[[items]]\nport = \"no\"\n",
        );
        let e = s.parse::<Doc>().unwrap_err();
        assert_eq!(e.field, "items[1].port");
        assert_eq!(e.location.line, 5);
        assert!(e.message.contains("expected u16"), "{e}");
    }

    #[test]
    fn syntax_error_names_its_line() {
        let s = SourceFile::new("f.toml", "name = \"x\"\nport = = 3\n");
        let e = s.parse::<Doc>().unwrap_err();
        assert_eq!(e.location.line, 2);
        assert!(e.to_string().starts_with("f.toml:2:"), "{e}");
    }

    #[test]
    fn unknown_field_is_refused_with_its_name() {
        let s = SourceFile::new("f.toml", "name = \"x\"\n[[items]]\nprot = 1\n");
        let e = s.parse::<Doc>().unwrap_err();
        assert!(e.message.contains("unknown field `prot`"), "{e}");
        assert_eq!(e.location.line, 3);
    }
}
