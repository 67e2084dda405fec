//! Entity references, `kind:namespace/name`, with Backstage's defaults and case-insensitive
//! equality, so `Component:Default/Foo` and `component:default/foo` are the same entity.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::validate;

/// The namespace a reference or entity lives in when it names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A reference to an entity. Compares and hashes case-insensitively; displays as
/// `kind:namespace/name` with kind and namespace lower-cased and the name as written.
#[derive(Clone)]
pub struct EntityRef {
    kind: String,
    namespace: String,
    name: String,
}

/// Why a string is not an entity reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("empty entity reference")]
    Empty,
    #[error("entity reference {0:?} has no kind and none is implied here")]
    MissingKind(String),
    #[error("entity reference {reference:?}: invalid {part} {value:?}")]
    Invalid {
        reference: String,
        part: &'static str,
        value: String,
    },
}

impl EntityRef {
    /// A reference from parts, validated with Backstage's rules.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Result<Self, RefError> {
        let r = Self {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        r.validate(&r.to_string())?;
        Ok(r)
    }

    /// Parses `[kind:][namespace/]name`. Without a kind, `default_kind` is used (for example
    /// `spec.owner: team-a` implies `group`); without a namespace, `default_namespace`.
    pub fn parse_with(
        s: &str,
        default_kind: Option<&str>,
        default_namespace: &str,
    ) -> Result<Self, RefError> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(RefError::Empty);
        }
        let (kind, rest) = match trimmed.split_once(':') {
            Some((k, rest)) => (k, rest),
            None => match default_kind {
                Some(k) => (k, trimmed),
                None => return Err(RefError::MissingKind(trimmed.to_string())),
            },
        };
        let (namespace, name) = match rest.split_once('/') {
            Some((ns, name)) => (ns, name),
            None => (default_namespace, rest),
        };
        let r = Self {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        r.validate(trimmed)?;
        Ok(r)
    }

    fn validate(&self, reference: &str) -> Result<(), RefError> {
        let invalid = |part, value: &str| RefError::Invalid {
            reference: reference.to_string(),
            part,
            value: value.to_string(),
        };
        if !validate::is_valid_kind(&self.kind) {
            return Err(invalid("kind", &self.kind));
        }
        // Refs are compared case-insensitively, so a namespace written `Default` still resolves.
        if !validate::is_valid_namespace(&self.namespace.to_ascii_lowercase()) {
            return Err(invalid("namespace", &self.namespace));
        }
        if !validate::is_valid_object_name(&self.name) {
            return Err(invalid("name", &self.name));
        }
        Ok(())
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lower-cased form used as the catalog's key.
    pub fn key(&self) -> String {
        format!(
            "{}:{}/{}",
            self.kind.to_ascii_lowercase(),
            self.namespace.to_ascii_lowercase(),
            self.name.to_ascii_lowercase()
        )
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}",
            self.kind.to_ascii_lowercase(),
            self.namespace.to_ascii_lowercase(),
            self.name
        )
    }
}

impl fmt::Debug for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntityRef({self})")
    }
}

impl PartialEq for EntityRef {
    fn eq(&self, other: &Self) -> bool {
        self.kind.eq_ignore_ascii_case(&other.kind)
            && self.namespace.eq_ignore_ascii_case(&other.namespace)
            && self.name.eq_ignore_ascii_case(&other.name)
    }
}
impl Eq for EntityRef {}

impl Hash for EntityRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for EntityRef {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for EntityRef {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl FromStr for EntityRef {
    type Err = RefError;
    /// A full reference; the kind is required, the namespace defaults to `default`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_with(s, None, DEFAULT_NAMESPACE)
    }
}

impl Serialize for EntityRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EntityRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn parses_full_and_defaulted_forms() {
        let r: EntityRef = "Component:Payments/payments-API".parse().unwrap();
        assert_eq!(r.to_string(), "component:payments/payments-API");
        assert_eq!(r.key(), "component:payments/payments-api");

        let r = EntityRef::parse_with("team-a", Some("Group"), "default").unwrap();
        assert_eq!(r.to_string(), "group:default/team-a");

        let r = EntityRef::parse_with("ops/team-a", Some("group"), "default").unwrap();
        assert_eq!(r.to_string(), "group:ops/team-a");

        let r = EntityRef::parse_with("user:jdoe", Some("group"), "default").unwrap();
        assert_eq!(r.to_string(), "user:default/jdoe");
    }

    #[test]
    fn case_insensitive_equality_and_hash() {
        let a: EntityRef = "component:default/Foo".parse().unwrap();
        let b: EntityRef = "COMPONENT:DEFAULT/foo".parse().unwrap();
        assert_eq!(a, b);
        let set: HashSet<EntityRef> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn rejects_bad_refs() {
        assert_eq!("".parse::<EntityRef>().unwrap_err(), RefError::Empty);
        assert!(matches!(
            "foo".parse::<EntityRef>().unwrap_err(),
            RefError::MissingKind(_)
        ));
        let err = "component:default/-bad".parse::<EntityRef>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "entity reference \"component:default/-bad\": invalid name \"-bad\""
        );
        assert!("component:team_x/foo".parse::<EntityRef>().is_err());
        assert!("1x:default/foo".parse::<EntityRef>().is_err());
    }
}
