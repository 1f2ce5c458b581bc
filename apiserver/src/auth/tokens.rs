//! Bearer-token authentication from a static token file, in the format
//! Kubernetes' `--token-auth-file` reads: one CSV line per token,
//! `token,user,uid,"group1,group2"` (the groups column is optional).

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::User;

/// A token file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("reading the token file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("token file line {line}: {message}")]
    Line { line: usize, message: String },
}

/// One line of a token file.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenEntry {
    pub token: String,
    pub user: User,
}

/// Never prints the secret.
impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEntry").field("token", &"<redacted>").field("user", &self.user).finish()
    }
}

/// The tokens a server accepts. Looked up by the SHA-256 of the token, so
/// a lookup never compares secrets byte by byte.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    by_digest: Digests,
    entries: Vec<TokenEntry>,
}

/// Token digests to users; printed without the digests.
#[derive(Clone, Default)]
struct Digests(HashMap<[u8; 32], User>);

impl std::fmt::Debug for Digests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} tokens", self.0.len())
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    pub fn new(entries: Vec<TokenEntry>) -> Tokens {
        let by_digest = Digests(entries.iter().map(|e| (digest(&e.token), e.user.clone())).collect());
        Tokens { by_digest, entries }
    }

    /// Reads a token file.
    pub fn read(path: &Path) -> Result<Tokens, TokenFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| TokenFileError::Io { path: path.display().to_string(), source })?;
        Ok(Tokens::new(parse(&text)?))
    }

    /// The user a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<&User> {
        self.by_digest.0.get(&digest(token))
    }

    /// Every line, in file order.
    pub fn entries(&self) -> &[TokenEntry] {
        &self.entries
    }
}

/// Parses a token file's text; blank lines and lines starting with `#` are skipped.
pub fn parse(text: &str) -> Result<Vec<TokenEntry>, TokenFileError> {
    let mut out: Vec<TokenEntry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |message: String| TokenFileError::Line { line: i + 1, message };
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let fields = split_csv(line).map_err(err)?;
        if fields.len() < 3 {
            return Err(err(format!("want at least 3 columns (token,user,uid), found {}", fields.len())));
        }
        let (token, name, uid) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        if token.is_empty() {
            return Err(err("the token is empty".into()));
        }
        if name.is_empty() {
            return Err(err("the user name is empty".into()));
        }
        if let Some(earlier) = out.iter().find(|e| e.token == token) {
            return Err(err(format!("the token of user {name:?} is already given to {:?}", earlier.user.name)));
        }
        let groups = match fields.get(3) {
            Some(g) => g.split(',').map(str::trim).filter(|g| !g.is_empty()).map(String::from).collect(),
            None => Vec::new(),
        };
        out.push(TokenEntry { token: token.into(), user: User { name: name.into(), uid: uid.into(), groups } });
    }
    Ok(out)
}

/// Splits one CSV line; fields may be quoted, with `""` for a quote inside.
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (false, '"') => return Err(format!("a quote inside the unquoted field {field:?}")),
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(fields)
}

/// The line a token file holds for `entry`.
pub fn format_line(entry: &TokenEntry) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    format!("{},{},{},{}", entry.token, entry.user.name, entry.user.uid, quote(&entry.user.groups.join(",")))
}

/// A fresh random token: 256 bits from the operating system, as hex.
pub fn generate_token() -> String {
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    format!("{}{}", a.simple(), b.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kubernetes_format() {
        let text = "# comment\nabc,alice,1,\"berth:users,berth:namespace:team-a\"\n\ndef,bob,2\n";
        let tokens = Tokens::new(parse(text).expect("parses"));
        let alice = tokens.authenticate("abc").expect("alice");
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.groups, ["berth:users", "berth:namespace:team-a"]);
        assert!(tokens.authenticate("def").expect("bob").groups.is_empty());
        assert!(tokens.authenticate("nope").is_none());
        assert!(tokens.authenticate("").is_none());
    }

    #[test]
    fn names_the_bad_line() {
        let err = parse("abc,alice,1\nxyz,bob\n").expect_err("bad line");
        assert_eq!(err.to_string(), "token file line 2: want at least 3 columns (token,user,uid), found 2");
        let dup = parse("abc,alice,1\nabc,bob,2\n").expect_err("duplicate");
        assert!(dup.to_string().contains("already given to \"alice\""), "{dup}");
        assert!(parse("abc,alice,1,\"open\n").is_err());
    }

    #[test]
    fn written_lines_read_back() {
        let entry = TokenEntry {
            token: generate_token(),
            user: User {
                name: "berth:agent:a1".into(),
                uid: "u".into(),
                groups: vec!["berth:agents".into(), "x".into()],
            },
        };
        assert_eq!(entry.token.len(), 64);
        assert_eq!(parse(&format_line(&entry)).expect("parses"), vec![entry]);
    }
}
