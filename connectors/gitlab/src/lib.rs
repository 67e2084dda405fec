//! The `gitlab` connector (in progress).
