//! Kubernetes name rules: DNS subdomains and labels, qualified names
//! (label and annotation keys) and label values.

use crate::error::Cause;

const DNS_LABEL_MAX: usize = 63;
const DNS_SUBDOMAIN_MAX: usize = 253;

fn is_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// RFC 1123 label: lowercase alphanumerics and `-`, starting and ending alphanumeric, at most 63.
pub fn dns_label(s: &str) -> Option<String> {
    if s.is_empty() || s.len() > DNS_LABEL_MAX {
        return Some(format!("must be no more than {DNS_LABEL_MAX} characters and not empty"));
    }
    let ok = s.chars().all(|c| is_alnum(c) || c == '-') && s.starts_with(is_alnum) && s.ends_with(is_alnum);
    (!ok).then(|| {
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and \
         end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is \
         '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            .to_string()
    })
}

/// RFC 1123 subdomain: dot-separated labels, at most 253.
pub fn dns_subdomain(s: &str) -> Option<String> {
    if s.is_empty() || s.len() > DNS_SUBDOMAIN_MAX {
        return Some(format!("must be no more than {DNS_SUBDOMAIN_MAX} characters and not empty"));
    }
    let ok = s.split('.').all(|l| {
        !l.is_empty() && l.chars().all(|c| is_alnum(c) || c == '-') && l.starts_with(is_alnum) && l.ends_with(is_alnum)
    });
    (!ok).then(|| {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must \
         start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is \
         '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            .to_string()
    })
}

fn name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A label or annotation key: `[prefix/]name`.
pub fn qualified_name(s: &str) -> Option<String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix
        && (p.is_empty() || dns_subdomain(p).is_some())
    {
        return Some("prefix part must be a lowercase RFC 1123 subdomain".into());
    }
    (!name_part(name)).then(|| {
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an \
         alphanumeric character, at most 63 characters"
            .into()
    })
}

/// A label value: empty, or a name part.
pub fn label_value(s: &str) -> Option<String> {
    (!s.is_empty() && !name_part(s)).then(|| {
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must \
         start and end with an alphanumeric character, at most 63 characters"
            .into()
    })
}

/// Checks `metadata.labels` and annotation keys; returns every problem.
pub fn check_metadata(meta: &serde_json::Map<String, serde_json::Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let invalid = |field: String, value: &str, why: String| Cause {
        reason: "FieldValueInvalid",
        field,
        message: format!("Invalid value: {value:?}: {why}"),
    };
    if let Some(labels) = meta.get("labels").and_then(|l| l.as_object()) {
        for (k, v) in labels {
            if let Some(why) = qualified_name(k) {
                causes.push(invalid("metadata.labels".into(), k, why));
            }
            match v.as_str() {
                Some(s) => {
                    if let Some(why) = label_value(s) {
                        causes.push(invalid(format!("metadata.labels[{k}]"), s, why));
                    }
                }
                None => {
                    causes.push(invalid(format!("metadata.labels[{k}]"), &v.to_string(), "must be a string".into()))
                }
            }
        }
    }
    if let Some(ann) = meta.get("annotations").and_then(|a| a.as_object()) {
        for (k, v) in ann {
            if let Some(why) = qualified_name(k) {
                causes.push(invalid("metadata.annotations".into(), k, why));
            }
            if !v.is_string() {
                causes.push(invalid(format!("metadata.annotations[{k}]"), &v.to_string(), "must be a string".into()));
            }
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert_eq!(dns_subdomain("hello"), None);
        assert_eq!(dns_subdomain("jobs.berth.dev"), None);
        assert!(dns_subdomain("Hello").is_some());
        assert!(dns_subdomain("a..b").is_some());
        assert!(dns_subdomain("-a").is_some());
        assert!(dns_subdomain("").is_some());
        assert!(dns_label("a.b").is_some());
        assert_eq!(dns_label("kube-system"), None);
    }

    #[test]
    fn label_keys_and_values() {
        assert_eq!(qualified_name("berth.dev/job"), None);
        assert_eq!(qualified_name("app"), None);
        assert!(qualified_name("a b").is_some());
        assert!(qualified_name("/x").is_some());
        assert_eq!(label_value(""), None);
        assert!(label_value("-x").is_some());
    }
}
