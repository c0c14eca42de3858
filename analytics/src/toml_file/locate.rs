//! Finding where in a TOML file a field sits, so that every config error can
//! name the file, the line and the field.
//!
//! serde tells us *what* is wrong but, after deserialising, no longer knows
//! *where*. Rather than wrap every config field in `toml::Spanned` (which
//! would leak into every detector's config type), the text is parsed a second
//! time into toml's spanned document tree and the field is looked up there.

use std::fmt;
use std::ops::Range;
use toml::de::{DeTable, DeValue};

/// One step of a path to a config field: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A key in a table (`detect`, `overcurrent_a`).
    Key(String),
    /// An element of an array of tables (`[[cells.sites]]` number `n`, from 0).
    Index(usize),
}

/// A path to a config field, shown as `cells.sites[1].cell`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    /// The path made of these keys.
    pub fn keys(keys: &[&str]) -> Self {
        Self(keys.iter().map(|k| Segment::Key((*k).to_owned())).collect())
    }

    /// This path with `other` appended.
    pub fn join(mut self, other: FieldPath) -> Self {
        self.0.extend(other.0);
        self
    }

    /// This path with one more key.
    pub fn key(mut self, key: &str) -> Self {
        self.0.push(Segment::Key(key.to_owned()));
        self
    }

    /// This path with one more index.
    pub fn index(mut self, i: usize) -> Self {
        self.0.push(Segment::Index(i));
        self
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if n == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// A 1-based line and column in the config text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

/// The line and column of byte offset `offset` in `text`.
pub fn position(text: &str, offset: usize) -> Position {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    Position { line, column }
}

/// Where the field at `path` is written, or the nearest enclosing table that
/// is written when the field itself is not (it took its default). `None` when
/// the text does not parse or nothing on the path is written.
pub fn locate(text: &str, path: &FieldPath) -> Option<Position> {
    let doc = DeTable::parse(text).ok()?;
    let mut best: Option<Range<usize>> = None;
    let mut table: &DeTable<'_> = doc.get_ref();
    let mut value: Option<&DeValue<'_>> = None;
    for seg in &path.0 {
        let next = match (seg, value) {
            (Segment::Key(k), None) => table.get_key_value(k.as_str()),
            (Segment::Key(k), Some(DeValue::Table(t))) => {
                table = t;
                table.get_key_value(k.as_str())
            }
            (Segment::Index(i), Some(DeValue::Array(a))) => {
                let item = a.get(*i)?;
                best = Some(item.span());
                value = Some(item.get_ref());
                continue;
            }
            _ => None,
        };
        match next {
            Some((key, val)) => {
                best = Some(key.span());
                value = Some(val.get_ref());
            }
            None => break,
        }
    }
    best.map(|span| position(text, span.start))
}

/// The path of the deepest field whose key or value covers byte `offset`
/// (where toml reported a type error or an unknown key).
pub fn field_at(text: &str, offset: usize) -> Option<FieldPath> {
    let doc = DeTable::parse(text).ok()?;
    let mut path = FieldPath::default();
    find_in_table(doc.get_ref(), offset, &mut path).then_some(path)
}

fn find_in_table(table: &DeTable<'_>, offset: usize, path: &mut FieldPath) -> bool {
    for (key, val) in table.iter() {
        path.0.push(Segment::Key(key.get_ref().to_string()));
        if find_in_value(val.get_ref(), offset, path)
            || key.span().contains(&offset)
            || (val.span().contains(&offset) && !val.get_ref().is_table())
        {
            return true;
        }
        path.0.pop();
    }
    false
}

fn find_in_value(value: &DeValue<'_>, offset: usize, path: &mut FieldPath) -> bool {
    match value {
        DeValue::Table(t) => find_in_table(t, offset, path),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.0.push(Segment::Index(i));
                if find_in_value(item.get_ref(), offset, path) || item.span().contains(&offset) {
                    return true;
                }
                path.0.pop();
            }
            false
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[mqtt]\nport = 1883\n\n[[cells.sites]]\nsite = \"a\"\ncell = \"c1\"\n\n[[cells.sites]]\nsite = \"b\"\ncell = \"c2\"\n";

    #[test]
    fn finds_keys_in_tables_and_arrays_of_tables() {
        let p = locate(TEXT, &FieldPath::keys(&["mqtt", "port"])).unwrap();
        assert_eq!((p.line, p.column), (2, 1));
        let p = locate(
            TEXT,
            &FieldPath::keys(&["cells", "sites"]).index(1).key("cell"),
        )
        .unwrap();
        assert_eq!(p.line, 10);
    }

    #[test]
    fn a_field_left_at_its_default_points_at_its_table() {
        let p = locate(TEXT, &FieldPath::keys(&["mqtt", "host"])).unwrap();
        assert_eq!(p.line, 1);
    }

    #[test]
    fn an_offset_maps_back_to_its_field() {
        let offset = TEXT.find("\"c2\"").unwrap();
        let path = field_at(TEXT, offset).unwrap();
        assert_eq!(path.to_string(), "cells.sites[1].cell");
    }
}
