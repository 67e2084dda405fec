//! How long a server asked us to wait: `Retry-After` (seconds or an HTTP date), GitHub's
//! `X-RateLimit-Reset` (epoch seconds, when the quota is spent), and the IETF draft's
//! `RateLimit-Reset` (seconds from now, GitLab and others).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The wait a response asks for, if any. `now` is injected for tests.
pub fn server_wait(status: u16, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(v) = header(headers, "retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(at) = httpdate::parse_http_date(v) {
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
        }
    }
    let exhausted = header(headers, "x-ratelimit-remaining").is_some_and(|r| r == "0");
    if (exhausted || status == 429)
        && let Some(reset) =
            header(headers, "x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok())
    {
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        return Some(Duration::from_secs(reset.saturating_sub(now_secs)));
    }
    let draft_exhausted = header(headers, "ratelimit-remaining").is_some_and(|r| r == "0");
    if (draft_exhausted || status == 429)
        && let Some(secs) = header(headers, "ratelimit-reset").and_then(|v| v.parse::<u64>().ok())
    {
        // Some servers send an epoch here; anything past a day from now is read as one.
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let delta = if secs > 86_400 {
            secs.saturating_sub(now_secs)
        } else {
            secs
        };
        return Some(Duration::from_secs(delta));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn reads_every_form() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            server_wait(429, &headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            server_wait(503, &headers(&[("retry-after", &date)]), now),
            Some(Duration::from_secs(30))
        );
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1700000042"),
        ]);
        assert_eq!(server_wait(403, &h, now), Some(Duration::from_secs(42)));
        let h = headers(&[
            ("x-ratelimit-remaining", "17"),
            ("x-ratelimit-reset", "1700000042"),
        ]);
        assert_eq!(
            server_wait(403, &h, now),
            None,
            "a 403 with quota left is not a rate limit"
        );
        assert_eq!(
            server_wait(429, &headers(&[("ratelimit-reset", "12")]), now),
            Some(Duration::from_secs(12))
        );
        assert_eq!(server_wait(500, &HeaderMap::new(), now), None);
        assert_eq!(
            server_wait(429, &headers(&[("retry-after", "soon")]), now),
            None
        );
    }
}
