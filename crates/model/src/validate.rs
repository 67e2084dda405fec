//! Backstage's naming rules for entity names, namespaces, kinds, labels, annotations and tags.
//! They mirror `KubernetesValidatorFunctions` in `@backstage/catalog-model` so descriptors that
//! Backstage accepts are accepted here, and the other way round.

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// `metadata.name`: 1..=63 characters, `[A-Za-z0-9]` at both ends, `[-A-Za-z0-9_.]` between.
///
/// Backstage's documentation speaks of single separators, but its validator (and therefore every
/// catalog in the wild) accepts runs such as `a--b`; we accept what Backstage accepts.
pub fn is_valid_object_name(s: &str) -> bool {
    let len = s.chars().count();
    if !(1..=63).contains(&len) {
        return false;
    }
    let first = s.chars().next();
    let last = s.chars().last();
    matches!(first, Some(c) if is_alnum(c))
        && matches!(last, Some(c) if is_alnum(c))
        && s.chars()
            .all(|c| is_alnum(c) || matches!(c, '-' | '_' | '.'))
}

/// RFC 1123 DNS label as Backstage checks it: `^[a-z0-9]+(-[a-z0-9]+)*$`, 1..=63 characters.
pub fn is_valid_dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// DNS subdomain: 1..=253 characters of dot-separated DNS labels.
pub fn is_valid_dns_subdomain(s: &str) -> bool {
    (1..=253).contains(&s.len()) && s.split('.').all(is_valid_dns_label)
}

/// `metadata.namespace`: a DNS label.
pub fn is_valid_namespace(s: &str) -> bool {
    is_valid_dns_label(s)
}

/// `kind`: a letter, then letters and digits, at most 63.
pub fn is_valid_kind(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// `apiVersion`: `[dns-subdomain/]version` where version is `[a-zA-Z0-9]{1,63}`.
pub fn is_valid_api_version(s: &str) -> bool {
    prefix_and_or_suffix(s, is_valid_dns_subdomain, |v| {
        (1..=63).contains(&v.len()) && v.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// Label and annotation keys: `[dns-subdomain/]object-name`.
pub fn is_valid_label_key(s: &str) -> bool {
    prefix_and_or_suffix(s, is_valid_dns_subdomain, is_valid_object_name)
}

/// Label values: empty, or an object name.
pub fn is_valid_label_value(s: &str) -> bool {
    s.is_empty() || is_valid_object_name(s)
}

/// Annotation keys follow the label-key rule; any string is a valid annotation value.
pub fn is_valid_annotation_key(s: &str) -> bool {
    is_valid_label_key(s)
}

/// Tags: `^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$`, 1..=63 characters.
pub fn is_valid_tag(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.split('-').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, ':' | '+' | '#')
                })
        })
}

fn prefix_and_or_suffix(s: &str, prefix: fn(&str) -> bool, suffix: fn(&str) -> bool) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        [only] => suffix(only),
        [p, n] => prefix(p) && suffix(n),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names() {
        for ok in [
            "a",
            "A",
            "payments-api",
            "a.b_c-d",
            "a--b",
            "x".repeat(63).as_str(),
            "9lives",
        ] {
            assert!(is_valid_object_name(ok), "{ok:?} should be valid");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "_a",
            "a.",
            "a b",
            "ä",
            "a/b",
            "x".repeat(64).as_str(),
        ] {
            assert!(!is_valid_object_name(bad), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn namespaces_are_lowercase_dns_labels() {
        assert!(is_valid_namespace("default"));
        assert!(is_valid_namespace("team-a1"));
        for bad in ["Default", "a--b", "-a", "a_b", "a.b", ""] {
            assert!(!is_valid_namespace(bad), "{bad:?}");
        }
    }

    #[test]
    fn keys_values_tags_kinds() {
        assert!(is_valid_label_key("backstage.io/kubernetes-id"));
        assert!(is_valid_label_key("tier"));
        assert!(!is_valid_label_key("a/b/c"));
        assert!(!is_valid_label_key("Backstage.IO/x"));
        assert!(is_valid_label_value(""));
        assert!(!is_valid_label_value("has space"));
        assert!(is_valid_tag("c++"));
        assert!(is_valid_tag("java"));
        assert!(!is_valid_tag("Java"));
        assert!(!is_valid_tag("a--b"));
        assert!(is_valid_kind("Component"));
        assert!(!is_valid_kind("1Component"));
        assert!(is_valid_api_version("backstage.io/v1alpha1"));
        assert!(!is_valid_api_version("backstage.io/v1/x"));
    }
}
