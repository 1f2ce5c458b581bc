//! Names: a Marathon app id (`/group/app`) as a Job name (`group-app`) and a
//! task group name (`app`), and Kubernetes label keys and values.

/// The most characters of a Job name (it is the value of placements'
/// `berth.dev/job` label, which Kubernetes limits to 63).
pub const MAX_JOB_NAME: usize = 63;
/// The most characters of a task group name (Berth's schema).
pub const MAX_GROUP_NAME: usize = 40;

/// `/group/app` → `group-app`: the segments, lowercased, joined by `-`.
pub fn job_name(id: &str) -> Result<String, String> {
    let segments = segments(id)?;
    let name = segments.join("-");
    dns_name(&name, MAX_JOB_NAME).map(|()| name)
}

/// The task group: the id's last segment, lowercased, `.` as `-`.
pub fn group_name(id: &str) -> Result<String, String> {
    let segments = segments(id)?;
    let name = segments.last().map(|s| s.replace('.', "-")).unwrap_or_default();
    dns_name(&name, MAX_GROUP_NAME).map(|()| name)
}

fn segments(id: &str) -> Result<Vec<String>, String> {
    let trimmed = id.strip_prefix('/').unwrap_or(id);
    if trimmed.is_empty() {
        return Err(format!("{id:?} names no app"));
    }
    let mut out = Vec::new();
    for segment in trimmed.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!("{id:?} has an empty or relative path segment"));
        }
        let lower = segment.to_ascii_lowercase();
        if let Some(c) =
            lower.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
        {
            return Err(format!(
                "{id:?} has the character {c:?}: Berth names are lowercase letters, digits, '-' and '.'"
            ));
        }
        out.push(lower);
    }
    Ok(out)
}

/// A DNS subdomain name of at most `max` characters, each label starting
/// and ending with a letter or digit.
pub fn dns_name(name: &str, max: usize) -> Result<(), String> {
    if name.is_empty() || name.len() > max {
        return Err(format!("{name:?} must have 1 to {max} characters"));
    }
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = name
        .split('.')
        .all(|label| label.starts_with(alnum) && label.ends_with(alnum) && label.chars().all(|c| alnum(c) || c == '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} must be lowercase letters, digits and '-', starting and ending with a letter or digit"))
    }
}

/// A Kubernetes label key: an optional DNS prefix and `/`, then a name of
/// letters, digits, `-`, `_`, `.` (at most 63, alphanumeric at both ends).
pub fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        dns_name(p, 253).map_err(|e| format!("the prefix of label key {key:?}: {e}"))?;
    }
    if !label_name(name) {
        return Err(format!("{key:?} is not a label key (at most 63 letters, digits, '-', '_', '.')"));
    }
    Ok(())
}

/// A Kubernetes label value: empty, or like a label key's name.
pub fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || label_name(value) {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a label value (at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends)"
        ))
    }
}

fn label_name(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

/// A port name as Berth takes it: lowercase letters, digits and `-`,
/// starting with a letter, at most 15 characters.
pub fn port_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} must be lowercase letters, digits and '-', starting with a letter, at most 15"))
    }
}
