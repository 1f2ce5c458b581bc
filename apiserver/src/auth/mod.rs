//! Who is asking, and what they may do: bearer tokens from a static token
//! file (authentication), role rules decided in one place (authorization),
//! and the TLS the server speaks.
//!
//! Layout:
//! - `tokens`: the token file (Kubernetes' `token,user,uid,"groups"` CSV) and token lookup.
//! - `rules`: each role's grants, in the shape of RBAC rules.
//! - `authz`: the decision, and the 403 message Kubernetes gives.
//! - `generated`: the token file and kubeconfigs generated for each role.
//! - `pki`: a generated CA and serving certificate, or the files a user brings.
//! - `listener`: a TLS listener for the server's accept loop.

pub mod authz;
pub mod generated;
pub mod listener;
pub mod pki;
pub mod rules;
pub mod tokens;

pub use authz::{Attributes, Facts, NoFacts, ResourceAttributes};
pub use rules::ADMIN_GROUP;
pub use tokens::{TokenEntry, TokenFileError, Tokens};

/// An authenticated user, as a token file names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// The group every authenticated user is in, as in Kubernetes.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

impl User {
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The user requests are served as when the server checks no tokens.
    pub fn unchecked_admin() -> User {
        User { name: "system:admin".into(), uid: String::new(), groups: vec![ADMIN_GROUP.into()] }
    }

    /// The groups as Kubernetes reports them: the user's own plus `system:authenticated`.
    pub fn reported_groups(&self) -> Vec<String> {
        let mut g = self.groups.clone();
        if !self.in_group(AUTHENTICATED_GROUP) {
            g.push(AUTHENTICATED_GROUP.into());
        }
        g
    }
}
