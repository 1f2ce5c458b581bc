//! A kubeconfig for a Berth API server.

/// How a kubeconfig's user reaches the server: the CA that signed the
/// server's certificate (PEM) and a bearer token.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub ca_pem: Option<String>,
    pub token: Option<String>,
}

/// Kubeconfig YAML with one cluster, user and context, all named `berth`,
/// pointing at `server_url` (e.g. `http://127.0.0.1:6443`), without credentials.
pub fn kubeconfig(server_url: &str) -> String {
    kubeconfig_with(server_url, &Credentials::default())
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// [`kubeconfig`] carrying `creds`: the CA as `certificate-authority-data`
/// and the token as the user's `token`.
pub fn kubeconfig_with(server_url: &str, creds: &Credentials) -> String {
    let ca = match &creds.ca_pem {
        Some(pem) => format!("\n    certificate-authority-data: {}", base64(pem.as_bytes())),
        None => String::new(),
    };
    let user = match &creds.token {
        Some(t) => format!("\n    token: {t}"),
        None => " {}".into(),
    };
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: berth
  cluster:
    server: {server_url}{ca}
users:
- name: berth
  user:{user}
contexts:
- name: berth
  context:
    cluster: berth
    user: berth
    namespace: default
current-context: berth
preferences: {{}}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_server() {
        let k = kubeconfig("http://127.0.0.1:1234");
        assert!(k.contains("server: http://127.0.0.1:1234"));
        assert!(k.contains("current-context: berth"));
        assert!(k.contains("user: {}"));
    }

    #[test]
    fn carries_the_ca_and_token() {
        let creds = Credentials { ca_pem: Some("PEM!".into()), token: Some("t0k".into()) };
        let k = kubeconfig_with("https://127.0.0.1:1234", &creds);
        assert!(k.contains("certificate-authority-data: UEVNIQ=="), "{k}");
        assert!(k.contains("    token: t0k"), "{k}");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
