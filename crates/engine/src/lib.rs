//! surveyor's engine: reads `surveyor.toml`, runs connectors, and reconciles their crawls into
//! the catalog store (merge, history, safe deletion).

pub mod config;
pub mod identity;
pub mod lease;
pub mod merge;
pub mod reconcile;
pub mod replay;
pub mod schedule;

pub use reconcile::{
    Counts, EntityCounts, ObservationCounts, ReconcileError, ReconcileOptions, Refusal, RunReport,
    RunStatus, ScopeReport, refresh_connector, run_connector,
};
