//! A fake Jira (in progress).
