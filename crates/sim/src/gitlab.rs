//! A fake GitLab (in progress).
