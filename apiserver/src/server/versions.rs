//! Which revision a read is served at, from `resourceVersion`,
//! `resourceVersionMatch` and `continue`, as Kubernetes defines it:
//!
//! - unset: the most recent state; `0`: any state (here, the most recent);
//! - `N` (or `N` with `NotOlderThan`): a state at least as new as `N`;
//! - `N` with `Exact`: the state at `N` (410 once compacted);
//! - a `continue` token: the revision of the list's first page.
//!
//! A revision the store has not reached is a 504 "Too large resource
//! version" (clients retry); contradictory options are refused naming them.

use crate::error::{Cause, Error, Result, Subject};
use crate::server::params::Params;

/// Where a list starts reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListAt {
    /// The most recent state, no older than the revision given (0 for any).
    Latest { not_older_than: u64 },
    /// Exactly this revision.
    Exact(u64),
    /// A later page: the first page's revision, after its last key.
    Continue { revision: u64, after: String },
}

fn forbidden(field: &str, message: String) -> Error {
    let subject = Subject { group: "meta.k8s.io".into(), kind: "ListOptions".into(), name: String::new() };
    Error::Invalid(
        subject,
        vec![Cause { reason: "FieldValueForbidden", field: field.into(), message: format!("Forbidden: {message}") }],
    )
}

/// Checks the list options and says where the list reads; `decode` reads a continue token.
pub fn list_at(p: &Params, decode: impl FnOnce(&str) -> Result<(u64, String)>) -> Result<ListAt> {
    let rv = p.revision()?;
    let matching = p.resource_version_match.as_deref();
    if let Some(m) = matching {
        if p.resource_version.is_none() {
            return Err(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided".into(),
            ));
        }
        if p.continue_token.is_some() {
            return Err(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided".into(),
            ));
        }
        if m == "Exact" && rv.is_none() {
            return Err(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"".into(),
            ));
        }
    }
    if let Some(token) = &p.continue_token {
        if rv.is_some() {
            return Err(Error::BadRequest("specifying resource version is not allowed when using continue".into()));
        }
        let (revision, after) = decode(token)?;
        return Ok(ListAt::Continue { revision, after });
    }
    Ok(match (matching, rv) {
        (Some("Exact"), Some(r)) => ListAt::Exact(r),
        (_, r) => ListAt::Latest { not_older_than: r.unwrap_or(0) },
    })
}

/// Fails with 504 when a read served at `served` is older than the `wanted` revision.
pub fn fresh_enough(wanted: u64, served: u64) -> Result<()> {
    if wanted > served { Err(Error::future(wanted, served)) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(q: &str) -> Result<ListAt> {
        let p = Params::from_uri(&format!("/api/v1/namespaces?{q}").parse().expect("uri"))?;
        list_at(&p, |t| Ok((7, t.to_string())))
    }

    #[test]
    fn list_options_pick_the_revision() {
        assert_eq!(at("").expect("unset"), ListAt::Latest { not_older_than: 0 });
        assert_eq!(at("resourceVersion=0").expect("any"), ListAt::Latest { not_older_than: 0 });
        assert_eq!(at("resourceVersion=5").expect("legacy"), ListAt::Latest { not_older_than: 5 });
        assert_eq!(
            at("resourceVersion=5&resourceVersionMatch=NotOlderThan").expect("not older"),
            ListAt::Latest { not_older_than: 5 }
        );
        assert_eq!(at("resourceVersion=5&resourceVersionMatch=Exact").expect("exact"), ListAt::Exact(5));
        assert_eq!(at("continue=k").expect("continue"), ListAt::Continue { revision: 7, after: "k".into() });
    }

    #[test]
    fn contradictory_list_options_are_refused_naming_them() {
        for q in [
            "resourceVersionMatch=Exact",
            "resourceVersion=0&resourceVersionMatch=Exact",
            "resourceVersion=3&resourceVersionMatch=NotOlderThan&continue=k",
        ] {
            let e = at(q).expect_err(q);
            assert_eq!(e.code(), 422, "{q}: {e}");
            assert!(e.to_string().contains("resourceVersionMatch"), "{q}: {e}");
        }
        let e = at("resourceVersion=3&continue=k").expect_err("rv and continue");
        assert_eq!(e.code(), 400);
        assert!(at("resourceVersion=x").expect_err("not a number").to_string().contains("resourceVersion"));
    }
}
