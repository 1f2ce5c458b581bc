//! Query parameters. Every parameter a client may send is named here; any
//! other is refused with 400, never silently ignored.

use axum::http::Uri;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown fields fail the request.
    Strict,
    /// Unknown fields are dropped with a `Warning` header (the default).
    #[default]
    Warn,
    /// Unknown fields are dropped silently.
    Ignore,
}

/// What a Table row carries as `object` (`includeObject`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

#[derive(Clone, Debug, Default)]
pub struct Params {
    pub pretty: bool,
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub limit: usize,
    pub continue_token: Option<String>,
    pub label_selector: String,
    pub field_selector: String,
    pub watch: bool,
    pub allow_watch_bookmarks: bool,
    pub timeout_seconds: Option<u64>,
    pub send_initial_events: Option<bool>,
    pub propagation_policy: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub include_object: IncludeObject,
    /// `fieldManager`, as given.
    pub field_manager: Option<String>,
    /// `force` (server-side apply only).
    pub force: Option<bool>,
}

fn boolean(name: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::BadRequest(format!("invalid value {v:?} for query parameter {name}: expected true or false"))),
    }
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|_| Error::BadRequest(format!("invalid value {v:?} for query parameter {name}: expected an integer")))
}

fn one_of(name: &str, v: &str, allowed: &[&str]) -> Result<String> {
    if allowed.contains(&v) {
        Ok(v.to_string())
    } else {
        let list = allowed.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
        Err(Error::BadRequest(format!("unsupported value {v:?} for query parameter {name}: supported values: {list}")))
    }
}

impl Params {
    pub fn from_uri(uri: &Uri) -> Result<Params> {
        let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|e| Error::BadRequest(format!("malformed query string: {e}")))?
            .0;
        let mut p = Params::default();
        for (k, v) in pairs {
            let v = v.as_str();
            match k.as_str() {
                "pretty" => p.pretty = boolean(&k, v)?,
                "dryRun" => p.dry_run = !one_of(&k, v, &["All"])?.is_empty(),
                "fieldManager" => {
                    if v.len() > 128 {
                        return Err(Error::BadRequest("fieldManager must be at most 128 characters".into()));
                    }
                    p.field_manager = Some(v.to_string()).filter(|s| !s.is_empty());
                }
                "fieldValidation" => {
                    p.field_validation = match one_of(&k, v, &["Strict", "Warn", "Ignore"])?.as_str() {
                        "Strict" => FieldValidation::Strict,
                        "Ignore" => FieldValidation::Ignore,
                        _ => FieldValidation::Warn,
                    }
                }
                "resourceVersion" => p.resource_version = Some(v.to_string()).filter(|s| !s.is_empty()),
                "resourceVersionMatch" => {
                    p.resource_version_match =
                        Some(one_of(&k, v, &["NotOlderThan", "Exact", ""])?).filter(|s| !s.is_empty())
                }
                "limit" => p.limit = number(&k, v)?,
                "continue" => p.continue_token = Some(v.to_string()).filter(|s| !s.is_empty()),
                "labelSelector" => p.label_selector = v.to_string(),
                "fieldSelector" => p.field_selector = v.to_string(),
                "watch" => p.watch = boolean(&k, v)?,
                "allowWatchBookmarks" => p.allow_watch_bookmarks = boolean(&k, v)?,
                "timeoutSeconds" => p.timeout_seconds = Some(number(&k, v)?),
                "sendInitialEvents" => p.send_initial_events = Some(boolean(&k, v)?),
                "propagationPolicy" => {
                    p.propagation_policy = Some(one_of(&k, v, &["Orphan", "Background", "Foreground"])?)
                }
                "gracePeriodSeconds" => {
                    number::<i64>(&k, v)?;
                }
                "orphanDependents" => p.orphan_dependents = Some(boolean(&k, v)?),
                "includeObject" => {
                    p.include_object = match one_of(&k, v, &["None", "Metadata", "Object"])?.as_str() {
                        "None" => IncludeObject::None,
                        "Object" => IncludeObject::Object,
                        _ => IncludeObject::Metadata,
                    }
                }
                // A request timeout (`30s`): requests here are short, so it needs no action.
                "timeout" => {}
                "force" => p.force = Some(boolean(&k, v)?),
                other => return Err(Error::BadRequest(format!("unknown query parameter {other:?}"))),
            }
        }
        Ok(p)
    }

    /// The resourceVersion as a revision; `None` for unset or `"0"` (any).
    pub fn revision(&self) -> Result<Option<u64>> {
        match self.resource_version.as_deref() {
            None | Some("0") => Ok(None),
            Some(rv) => rv.parse::<u64>().map(Some).map_err(|_| {
                Error::BadRequest(format!(
                    "invalid value {rv:?} for query parameter resourceVersion: expected an integer"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<Params> {
        Params::from_uri(&format!("/api/v1/namespaces?{q}").parse().expect("uri"))
    }

    #[test]
    fn known_parameters_parse() {
        let p = parse("watch=1&allowWatchBookmarks=true&timeoutSeconds=290&resourceVersion=12&labelSelector=a%3Db&limit=500&fieldManager=kubectl&fieldValidation=Strict&dryRun=All&timeout=32s").expect("parse");
        assert!(p.watch && p.allow_watch_bookmarks && p.dry_run);
        assert_eq!(p.timeout_seconds, Some(290));
        assert_eq!(p.revision().expect("rv"), Some(12));
        assert_eq!(p.label_selector, "a=b");
        assert_eq!(p.limit, 500);
        assert_eq!(p.field_validation, FieldValidation::Strict);
    }

    #[test]
    fn unknown_or_bad_parameters_are_refused() {
        let e = parse("bogus=1").expect_err("unknown");
        assert!(e.to_string().contains("bogus"), "{e}");
        assert!(parse("dryRun=Some").is_err());
        assert!(parse("limit=x").is_err());
        assert!(parse("fieldValidation=Loose").is_err());
        assert!(parse("resourceVersion=abc").expect("parse").revision().is_err());
    }
}
