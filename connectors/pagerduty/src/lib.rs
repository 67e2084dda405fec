//! The `pagerduty` connector (in progress).
