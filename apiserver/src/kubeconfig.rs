//! A kubeconfig for a Berth API server.

/// Kubeconfig YAML with one cluster, user and context, all named `berth`,
/// pointing at `server_url` (e.g. `http://127.0.0.1:6443`).
pub fn kubeconfig(server_url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: berth
  cluster:
    server: {server_url}
users:
- name: berth
  user: {{}}
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
    #[test]
    fn names_the_server() {
        let k = super::kubeconfig("http://127.0.0.1:1234");
        assert!(k.contains("server: http://127.0.0.1:1234"));
        assert!(k.contains("current-context: berth"));
    }
}
