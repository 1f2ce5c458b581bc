//! How `berth apiserver` and `berth up` secure the API: TLS with a
//! generated CA (or the user's certificate), bearer tokens from a token
//! file (generated when none is given), and a kubeconfig per role.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use berth_apiserver::auth::generated::FrameworkRef;
use berth_apiserver::auth::{Tokens, generated, pki};
use berth_apiserver::{Credentials, Options};
use clap::Args;

#[derive(Args, Clone, Debug)]
pub struct SecureArgs {
    /// Serving certificate (PEM, with its chain) instead of one signed by the generated CA
    #[arg(long, requires = "tls_private_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert-file
    #[arg(long, requires = "tls_cert_file")]
    tls_private_key_file: Option<PathBuf>,
    /// CA certificate (PEM) to write into kubeconfigs when bringing your own serving certificate
    #[arg(long, requires = "tls_cert_file")]
    tls_ca_file: Option<PathBuf>,
    /// A further DNS name or IP address for the generated serving certificate (repeatable);
    /// 127.0.0.1 and localhost are always there
    #[arg(long = "tls-san")]
    tls_sans: Vec<String>,
    /// Bearer tokens in Kubernetes' static token format: `token,user,uid,"group1,group2"` per line
    /// (default: generate DATA_DIR/tokens.csv with admin, controllers and agent tokens)
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Frameworks to generate tokens and kubeconfigs (`DATA_DIR/framework-NS-NAME.kubeconfig`) for,
    /// as NAMESPACE/NAME, comma-separated: each may answer Offers and create Placements in its
    /// namespace, register and suppress its own Framework, and renew its Lease; only when the token file is generated
    #[arg(long, value_delimiter = ',', conflicts_with = "token_auth_file")]
    frameworks: Vec<FrameworkRef>,
    /// Serve plain HTTP without TLS and without authentication or authorization: every client is
    /// an admin. INSECURE: only for a throwaway cluster on a trusted machine (kubectl, like all
    /// Kubernetes clients, sends no token over plain HTTP)
    #[arg(
        long,
        conflicts_with_all = ["tls_cert_file", "tls_private_key_file", "tls_ca_file", "tls_sans", "token_auth_file"]
    )]
    insecure_http: bool,
}

/// A secured server, ready to serve.
pub struct Secured {
    pub opts: Options,
    pub url: String,
    /// The admin kubeconfig, `DATA_DIR/kubeconfig` (written last).
    pub kubeconfig: PathBuf,
}

/// Sets up TLS and tokens under `data_dir` for a server on `addr`, and
/// writes a kubeconfig for each role's token there (agents: one per name in
/// `agents`, frameworks: one per `--frameworks`, when the token file is generated).
pub fn prepare(data_dir: &Path, addr: SocketAddr, args: &SecureArgs, agents: &[String]) -> anyhow::Result<Secured> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let data_dir = std::path::absolute(data_dir)?;
    let mut opts = Options::default();
    if args.insecure_http {
        tracing::warn!("serving plain HTTP without authentication (--insecure-http): every client is an admin");
        let url = format!("http://{addr}");
        let text = berth_apiserver::kubeconfig(&url);
        let roles = ["controllers".to_string()]
            .into_iter()
            .chain(agents.iter().map(|a| format!("agent-{a}")))
            .chain(args.frameworks.iter().map(|f| format!("framework-{}-{}", f.namespace, f.name)));
        for role in roles {
            write_private(&data_dir.join(format!("{role}.kubeconfig")), &text)?;
        }
        let kubeconfig = data_dir.join("kubeconfig");
        write_private(&kubeconfig, &text)?;
        return Ok(Secured { opts, url, kubeconfig });
    }
    let (scheme, ca_pem) = {
        let (cert, key, ca) = match (&args.tls_cert_file, &args.tls_private_key_file) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone(), args.tls_ca_file.clone()),
            _ => {
                let files = pki::ensure_generated(&data_dir.join("pki"), &args.tls_sans)?;
                (files.cert, files.key, Some(files.ca_cert))
            }
        };
        opts.tls = Some(pki::server_config(&cert, &key)?);
        let ca_pem = match ca {
            Some(p) => Some(std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?),
            None => None,
        };
        ("https", ca_pem)
    };
    let tokens = match &args.token_auth_file {
        Some(path) => Tokens::read(path)?,
        None => generated::ensure_token_file(&data_dir.join("tokens.csv"), agents, &args.frameworks)?,
    };
    let url = format!("{scheme}://{addr}");
    let files = generated::kubeconfig_files(&tokens);
    remove_stale_kubeconfigs(&data_dir, &files.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>())?;
    let mut admin = None;
    for (file, entry) in files {
        let creds = Credentials { ca_pem: ca_pem.clone(), token: Some(entry.token.clone()) };
        let text = berth_apiserver::kubeconfig_with(&url, &creds);
        if file == "kubeconfig" {
            admin = Some(text);
        } else {
            write_private(&data_dir.join(&file), &text)?;
        }
    }
    let kubeconfig = data_dir.join("kubeconfig");
    match admin {
        Some(text) => write_private(&kubeconfig, &text)?,
        None => {
            tracing::warn!("the token file has no admin (group system:masters): writing a kubeconfig without a token");
            write_private(&kubeconfig, &berth_apiserver::kubeconfig_with(&url, &Credentials { ca_pem, token: None }))?;
        }
    }
    opts.tokens = Some(Arc::new(tokens));
    Ok(Secured { opts, url, kubeconfig })
}

/// Removes role kubeconfigs an earlier start wrote whose role has no token now.
fn remove_stale_kubeconfigs(data_dir: &Path, keep: &[&str]) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(data_dir).with_context(|| format!("reading {}", data_dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let ours = name == "controllers.kubeconfig"
            || ((name.starts_with("agent-") || name.starts_with("framework-")) && name.ends_with(".kubeconfig"));
        if ours && !keep.contains(&name.as_str()) {
            std::fs::remove_file(entry.path()).with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The kubeconfig `prepare` wrote for a role, or why there is none.
pub fn role_kubeconfig(data_dir: &Path, file: &str) -> anyhow::Result<PathBuf> {
    let path = data_dir.join(file);
    anyhow::ensure!(
        path.exists(),
        "no token for {file}: the token file (--token-auth-file) has none for this role; add one \
         (controllers: group berth:controllers; agent NAME: user berth:agent:NAME, group berth:agents)"
    );
    Ok(path)
}

/// Writes `text` to `path` readable by its owner only, atomically: a reader
/// never sees half a file.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    pki::write_file(&tmp, text.as_bytes(), true)?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
