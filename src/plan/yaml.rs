//! A positioned YAML tree: every node of `mapping.yaml` with the line and column it came
//! from, so that each refusal can point at the exact place.
//!
//! serde-saphyr parses (YAML 1.2 with the YAML 1.1 booleans `yes`/`no`/`on`/`off` and
//! legacy octal integers, as PyYAML reads them) and rejects duplicate keys; this module only
//! keeps the shape and the positions, the mapping model gives the nodes their meaning.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// One YAML node with its 1-based position (0 when unknown).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub line: usize,
    pub column: usize,
    /// Byte range of the node in the source, when the parser knows it.
    span: Option<(usize, usize)>,
}

/// The value of a node, as YAML's core types.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// What kind of value this is, for messages ("expected an integer, found a list").
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        let span = spanned.referenced.span();
        let span = span
            .byte_offset()
            .zip(span.byte_len())
            .and_then(|(o, l)| Some((usize::try_from(o).ok()?, usize::try_from(l).ok()?)));
        Ok(Node {
            value: spanned.value,
            line: usize::try_from(spanned.referenced.line()).unwrap_or(usize::MAX),
            column: usize::try_from(spanned.referenced.column()).unwrap_or(usize::MAX),
            span,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        i128::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(node) = seq.next_element::<Node>()? {
            items.push(node);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<Node, Node>()? {
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

/// Parses `text` (read from `file`) into a positioned tree; a YAML error (syntax, duplicate
/// key, …) becomes [`crate::Error::Input`] with the parser's position.
pub(crate) fn parse(file: &Path, text: &str) -> crate::Result<Node> {
    let options = serde_saphyr::options! {
        legacy_octal_numbers: true,
        with_snippet: false,
    };
    let mut root = serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|err| {
        let location = err.location();
        let known = location.filter(|l| l.line() > 0);
        crate::Error::Input {
            file: file.to_path_buf(),
            line: known.map(|l| usize::try_from(l.line()).unwrap_or(usize::MAX)),
            column: known.map(|l| usize::try_from(l.column()).unwrap_or(usize::MAX)),
            field: "yaml".into(),
            message: tidy(&err.without_snippet().to_string()),
        }
    })?;
    pyyaml_strings(&mut root, text);
    Ok(root)
}

/// PyYAML's booleans (YAML 1.1), as written.
const PYYAML_BOOLEANS: &[&str] = &[
    "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE", "on",
    "On", "ON", "off", "Off", "OFF",
];

/// Gives back their string meaning to plain scalars PyYAML reads as strings where the parser
/// does not: digits with a leading zero that are not octal (`08`, `0189`; a float in YAML
/// 1.2, which Python's `int()` then reads as decimal), and boolean-looking words outside
/// PyYAML's list (`y`, `n`, `yEs`).
fn pyyaml_strings(node: &mut Node, text: &str) {
    let raw = node.span.and_then(|(o, l)| text.get(o..o.checked_add(l)?));
    match &mut node.value {
        Value::Float(_) => {
            if let Some(raw) = raw {
                let digits = raw.trim_start_matches(['-', '+']);
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
                    node.value = Value::Str(raw.to_owned());
                }
            }
        }
        Value::Bool(_) => {
            if let Some(raw) = raw.filter(|r| !PYYAML_BOOLEANS.contains(r)) {
                node.value = Value::Str(raw.to_owned());
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|n| pyyaml_strings(n, text)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            pyyaml_strings(k, text);
            pyyaml_strings(v, text);
        }),
        _ => {}
    }
}

/// The parser's message without what we already say (the position) or what only a
/// programmer could act on (its option names).
fn tidy(message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(at) if message[at..].contains(", column ") => &message[..at],
        _ => message,
    };
    match message.find(", set DuplicateKeyPolicy") {
        Some(at) => format!("{} (each key may appear once)", &message[..at]),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> crate::Result<Node> {
        parse(Path::new("m.yaml"), text)
    }

    #[test]
    fn positions_and_types() {
        let node =
            tree("defaults:\n  host_mtu: 9000\n  ok: yes\nlinks:\n  - [100, eth1, 102, 1]\n")
                .unwrap();
        let Value::Map(entries) = &node.value else {
            panic!("{node:?}")
        };
        let Value::Map(defaults) = &entries[0].1.value else {
            panic!()
        };
        assert_eq!(defaults[0].1.value, Value::Int(9000));
        assert_eq!((defaults[0].1.line, defaults[0].1.column), (2, 13));
        assert_eq!(defaults[1].1.value, Value::Bool(true));
        let Value::Seq(links) = &entries[1].1.value else {
            panic!()
        };
        let Value::Seq(link) = &links[0].value else {
            panic!()
        };
        assert_eq!(link[1].value, Value::Str("eth1".into()));
        assert_eq!((link[2].line, link[2].column), (5, 17));
    }

    #[test]
    fn scalars_mean_what_they_mean_to_pyyaml() {
        let node = tree("[08, -09, 010, 0o10, 1.5, 7, y, N, yEs, Off, 'yes']").unwrap();
        let Value::Seq(items) = node.value else {
            panic!()
        };
        let values: Vec<Value> = items.into_iter().map(|n| n.value).collect();
        assert_eq!(
            values,
            [
                Value::Str("08".into()),
                Value::Str("-09".into()),
                Value::Int(8),
                Value::Int(8),
                Value::Float(1.5),
                Value::Int(7),
                Value::Str("y".into()),
                Value::Str("N".into()),
                Value::Str("yEs".into()),
                Value::Bool(false),
                Value::Str("yes".into()),
            ]
        );
    }

    #[test]
    fn duplicate_key_is_refused_with_position() {
        let err = tree("links: []\nlinks: []\n").unwrap_err();
        let crate::Error::Input { line, message, .. } = err else {
            panic!()
        };
        assert_eq!(line, Some(2), "{message}");
    }
}
