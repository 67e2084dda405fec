//! The `jira` connector (in progress).
