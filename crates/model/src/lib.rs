//! surveyor's shared vocabulary: entities in Backstage's envelope, entity refs, validation,
//! content hashes, observations, the `Connector` trait every source implements and the shape of
//! a connector kind's configuration.

pub mod classify;
pub mod control;
pub mod descriptor;
pub mod entity;
pub mod hash;
pub mod kit;
pub mod names;
pub mod observation;
pub mod refs;
pub mod score;
pub mod secret;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validate;

pub use control::{Accepted, ConnectorView, Control, DeliveryRefusal, LeaseView, TriggerRefusal};
pub use entity::{Entity, EntityError, FieldError, Metadata, Relation, inverse_relation};
pub use kit::{Collected, ConfigError, ConnectorKind, Crawl, Crawled};
pub use observation::{
    Connector, ConnectorError, ConnectorMetric, Delivery, EventError, HintSink, Observation,
    ObservationSink, Outcome, Problem, Received, ScopeStatus, SinkClosed, Target,
};
pub use refs::{DEFAULT_NAMESPACE, EntityRef, RefError};
pub use secret::Secret;
