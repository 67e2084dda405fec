//! The connector kit: what every connector kind has the same way. Its `[[connectors]]` table
//! (the error its constructor gives — the key at fault, for the loader to locate in the file —
//! the keys the table accepts, read off the fields of the kind's config struct, and defaults and
//! checks several kinds share), the trait a binary lists its kinds by, and the [`Connector`]
//! impl: one line of [`connector!`](crate::connector) per kind.
//!
//! [`Connector`]: crate::Connector

use std::fmt;
use std::ops::RangeInclusive;
use std::path::Path;

use crate::{Connector, ConnectorError, Observation, ObservationSink, Outcome};

use serde::de::{self, DeserializeOwned, Visitor};

#[doc(hidden)]
pub use async_trait::async_trait;

/// Why a connector cannot be built from its table: the key at fault and what is wrong with it.
/// The loader places it at that key's value in the file: `file:line:col: connectors[i].key: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// A key of the kind's table (`token`, `page_size`), as written in the file.
    pub key: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }
}

/// A connector kind as the configuration knows it: its name, the struct its table is read into
/// (whose fields are the keys the table accepts besides the common ones), and how an instance is
/// built from that struct.
pub trait ConnectorKind: crate::Connector + Sized + 'static {
    /// `kind = "..."` in `surveyor.toml`.
    const KIND: &'static str;
    /// The kind's own keys.
    type Config: DeserializeOwned;
    /// Builds an instance; `base_dir` is the config file's directory (relative paths start there).
    fn from_config(id: &str, config: Self::Config, base_dir: &Path) -> Result<Self, ConfigError>;
}

/// Where one scope's crawl goes: the sink for its observations and the outcome being written.
pub struct Crawl<'a> {
    pub sink: &'a ObservationSink,
    pub outcome: &'a mut Outcome,
}

/// How one scope's crawl ends: `Err` only when the crawl as a whole must stop (the sink closed).
pub type Crawled = Result<(), ConnectorError>;

/// Everything one crawl gave, kept in memory: for tests, and for tools that look at a crawl
/// whole.
#[derive(Debug)]
pub struct Collected {
    pub observations: Vec<Observation>,
    pub outcome: Outcome,
}

impl Collected {
    /// Crawls `connector` once, keeping every observation it sends.
    pub async fn crawl(connector: &dyn Connector) -> Result<Self, ConnectorError> {
        Self::keep(connector.id(), |sink| connector.crawl(sink)).await
    }

    /// Refreshes `targets` of `connector` once ([`Connector::refresh`](crate::Connector::refresh)),
    /// keeping every observation it sends.
    pub async fn refresh(
        connector: &dyn Connector,
        targets: &[crate::Target],
    ) -> Result<Self, ConnectorError> {
        Self::keep(connector.id(), |sink| connector.refresh(targets, sink)).await
    }

    /// Runs `read` with a sink for `source`, keeping what it sends.
    async fn keep<F>(
        source: &str,
        read: impl FnOnce(ObservationSink) -> F,
    ) -> Result<Self, ConnectorError>
    where
        F: std::future::Future<Output = Result<Outcome, ConnectorError>>,
    {
        let (sink, mut rx) = ObservationSink::channel(source, 64);
        let kept = async {
            let mut observations = Vec::new();
            while let Some(o) = rx.recv().await {
                observations.push(o);
            }
            observations
        };
        let (outcome, observations) = tokio::join!(read(sink), kept);
        Ok(Self {
            observations,
            outcome: outcome?,
        })
    }

    /// The observations of entities of one kind.
    pub fn of_kind(&self, kind: &str) -> Vec<&Observation> {
        self.observations
            .iter()
            .filter(|o| o.entity.kind == kind)
            .collect()
    }
}

/// Declares a connector kind: its [`ConnectorKind`] impl (named by the crate's `KIND`, its
/// table read into the config type given, built by its `new`, which takes `base_dir` when
/// listed) and its [`Connector`](crate::Connector) impl (the struct's `id` field, each scope
/// crawled in turn by the method named, the figures `metrics` gives and the warnings `check`
/// gives `surveyor validate`, if any):
///
/// ```text
/// surveyor_model::connector!(GithubConnector(GithubConfig, base_dir):
///     each |c| &c.settings.orgs => crawl_org, metrics |c| c.api.http().connector_metrics());
/// ```
///
/// The method crawls one scope: `async fn crawl_org(&self, org: &str, crawl: Crawl<'_>) -> Crawled`.
///
/// Connectors with events add, in this order, any of: `receive |c, delivery| expr` (webhooks),
/// `listens |c| expr`, `refresh |c, targets, sink| future, refreshes |c, targets| expr` (read
/// a named part of the source) and `watch |c, hints| future`; see [`Connector`](crate::Connector).
#[macro_export]
macro_rules! connector {
    ($t:ident($config:ty, base_dir): $($crawl:tt)*) => {
        $crate::connector!(@kind $t, $config, |id, config, base_dir| <$t>::new(id, config, base_dir));
        $crate::connector!(@crawl $t: $($crawl)*);
    };
    ($t:ident($config:ty): $($crawl:tt)*) => {
        $crate::connector!(@kind $t, $config, |id, config, _base_dir| <$t>::new(id, config));
        $crate::connector!(@crawl $t: $($crawl)*);
    };
    (@kind $t:ident, $config:ty, |$id:ident, $c:ident, $dir:ident| $new:expr) => {
        impl $crate::ConnectorKind for $t {
            const KIND: &'static str = KIND;
            type Config = $config;

            fn from_config(
                $id: &str,
                $c: $config,
                $dir: &::std::path::Path,
            ) -> ::std::result::Result<Self, $crate::ConfigError> {
                $new
            }
        }
    };
    (@crawl $t:ident: each |$c:ident| $scopes:expr => $method:ident
        $(, metrics |$m:ident| $metrics:expr)? $(, check |$k:ident| $check:expr)?
        $(, receive |$rc:ident, $rd:ident| $receive:expr)?
        $(, listens |$lc:ident| $listens:expr)?
        $(, refresh |$fc:ident, $ft:ident, $fs:ident| $refresh:expr, refreshes |$qc:ident, $qt:ident| $refreshes:expr)?
        $(, watch |$wc:ident, $wh:ident| $watch:expr)?) => {
        #[$crate::kit::async_trait]
        impl $crate::Connector for $t {
            fn id(&self) -> &str {
                &self.id
            }

            fn kind(&self) -> &'static str {
                KIND
            }

            async fn crawl(
                &self,
                sink: $crate::ObservationSink,
            ) -> ::std::result::Result<$crate::Outcome, $crate::ConnectorError> {
                let mut outcome = $crate::Outcome::default();
                let $c = self;
                for scope in $scopes {
                    let crawl = $crate::Crawl {
                        sink: &sink,
                        outcome: &mut outcome,
                    };
                    self.$method(::std::convert::AsRef::<str>::as_ref(&scope), crawl)
                        .await?;
                }
                Ok(outcome)
            }

            $(
                fn metrics(&self) -> ::std::vec::Vec<$crate::ConnectorMetric> {
                    let $m = self;
                    $metrics
                }
            )?

            $(
                fn check(&self) -> ::std::vec::Vec<::std::string::String> {
                    let $k = self;
                    $check
                }
            )?

            $(
                fn receive(
                    &self,
                    delivery: &$crate::Delivery,
                ) -> ::std::result::Result<$crate::Received, $crate::EventError> {
                    let ($rc, $rd) = (self, delivery);
                    $receive
                }
            )?

            $(
                fn listens(&self) -> bool {
                    let $lc = self;
                    $listens
                }
            )?

            $(
                fn refreshes(&self, targets: &[$crate::Target]) -> bool {
                    let ($qc, $qt) = (self, targets);
                    $refreshes
                }

                async fn refresh(
                    &self,
                    targets: &[$crate::Target],
                    sink: $crate::ObservationSink,
                ) -> ::std::result::Result<$crate::Outcome, $crate::ConnectorError> {
                    let ($fc, $ft, $fs) = (self, targets, sink);
                    $refresh.await
                }
            )?

            $(
                async fn watch(
                    &self,
                    hints: $crate::HintSink,
                ) -> ::std::result::Result<(), $crate::ConnectorError> {
                    let ($wc, $wh) = (self, hints);
                    $watch.await
                }
            )?
        }
    };
}

/// The keys `T`'s `Deserialize` accepts, in declaration order: the field names (renames and
/// aliases included) that `#[derive(Deserialize)]` gives a struct. Empty for anything not read
/// as a struct (a map, or a struct with a `#[serde(flatten)]` field), which would accept no key.
pub fn keys<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The probe ends every deserialization with an error once it has seen the field list.
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// A deserializer that only records the field names a struct asks for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Probed;

impl fmt::Display for Probed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("only the field names were read")
    }
}

impl std::error::Error for Probed {}

impl de::Error for Probed {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Probed
    }
}

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = Probed;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probed> {
        *self.0 = fields;
        Err(Probed)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// A number as a serde default: `#[serde(default = "number::<_, 100>")]`.
pub fn number<T: From<u16>, const N: u16>() -> T {
    T::from(N)
}

/// `true` as a serde default.
pub fn yes() -> bool {
    true
}

/// The catalog namespace of what a connector creates, unless configured.
pub fn default_namespace() -> String {
    crate::DEFAULT_NAMESPACE.into()
}

/// `spec.type` of a discovered component nothing says more about.
pub fn default_component_type() -> String {
    "service".into()
}

/// `spec.lifecycle` of a live discovered component.
pub fn default_lifecycle() -> String {
    "production".into()
}

/// `Err` at `key` with `message` unless `ok`.
pub fn ensure(
    ok: bool,
    key: &'static str,
    message: impl FnOnce() -> String,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(key, message()))
    }
}

/// A URL a connector sends requests to must be plain http(s).
pub fn http_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
    ensure(
        url.starts_with("https://") || url.starts_with("http://"),
        key,
        // Not echoed: a URL may come from a `${ENV}` reference that holds a secret.
        || "is not an http(s) URL: it must start with https:// or http://".into(),
    )?;
    // Never echoed: a malformed URL may hold a password where it cannot be told apart.
    url::Url::parse(url).map(drop).map_err(|e| {
        ConfigError::new(
            key,
            format!(
                "is not a valid URL ({e}); a user name or password in it must be percent-encoded (/ ? # @ : as %2F %3F %23 %40 %3A)"
            ),
        )
    })
}

/// A credential (or any value) that is blank is a mistake, not an anonymous request.
pub fn not_blank(key: &'static str, value: &str) -> Result<(), ConfigError> {
    ensure(!value.trim().is_empty(), key, || "is empty".into())
}

/// A number within bounds: `0 is outside 1..=100`.
pub fn within<T: PartialOrd + fmt::Display>(
    key: &'static str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<(), ConfigError> {
    ensure(range.contains(&value), key, || {
        format!("{value} is outside {}..={}", range.start(), range.end())
    })
}

/// The annotation in which a connector lists the fields it filled from its configuration
/// rather than found at the source (JSON pointers, space-separated). The merge lets a value
/// another source states win over them, and never calls them a disagreement.
pub const DEFAULTED: &str = "surveyor.dev/defaulted";

/// Marks `pointers` (`/spec/type`) of `entity` as filled from the connector's configuration.
pub fn mark_defaulted(entity: &mut crate::Entity, pointers: &[&str]) {
    if pointers.is_empty() {
        return;
    }
    let mut all: Vec<String> = entity
        .metadata
        .annotations
        .get(DEFAULTED)
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    for p in pointers {
        if !all.iter().any(|a| a == p) {
            all.push((*p).to_string());
        }
    }
    entity
        .metadata
        .annotations
        .insert(DEFAULTED.to_string(), all.join(" "));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Table {
        orgs: Vec<String>,
        #[serde(rename = "api-url")]
        api_url: Option<String>,
        #[serde(default = "number::<_, 100>")]
        page_size: u32,
        #[serde(skip)]
        derived: bool,
    }

    #[test]
    fn keys_are_the_fields_as_written_in_order() {
        assert_eq!(keys::<Table>(), ["orgs", "api-url", "page_size"]);
        assert!(keys::<std::collections::BTreeMap<String, String>>().is_empty());
        assert!(keys::<u32>().is_empty());
    }

    #[test]
    fn numbers_default_to_their_value_in_the_field_type() {
        let t: Table = serde_json::from_str(r#"{"orgs": []}"#).unwrap();
        assert_eq!(t.page_size, 100);
        assert_eq!(number::<usize, 5>(), 5usize);
        assert_eq!(number::<f64, 3600>(), 3600.0);
    }

    #[test]
    fn checks_name_the_key() {
        assert_eq!(
            http_url("api_url", "ftp://x").unwrap_err().to_string(),
            "api_url: is not an http(s) URL: it must start with https:// or http://"
        );
        assert!(http_url("url", "https://x").is_ok());
        assert_eq!(
            not_blank("token", " ").unwrap_err(),
            ConfigError::new("token", "is empty")
        );
        assert_eq!(
            within("page_size", 0, 1..=100).unwrap_err().to_string(),
            "page_size: 0 is outside 1..=100"
        );
        assert!(within("page_size", 100, 1..=100).is_ok());
    }
}
