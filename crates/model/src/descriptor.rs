//! Backstage descriptor files (`catalog-info.yaml`): multi-document YAML, each document one
//! entity. Every document is parsed on its own so one bad document does not hide the good ones.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::entity::{Entity, FieldError};

/// Documents larger than this are refused rather than parsed (hostile or accidental input).
pub const MAX_DESCRIPTOR_BYTES: usize = 4 * 1024 * 1024;

/// The most values (scalars, list items, mapping entries) one file's documents may expand to.
/// YAML aliases repeat the node they point at, so a few kilobytes can describe billions of
/// values ("billion laughs"); no real descriptor comes near this.
pub const MAX_DESCRIPTOR_VALUES: usize = 250_000;

/// The most string bytes (keys and values) one file's documents may expand to.
pub const MAX_DESCRIPTOR_TEXT_BYTES: usize = 16 * 1024 * 1024;

/// The deepest nesting of lists and mappings a descriptor may have. libyaml's scanner does work
/// in proportion to the flow depth for every token, so unbounded depth makes parsing quadratic
/// (80 KB of `{a: {a: ...` takes over a second); descriptors are a few levels deep.
pub const MAX_DESCRIPTOR_DEPTH: usize = 64;

/// One document of a descriptor file.
#[derive(Debug)]
pub struct Document {
    /// 0-based position of the document in the file.
    pub index: usize,
    /// 1-based line the document starts on, when known.
    pub line: Option<usize>,
    pub result: Result<Entity, DescriptorError>,
}

/// Why a document is not an entity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescriptorError {
    #[error("invalid YAML: {0}")]
    Yaml(String),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Fields(Vec<FieldError>),
}

impl DescriptorError {
    /// The first field at fault, when the error is about fields.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Fields(errors) => errors.first().map(|e| e.field.as_str()),
            Self::Yaml(_) => None,
        }
    }
}

/// Parses a descriptor file as read from disk or a forge: the size limit is checked before
/// anything else, then the bytes must be UTF-8 (the error names the line of the first bad byte).
pub fn parse_descriptor_bytes(bytes: &[u8]) -> Vec<Document> {
    if bytes.len() > MAX_DESCRIPTOR_BYTES {
        return vec![too_large(bytes.len())];
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_descriptors(text),
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
            vec![Document {
                index: 0,
                line: Some(line),
                result: Err(DescriptorError::Yaml(format!(
                    "not valid UTF-8: byte 0x{:02x} on line {line}",
                    bytes.get(e.valid_up_to()).copied().unwrap_or_default()
                ))),
            }]
        }
    }
}

fn too_large(len: usize) -> Document {
    Document {
        index: 0,
        line: None,
        result: Err(DescriptorError::Yaml(format!(
            "file is {len} bytes; descriptors are limited to {MAX_DESCRIPTOR_BYTES}"
        ))),
    }
}

/// Parses every document in `text`. Empty documents (`---` with nothing after) are skipped;
/// a YAML syntax error ends the file there, as no later document boundary can be trusted.
pub fn parse_descriptors(text: &str) -> Vec<Document> {
    if text.len() > MAX_DESCRIPTOR_BYTES {
        return vec![too_large(text.len())];
    }
    if let Err((line, message)) = check_shape(text) {
        return vec![Document {
            index: 0,
            line: Some(line),
            result: Err(DescriptorError::Yaml(message)),
        }];
    }
    let mut out = Vec::new();
    let mut budget = Budget {
        values: MAX_DESCRIPTOR_VALUES,
        text_bytes: MAX_DESCRIPTOR_TEXT_BYTES,
    };
    for (index, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
        match Bounded(&mut budget).deserialize(doc) {
            Ok(Value::Null) => continue,
            Ok(value) => out.push(Document {
                index,
                line: None,
                result: Entity::from_value(value).map_err(|e| DescriptorError::Fields(e.errors)),
            }),
            Err(e) => {
                let line = e.location().map(|l| l.line());
                out.push(Document {
                    index,
                    line,
                    result: Err(DescriptorError::Yaml(e.to_string())),
                });
                break;
            }
        }
    }
    out
}

/// Walks the YAML event stream before anything is built from it, stopping at the first list or
/// mapping nested deeper than [`MAX_DESCRIPTOR_DEPTH`] or the first node past
/// [`MAX_DESCRIPTOR_VALUES`] (before expansion: yaml_serde holds every event of a document in
/// memory, some 150 bytes each). Events come lazily, so stopping early keeps the cost linear.
/// Returns the 1-based line and the message. Syntax errors are left for the real parse.
fn check_shape(text: &str) -> Result<(), (usize, String)> {
    use libyaml_rs as sys;
    use std::mem::MaybeUninit;

    /// Owns an initialised parser; boxed so its address stays put while libyaml holds it.
    struct Parser(Box<MaybeUninit<sys::yaml_parser_t>>);
    impl Drop for Parser {
        fn drop(&mut self) {
            // SAFETY: only constructed after `yaml_parser_initialize` succeeded.
            unsafe { sys::yaml_parser_delete(self.0.as_mut_ptr()) }
        }
    }

    let mut storage = Box::new(MaybeUninit::<sys::yaml_parser_t>::uninit());
    // SAFETY: `yaml_parser_initialize` fully initialises the struct it is given (it zeroes it
    // first); on failure nothing was allocated and the box is dropped as plain memory.
    if unsafe { sys::yaml_parser_initialize(storage.as_mut_ptr()) }.fail {
        return Ok(());
    }
    let mut parser = Parser(storage);
    let p = parser.0.as_mut_ptr();
    // SAFETY: `p` is an initialised parser; `text` outlives it (both end with this function),
    // and libyaml only reads the `text.len()` bytes it is given.
    unsafe {
        sys::yaml_parser_set_encoding(p, sys::YAML_UTF8_ENCODING);
        sys::yaml_parser_set_input_string(p, text.as_ptr(), text.len() as u64);
    }
    let mut depth = 0usize;
    let mut nodes = 0usize;
    loop {
        let mut event = MaybeUninit::<sys::yaml_event_t>::uninit();
        // SAFETY: `p` is initialised; `yaml_parser_parse` writes a complete event on success.
        if unsafe { sys::yaml_parser_parse(p, event.as_mut_ptr()) }.fail {
            return Ok(());
        }
        // SAFETY: the parse succeeded, so the event is initialised; it is read, then deleted
        // exactly once.
        let (kind, line) = unsafe {
            let e = event.as_mut_ptr();
            let read = ((*e).type_, (*e).start_mark.line);
            sys::yaml_event_delete(e);
            read
        };
        let line = usize::try_from(line)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        if matches!(
            kind,
            sys::YAML_SEQUENCE_START_EVENT
                | sys::YAML_MAPPING_START_EVENT
                | sys::YAML_SCALAR_EVENT
                | sys::YAML_ALIAS_EVENT
        ) {
            nodes += 1;
            if nodes > MAX_DESCRIPTOR_VALUES {
                return Err((
                    line,
                    format!("more than {MAX_DESCRIPTOR_VALUES} values (at line {line})"),
                ));
            }
        }
        match kind {
            sys::YAML_SEQUENCE_START_EVENT | sys::YAML_MAPPING_START_EVENT => {
                depth += 1;
                if depth > MAX_DESCRIPTOR_DEPTH {
                    return Err((
                        line,
                        format!(
                            "nested more than {MAX_DESCRIPTOR_DEPTH} levels deep at line {line}"
                        ),
                    ));
                }
            }
            sys::YAML_SEQUENCE_END_EVENT | sys::YAML_MAPPING_END_EVENT => {
                depth = depth.saturating_sub(1);
            }
            sys::YAML_STREAM_END_EVENT => return Ok(()),
            _ => {}
        }
    }
}

/// What is left of a file's allowance of values and string bytes.
struct Budget {
    values: usize,
    text_bytes: usize,
}

impl Budget {
    fn spend<E: de::Error>(&mut self, text_bytes: usize) -> Result<(), E> {
        self.values = self.values.checked_sub(1).ok_or_else(|| {
            E::custom(format!(
                "the file expands to more than {MAX_DESCRIPTOR_VALUES} values \
                 (YAML aliases repeat what they point at)"
            ))
        })?;
        self.text_bytes = self.text_bytes.checked_sub(text_bytes).ok_or_else(|| {
            E::custom(format!(
                "the file expands to more than {MAX_DESCRIPTOR_TEXT_BYTES} bytes of text \
                 (YAML aliases repeat what they point at)"
            ))
        })?;
        Ok(())
    }
}

/// Builds a JSON value as `serde_json::Value`'s own `Deserialize` does, charging each value to
/// the budget first, so memory stays bounded whatever the aliases expand to.
struct Bounded<'b>(&'b mut Budget);

impl<'de> DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.0.spend(0)?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.0.spend(0)?;
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.0.spend(0)?;
        Ok(Value::Number(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        self.0.spend(0)?;
        i64::try_from(v)
            .map(|n| Value::Number(n.into()))
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        self.0.spend(0)?;
        u64::try_from(v)
            .map(|n| Value::Number(n.into()))
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.0.spend(0)?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.spend(v.len())?;
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.0.spend(v.len())?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.0.spend(0)?;
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let budget = self.0;
        budget.spend(0)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Bounded(&mut *budget))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let budget = self.0;
        budget.spend(0)?;
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(BoundedKey(&mut *budget))? {
            let value = map.next_value_seed(Bounded(&mut *budget))?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// A mapping key: a string, charged to the budget like any other.
struct BoundedKey<'b>(&'b mut Budget);

impl<'de> DeserializeSeed<'de> for BoundedKey<'_> {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        let key = <String as serde::Deserialize>::deserialize(d)?;
        self.0.spend(key.len())?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several_documents_and_isolates_bad_ones() {
        let text = r#"
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: a
spec:
  owner: team-a
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: "not valid!"
---
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
spec:
  type: team
  children: []
"#;
        let docs = parse_descriptors(text);
        assert_eq!(docs.len(), 3);
        assert!(docs[0].result.is_ok());
        assert_eq!(docs[1].index, 1);
        assert_eq!(
            docs[1].result.as_ref().unwrap_err().field(),
            Some("metadata.name")
        );
        assert_eq!(docs[2].index, 3);
        assert_eq!(docs[2].result.as_ref().unwrap().kind, "Group");
    }

    #[test]
    fn yaml_errors_carry_a_line() {
        let docs = parse_descriptors("kind: Component\nmetadata: {name: a\n");
        assert_eq!(docs.len(), 1);
        assert!(matches!(docs[0].result, Err(DescriptorError::Yaml(_))));
        assert!(docs[0].line.is_some());
    }

    #[test]
    fn alias_bombs_are_refused_not_expanded() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..12 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            };
            text.push_str(&format!("b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let docs = parse_descriptors(&text);
        assert!(
            matches!(docs[0].result, Err(DescriptorError::Yaml(_))),
            "{:?}",
            docs[0].result
        );
    }
}
