//! URL paths to what they name.

/// A parsed request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Root,
    Version,
    Health,
    /// `/api`
    Api,
    /// `/apis`
    Apis,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1` (group "") or `/apis/{group}/{version}`
    GroupVersion(String, String),
    OpenApiV3Root,
    /// `/openapi/v3/{api/v1 | apis/group/version}`
    OpenApiV3(String),
    Resource(ResourcePath),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

pub fn parse(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    Some(match segs.as_slice() {
        [] => Route::Root,
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["api"] => Route::Api,
        ["api", "v1"] => Route::GroupVersion(String::new(), "v1".into()),
        ["api", "v1", rest @ ..] => Route::Resource(resource("", "v1", rest)?),
        ["apis"] => Route::Apis,
        ["apis", g] => Route::Group(g.to_string()),
        ["apis", g, v] => Route::GroupVersion(g.to_string(), v.to_string()),
        ["apis", g, v, rest @ ..] => Route::Resource(resource(g, v, rest)?),
        ["openapi", "v3"] => Route::OpenApiV3Root,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3(rest.join("/")),
        _ => return None,
    })
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Option<ResourcePath> {
    let mk = |ns: Option<&str>, plural: &str, name: Option<&&str>, sub: Option<&&str>| ResourcePath {
        group: group.into(),
        version: version.into(),
        namespace: ns.map(str::to_string),
        plural: plural.into(),
        name: name.map(|s| s.to_string()),
        subresource: sub.map(|s| s.to_string()),
    };
    match rest {
        // `/namespaces/{name}/status` is the Namespace's own subresource.
        ["namespaces", ns, plural, more @ ..] if !(more.is_empty() && matches!(*plural, "status" | "finalize")) => {
            if more.len() > 2 {
                return None;
            }
            Some(mk(Some(ns), plural, more.first(), more.get(1)))
        }
        [plural, more @ ..] => {
            if more.len() > 2 {
                return None;
            }
            Some(mk(None, plural, more.first(), more.get(1)))
        }
        [] => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path) {
            Some(Route::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn resource_paths() {
        let r = res("/apis/berth.dev/v1alpha1/namespaces/default/jobs/hello/status");
        assert_eq!(
            (r.group.as_str(), r.namespace.as_deref(), r.plural.as_str(), r.name.as_deref(), r.subresource.as_deref()),
            ("berth.dev", Some("default"), "jobs", Some("hello"), Some("status"))
        );
        let all = res("/apis/berth.dev/v1alpha1/jobs");
        assert_eq!((all.namespace, all.name), (None, None));
        let ns = res("/api/v1/namespaces/default");
        assert_eq!((ns.plural.as_str(), ns.name.as_deref()), ("namespaces", Some("default")));
        let nss = res("/api/v1/namespaces/default/status");
        assert_eq!((nss.plural.as_str(), nss.subresource.as_deref()), ("namespaces", Some("status")));
        let ev = res("/api/v1/namespaces/default/events");
        assert_eq!((ev.plural.as_str(), ev.namespace.as_deref()), ("events", Some("default")));
        assert_eq!(parse("/apis/berth.dev/v1alpha1"), Some(Route::GroupVersion("berth.dev".into(), "v1alpha1".into())));
        assert_eq!(
            parse("/openapi/v3/apis/berth.dev/v1alpha1"),
            Some(Route::OpenApiV3("apis/berth.dev/v1alpha1".into()))
        );
        assert_eq!(parse("/openapi/v2"), None);
        assert_eq!(parse("/apis/g/v/namespaces/ns/p/n/status/extra"), None);
    }
}
