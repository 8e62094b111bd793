//! Where a key stands in the config text, so that a value refused after parsing (a
//! duplicate, a contradiction between two keys) is reported at its line and column, and
//! a parse error names the key it is about.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A value that parsed but cannot be used: the key that holds it, the list entry if it
/// is one, and why. Each section checks its own values and returns these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `""` for a top-level key.
    pub section: &'static str,
    pub key: &'static str,
    pub entry: Option<usize>,
    /// Another key of the section the refusal is about, pointed at when `key` is not in
    /// the file (it holds its default, and the value written is this one).
    pub other: Option<&'static str>,
    pub reason: String,
}

impl Refusal {
    pub fn new(section: &'static str, key: &'static str, reason: impl Into<String>) -> Self {
        Refusal {
            section,
            key,
            entry: None,
            other: None,
            reason: reason.into(),
        }
    }

    pub fn or_at(mut self, other: &'static str) -> Self {
        self.other = Some(other);
        self
    }

    pub fn entry(mut self, index: usize) -> Self {
        self.entry = Some(index);
        self
    }

    /// `section.key`, `section.key[3]`, or `key` at the top level.
    pub fn path(&self) -> String {
        let mut p = if self.section.is_empty() {
            self.key.to_owned()
        } else {
            format!("{}.{}", self.section, self.key)
        };
        if let Some(i) = self.entry {
            p.push_str(&format!("[{i}]"));
        }
        p
    }
}

/// The parsed document with the span of every key and value.
pub struct Positions<'t>(Option<Spanned<DeTable<'t>>>);

impl<'t> Positions<'t> {
    pub fn new(text: &'t str) -> Self {
        Positions(DeTable::parse(text).ok())
    }

    /// Where `refusal` points: its entry, else its key's value, else its section, else
    /// the start of the file (a default that conflicts with a value set elsewhere).
    pub fn of(&self, refusal: &Refusal) -> Option<Range<usize>> {
        let top = self.0.as_ref()?.get_ref();
        let (table, table_span) = if refusal.section.is_empty() {
            (top, None)
        } else {
            let section = top.get(refusal.section)?;
            match section.get_ref() {
                DeValue::Table(t) => (t, Some(section.span())),
                _ => return Some(section.span()),
            }
        };
        let Some(value) = table.get(refusal.key).or_else(|| table.get(refusal.other?)) else {
            return table_span.filter(|s| !s.is_empty());
        };
        match (value.get_ref(), refusal.entry) {
            (DeValue::Array(items), Some(i)) => items.get(i).map(|v| v.span()),
            _ => None,
        }
        .or(Some(value.span()))
    }

    /// The dotted path of the innermost key whose value holds `at` (for parse errors).
    pub fn key_at(&self, at: usize) -> Option<String> {
        fn walk(table: &DeTable<'_>, at: usize) -> Option<Vec<String>> {
            for (k, v) in table.iter() {
                if let DeValue::Table(t) = v.get_ref()
                    && let Some(mut inner) = walk(t, at)
                {
                    inner.insert(0, k.get_ref().to_string());
                    return Some(inner);
                }
                if v.span().contains(&at) || k.span().contains(&at) {
                    return Some(vec![k.get_ref().to_string()]);
                }
            }
            None
        }
        walk(self.0.as_ref()?.get_ref(), at).map(|p| p.join("."))
    }
}
