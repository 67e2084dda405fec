//! A fake PagerDuty (in progress).
