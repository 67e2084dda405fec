//! Backstage descriptor files (`catalog-info.yaml`): multi-document YAML, each document one
//! entity. Every document is parsed on its own so one bad document does not hide the good ones.

use serde::Deserialize;
use serde_json::Value;

use crate::entity::{Entity, FieldError};

/// Documents larger than this are refused rather than parsed (hostile or accidental input).
pub const MAX_DESCRIPTOR_BYTES: usize = 4 * 1024 * 1024;

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

/// Parses every document in `text`. Empty documents (`---` with nothing after) are skipped;
/// a YAML syntax error ends the file there, as no later document boundary can be trusted.
pub fn parse_descriptors(text: &str) -> Vec<Document> {
    if text.len() > MAX_DESCRIPTOR_BYTES {
        return vec![Document {
            index: 0,
            line: None,
            result: Err(DescriptorError::Yaml(format!(
                "file is {} bytes; descriptors are limited to {MAX_DESCRIPTOR_BYTES}",
                text.len()
            ))),
        }];
    }
    let mut out = Vec::new();
    for (index, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
        match Value::deserialize(doc) {
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
