//! Secrets in configuration: written as `${ENV_VAR}` references, expanded when the config is
//! read, and printed as `***` by Debug and Display so they never reach logs or errors.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A configuration string that may hold a secret. Only [`Secret::expose`] reveals it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it (a header, a connection).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` (a bearer token, a webhook's token) is this secret, in time that
    /// depends only on the lengths, so it cannot be guessed byte by byte.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a `${...}` reference could not be expanded. Names the variable, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("environment variable {0} is not set")]
    Missing(String),
    #[error("unterminated ${{ reference (write $${{ for a literal ${{)")]
    Unterminated,
    #[error("invalid environment variable name {0:?}")]
    BadName(String),
}

/// Replaces each `${NAME}` with the variable's value, using `lookup`; `$${` is a literal `${`.
pub fn expand_with(
    input: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail.find('}').ok_or(ExpandError::Unterminated)?;
            let name = &tail[..end];
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(ExpandError::BadName(name.to_string()));
            }
            out.push_str(&lookup(name).ok_or_else(|| ExpandError::Missing(name.to_string()))?);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands `${NAME}` references from the process environment.
pub fn expand_env(input: &str) -> Result<String, ExpandError> {
    expand_with(input, |name| std::env::var(name).ok())
}

/// For URL fields: `${NAME}` references expanded, so that credentials inside a URL
/// (`https://user:${PROXY_PASSWORD}@host`) come from the environment like every other secret.
/// Errors name the variable, never a value. Use with `#[serde(deserialize_with = ...)]`.
pub fn expanded<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = String::deserialize(d)?;
    expand_env(&raw).map_err(serde::de::Error::custom)
}

/// [`expanded`] for an optional field.
pub fn expanded_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let raw = Option::<String>::deserialize(d)?;
    raw.map(|r| expand_env(&r).map_err(serde::de::Error::custom))
        .transpose()
}

/// `scheme://user:password@host/path` -> `scheme://***@host/path`: a URL that can be shown
/// (errors, logs, the database), its credentials hidden whatever they are.
pub fn hide_userinfo(url: &str) -> std::borrow::Cow<'_, str> {
    let Some(at_scheme) = url.find("://") else {
        return url.into();
    };
    let authority_start = at_scheme + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    match url[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &url[..authority_start],
            &url[authority_start + at..]
        )
        .into(),
        None => url.into(),
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        expand_env(&raw)
            .map(Secret)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cr3t".to_string())
    }

    #[test]
    fn matches_only_itself() {
        let s = Secret::new("abc");
        assert!(s.matches("abc"));
        assert!(!s.matches("abd"));
        assert!(!s.matches("abcd"));
        assert!(!s.matches(""));
    }

    #[test]
    fn expands_references() {
        assert_eq!(
            expand_with("Bearer ${TOKEN}", env).unwrap(),
            "Bearer s3cr3t"
        );
        assert_eq!(
            expand_with("cost $5, $${TOKEN}", env).unwrap(),
            "cost $5, ${TOKEN}"
        );
        assert_eq!(
            expand_with("${NOPE}", env),
            Err(ExpandError::Missing("NOPE".into()))
        );
        assert_eq!(expand_with("${TOKEN", env), Err(ExpandError::Unterminated));
        assert_eq!(
            expand_with("${1X}", env),
            Err(ExpandError::BadName("1X".into()))
        );
    }

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("s3cr3t");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.expose(), "s3cr3t");
    }
}
