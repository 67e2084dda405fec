//! One rule for turning a name at a source (a repository, a PagerDuty service, a Jira component,
//! a workload) into a Backstage entity name, so the same thing named in two tools is one entity.

use crate::validate::is_valid_object_name;

/// Backstage's limit on `metadata.name`.
const MAX: usize = 63;

/// Lower case; letters and digits kept; `-`, `_`, `.` kept between them; any run of other
/// characters (with the separators around it) becomes one `-`; separators at the ends dropped.
/// Longer than 63 characters: the first 54, `-`, and 8 hex digits of a hash of the whole, so
/// two long names that share a start stay apart. `None` when no letter or digit is left.
///
/// `Billing Api 3` -> `billing-api-3`, `payments_api` -> `payments_api`, `.github` -> `github`,
/// `Payments / API (prod)` -> `payments-api-prod`.
pub fn entity_name(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    // Separators seen since the last letter or digit, and whether any was a replacement.
    let mut run = String::new();
    let mut replaced = false;
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            if !out.is_empty() && !run.is_empty() {
                out.push_str(if replaced { "-" } else { &run });
            }
            run.clear();
            replaced = false;
            out.push(c.to_ascii_lowercase());
        } else if matches!(c, '-' | '_' | '.') {
            run.push(c);
        } else {
            run.push('-');
            replaced = true;
        }
    }
    let name = if out.len() > MAX {
        // FNV-1a: stable across versions and platforms, which a std hasher is not.
        let mut h: u32 = 0x811c_9dc5;
        for b in out.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        let head = out[..54].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        format!("{head}-{h:08x}")
    } else {
        out
    };
    is_valid_object_name(&name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_every_source_follow_one_rule() {
        for (raw, want) in [
            ("Billing Api 3", Some("billing-api-3")),
            ("billing-api-3", Some("billing-api-3")),
            ("Payments / API (prod)", Some("payments-api-prod")),
            ("payments_api.v2", Some("payments_api.v2")),
            (".github", Some("github")),
            ("a+b c", Some("a-b-c")),
            ("a--b", Some("a--b")),
            ("___", None),
            ("", None),
        ] {
            assert_eq!(entity_name(raw).as_deref(), want, "{raw:?}");
        }
        let long = entity_name(&"x".repeat(100)).unwrap();
        assert_eq!(long.len(), 63);
        assert!(is_valid_object_name(&long));
        assert_ne!(long, entity_name(&("x".repeat(99) + "y")).unwrap());
        assert_eq!(entity_name(&"x".repeat(63)).unwrap(), "x".repeat(63));
    }
}
