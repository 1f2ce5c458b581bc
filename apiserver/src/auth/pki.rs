//! Certificates: a CA and a serving certificate generated into a directory
//! (as `berth up` and `berth apiserver` do when the user brings none), or
//! PEM files a user brings; and the rustls server configuration from them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {message}")]
    Pem { path: String, message: String },
    #[error("the TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// The SANs every generated serving certificate carries.
pub const DEFAULT_SANS: [&str; 2] = ["127.0.0.1", "localhost"];

/// Files of a generated PKI directory.
#[derive(Clone, Debug)]
pub struct Generated {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io { path: path.display().to_string(), source }
}

/// Writes `contents` to `path`, readable by its owner only when `secret`.
pub fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), PkiError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mode = if secret { 0o600 } else { 0o644 };
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(path).map_err(io(path))?;
    f.write_all(contents).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, "berth-ca");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p
}

/// Today's date `years` on, as (year, month, day); the day is capped at 28 so every month has it.
fn years_from_now(years: i16) -> (i16, u8, u8) {
    let now = jiff::Zoned::now().date();
    (now.year() + years, now.month() as u8, now.day().min(28) as u8)
}

fn validity(p: &mut CertificateParams, years: i16) {
    let (y, m, d) = years_from_now(0);
    p.not_before = rcgen::date_time_ymd(y.into(), m, d);
    let (y, m, d) = years_from_now(years);
    p.not_after = rcgen::date_time_ymd(y.into(), m, d);
}

/// Makes sure `dir` holds a CA (`ca.crt`, `ca.key`, created once and kept)
/// and a serving certificate for `sans` signed by it (`apiserver.crt`,
/// `apiserver.key`, written anew on each call so new SANs take effect).
pub fn ensure_generated(dir: &Path, sans: &[String]) -> Result<Generated, PkiError> {
    let files =
        Generated { ca_cert: dir.join("ca.crt"), cert: dir.join("apiserver.crt"), key: dir.join("apiserver.key") };
    let ca_key_path = dir.join("ca.key");
    let ca_key = if ca_key_path.exists() && files.ca_cert.exists() {
        let pem = std::fs::read_to_string(&ca_key_path).map_err(io(&ca_key_path))?;
        KeyPair::from_pem(&pem)?
    } else {
        let key = KeyPair::generate()?;
        let mut params = ca_params();
        validity(&mut params, 10);
        let cert = params.self_signed(&key)?;
        write_file(&ca_key_path, key.serialize_pem().as_bytes(), true)?;
        write_file(&files.ca_cert, cert.pem().as_bytes(), false)?;
        key
    };
    let issuer = Issuer::new(ca_params(), ca_key);

    let mut names: Vec<String> = DEFAULT_SANS.iter().map(|s| s.to_string()).collect();
    for s in sans {
        if !names.contains(s) {
            names.push(s.clone());
        }
    }
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name.push(DnType::CommonName, "berth-apiserver");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, 1);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    write_file(&files.key, key.serialize_pem().as_bytes(), true)?;
    write_file(&files.cert, cert.pem().as_bytes(), false)?;
    Ok(files)
}

/// Reads a PEM certificate chain and its private key.
pub fn load(cert: &Path, key: &Path) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
    let pem = |path: &Path, message: String| PkiError::Pem { path: path.display().to_string(), message };
    let cert_bytes = std::fs::read(cert).map_err(io(cert))?;
    let chain = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem(cert, "no CERTIFICATE block".into()));
    }
    let key_bytes = std::fs::read(key).map_err(io(key))?;
    let private = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| pem(key, e.to_string()))?;
    Ok((chain, private))
}

/// A rustls server configuration (ring provider; HTTP/2 and HTTP/1.1 by ALPN)
/// serving `cert` with `key`.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, PkiError> {
    let (chain, private) = load(cert, key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_kept_and_the_serving_certificate_follows_the_sans() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ensure_generated(dir.path(), &[]).expect("generate");
        let ca = std::fs::read(&first.ca_cert).expect("ca");
        let second = ensure_generated(dir.path(), &["berth.example.com".into()]).expect("again");
        assert_eq!(std::fs::read(&second.ca_cert).expect("ca"), ca, "the CA is not replaced");
        server_config(&second.cert, &second.key).expect("a usable serving certificate");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("ca.key")).expect("key").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the CA key is private");
    }

    #[test]
    fn a_missing_key_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = ensure_generated(dir.path(), &[]).expect("generate");
        let err = server_config(&files.cert, &dir.path().join("nope.key")).expect_err("missing");
        assert!(err.to_string().contains("nope.key"), "{err}");
    }
}
