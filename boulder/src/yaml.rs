//! A YAML document as a tree of nodes that remember where they came from.
//!
//! Recipes are read in two steps: serde-saphyr parses the text into [`Node`]s (each with its line,
//! column and raw scalar text), then the recipe model walks the tree. Walking by hand rather than
//! deriving `Deserialize` is what lets us warn about unknown keys with their line, accept the
//! legacy `yes`/`no` booleans with a warning, and keep an unquoted `1.10` as `1.10`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A position in a file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Mark {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

impl fmt::Display for Mark {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.line, self.column)
    }
}

/// One node of the document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub value: Value,
    /// Where the node starts.
    pub mark: Mark,
    /// The scalar exactly as written (unquoted content), when the parser reported its span.
    pub raw: Option<String>,
}

/// The content of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// A YAML 1.2 boolean.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A short name of the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The scalar as text: strings as they are, numbers as written (so `1.10` stays `1.10`),
    /// booleans as `true`/`false`. `None` for null, lists and mappings.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(text) => Some(text.clone()),
            Value::Int(number) => Some(self.raw_number().unwrap_or_else(|| number.to_string())),
            Value::Float(number) => Some(self.raw_number().unwrap_or_else(|| number.to_string())),
            Value::Bool(flag) => Some(flag.to_string()),
            _ => None,
        }
    }

    fn raw_number(&self) -> Option<String> {
        let raw = self.raw.as_deref()?.trim();
        (!raw.is_empty() && !raw.contains(['\n', '#', ':'])).then(|| raw.to_owned())
    }
}

/// Parse a document. An empty document is a null node.
pub fn parse(text: &str) -> Result<Node, serde_saphyr::Error> {
    let spanned: Spanned<Value> = serde_saphyr::from_str(text)?;
    Ok(child(spanned).resolve(text))
}

impl Node {
    /// Replace the span markers left by [`child`] with the source text they point at.
    fn resolve(mut self, text: &str) -> Node {
        self.raw = self.raw.take().and_then(|marker| {
            let (offset, length) = marker.strip_prefix('\u{0}')?.split_once(':')?;
            let start: usize = offset.parse().ok()?;
            let length: usize = length.parse().ok()?;
            // Spans are character based; the byte offsets are only trusted on ASCII prefixes.
            text.get(start..start.checked_add(length)?)
                .map(str::to_owned)
        });
        self.value = match self.value {
            Value::Seq(items) => {
                Value::Seq(items.into_iter().map(|item| item.resolve(text)).collect())
            }
            Value::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(key, value)| (key.resolve(text), value.resolve(text)))
                    .collect(),
            ),
            other => other,
        };
        self
    }
}

/// Visitor for a node's content; children are read as `Spanned` so that they keep positions.
struct ValueVisitor;

fn child(spanned: Spanned<Value>) -> Node {
    // The raw text needs the source, which the visitor does not have: keep the span offsets in
    // `raw` as a marker and resolve them in `Node::resolve`.
    let location = spanned.referenced;
    let span = location.span();
    let raw = match (span.byte_offset(), span.byte_len()) {
        (Some(offset), Some(length)) => Some(format!("\u{0}{offset}:{length}")),
        _ => None,
    };
    Node {
        value: spanned.value,
        mark: Mark {
            line: location.line(),
            column: location.column(),
        },
        raw,
    }
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Int(value.into()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Int(value.into()))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<Value, E> {
        Ok(Value::Int(value))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<Value, E> {
        Ok(i128::try_from(value).map_or_else(|_| Value::Str(value.to_string()), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Ok(Value::Float(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::Str(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::Str(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(child(item));
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Value>>()? {
            let value = map.next_value::<Spanned<Value>>()?;
            entries.push((child(key), child(value)));
        }
        Ok(Value::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}
