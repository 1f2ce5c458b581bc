//! Registry credentials from a placement's `imagePullSecret`: a
//! `kubernetes.io/dockerconfigjson` Secret in the placement's namespace,
//! whose `auths` map is keyed by registry host. The entry for the image's
//! registry gives the user and password, as `auth` (base64 of
//! `user:password`) or as `username` and `password`. Every way this can go
//! wrong is an error that names the Secret and what is wrong with it.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use serde::Deserialize;

use crate::runtime::RegistryAuth;

/// The type of Secret that holds registry credentials.
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
/// The key of its data.
const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";

/// Why no credentials could be read; the message says which Secret and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("imagePullSecret {secret:?} not found in namespace {namespace:?}")]
    NotFound { namespace: String, secret: String },
    #[error("imagePullSecret {secret:?} has type {found:?}, not {DOCKER_CONFIG_JSON:?}")]
    WrongType { secret: String, found: String },
    #[error("imagePullSecret {secret:?} has no entry for registry {host:?} in its auths")]
    NoEntry { secret: String, host: String },
    #[error("imagePullSecret {secret:?}: {message}")]
    Malformed { secret: String, message: String },
    #[error("reading imagePullSecret {secret:?}: {message}")]
    Read { secret: String, message: String },
}

/// The credentials for `image` from Secret `namespace/secret`.
pub async fn registry_auth(
    client: &Client,
    namespace: &str,
    secret: &str,
    image: &str,
) -> Result<RegistryAuth, CredentialError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let found = match api.get_opt(secret).await {
        Ok(s) => s,
        Err(e) => return Err(CredentialError::Read { secret: secret.into(), message: e.to_string() }),
    };
    let s = found.ok_or_else(|| CredentialError::NotFound { namespace: namespace.into(), secret: secret.into() })?;
    let kind = s.type_.clone().unwrap_or_default();
    if kind != DOCKER_CONFIG_JSON {
        return Err(CredentialError::WrongType { secret: secret.into(), found: kind });
    }
    let malformed = |message: String| CredentialError::Malformed { secret: secret.into(), message };
    let data = s
        .data
        .as_ref()
        .and_then(|d| d.get(DOCKER_CONFIG_JSON_KEY))
        .ok_or_else(|| malformed(format!("no {DOCKER_CONFIG_JSON_KEY} in its data")))?;
    let host = registry_host(image).map_err(malformed)?;
    credentials_for(&data.0, &host, secret)
}

/// The registry host of `image` as its reference names it
/// (`127.0.0.1:5000`, `docker.io`, …).
pub fn registry_host(image: &str) -> Result<String, String> {
    let reference: oci_client::Reference =
        image.parse().map_err(|e| format!("{image}: not an image reference: {e}"))?;
    Ok(reference.registry().to_string())
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The credentials for `host` in a `.dockerconfigjson` document.
pub fn credentials_for(config: &[u8], host: &str, secret: &str) -> Result<RegistryAuth, CredentialError> {
    let malformed = |message: String| CredentialError::Malformed { secret: secret.into(), message };
    let config: DockerConfig =
        serde_json::from_slice(config).map_err(|e| malformed(format!("{DOCKER_CONFIG_JSON_KEY} is not valid: {e}")))?;
    let wanted = normalize(host);
    let entry = config
        .auths
        .iter()
        .find(|(key, _)| normalize(key) == wanted)
        .map(|(_, e)| e)
        .ok_or_else(|| CredentialError::NoEntry { secret: secret.into(), host: host.into() })?;
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(RegistryAuth { username: username.clone(), password: password.clone() });
    }
    let auth = entry.auth.as_deref().ok_or_else(|| malformed(format!("the entry for {host:?} has no credentials")))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|e| malformed(format!("the auth of {host:?} is not base64: {e}")))?;
    let text = String::from_utf8(decoded).map_err(|_| malformed(format!("the auth of {host:?} is not UTF-8")))?;
    let (username, password) =
        text.split_once(':').ok_or_else(|| malformed(format!("the auth of {host:?} is not user:password")))?;
    Ok(RegistryAuth { username: username.into(), password: password.into() })
}

/// A registry as `auths` may key it (`https://index.docker.io/v1/`,
/// `http://127.0.0.1:5000`, `127.0.0.1:5000`) reduced to its host and port;
/// Docker Hub's names are one.
fn normalize(key: &str) -> String {
    let rest = key.split_once("://").map_or(key, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or_default().to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".into(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(entries: &str) -> Vec<u8> {
        format!(r#"{{"auths":{{{entries}}}}}"#).into_bytes()
    }

    #[test]
    fn the_auth_field_is_base64_of_user_and_password() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:with-colon");
        let c = config(&format!(r#""127.0.0.1:5000":{{"auth":"{auth}"}}"#));
        let got = credentials_for(&c, "127.0.0.1:5000", "reg").unwrap();
        assert_eq!(got, RegistryAuth { username: "alice".into(), password: "s3cret:with-colon".into() });
    }

    #[test]
    fn username_and_password_fields_are_read() {
        let c = config(r#""http://127.0.0.1:5000/":{"username":"bob","password":"pw"}"#);
        let got = credentials_for(&c, "127.0.0.1:5000", "reg").unwrap();
        assert_eq!(got, RegistryAuth { username: "bob".into(), password: "pw".into() });
    }

    #[test]
    fn docker_hub_keys_match_docker_io_images() {
        let c = config(r#""https://index.docker.io/v1/":{"username":"u","password":"p"}"#);
        assert_eq!(registry_host("busybox:latest").unwrap(), "docker.io");
        assert!(credentials_for(&c, "docker.io", "reg").is_ok());
    }

    #[test]
    fn another_hosts_entry_is_no_entry() {
        let c = config(r#""registry.example.com":{"username":"u","password":"p"}"#);
        let err = credentials_for(&c, "127.0.0.1:5000", "reg").unwrap_err();
        assert_eq!(err, CredentialError::NoEntry { secret: "reg".into(), host: "127.0.0.1:5000".into() });
        assert!(err.to_string().contains("no entry for registry \"127.0.0.1:5000\""), "{err}");
    }

    #[test]
    fn malformed_documents_say_what_is_wrong() {
        let err = credentials_for(b"not json", "h", "reg").unwrap_err().to_string();
        assert!(err.contains(".dockerconfigjson is not valid"), "{err}");
        let err = credentials_for(&config(r#""h":{"auth":"%%%"}"#), "h", "reg").unwrap_err().to_string();
        assert!(err.contains("not base64"), "{err}");
        let err = credentials_for(&config(r#""h":{}"#), "h", "reg").unwrap_err().to_string();
        assert!(err.contains("no credentials"), "{err}");
    }
}
