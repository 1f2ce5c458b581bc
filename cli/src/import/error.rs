//! What can go wrong importing a Marathon app: input that is not an app
//! definition, and fields that cannot be carried over (each named by its
//! JSON path in the app, so a user can find it).

use std::fmt;

/// How serious a [`Problem`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The value is wrong for Marathon or for Berth: always refused.
    Invalid,
    /// A Marathon feature Berth does not have: refused, or dropped with a
    /// warning under `--ignore-unsupported`.
    Unsupported,
    /// Carried over with a difference the user should know; never refused.
    Note,
}

/// One field of the app and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The JSON path in the app: `container.volumes`, `healthChecks[0].port`.
    pub path: String,
    pub message: String,
    pub severity: Severity,
}

impl Problem {
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { path: path.into(), message: message.into(), severity: Severity::Invalid }
    }

    pub fn unsupported(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { path: path.into(), message: message.into(), severity: Severity::Unsupported }
    }

    pub fn note(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { path: path.into(), message: message.into(), severity: Severity::Note }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why an app was not imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Not JSON, or a field of the wrong type.
    #[error("not a Marathon app definition: {0}")]
    Json(#[from] serde_json::Error),
    /// Fields that cannot be imported, every one of them.
    #[error("cannot import this Marathon app:{}", list(.0))]
    Refused(Vec<Problem>),
    /// The mapping produced a Job Berth would refuse (a bug of the mapping).
    #[error("the imported Job would be refused:{}", list(.0))]
    InvalidJob(Vec<String>),
}

fn list(items: &[impl fmt::Display]) -> String {
    items.iter().map(|p| format!("\n  {p}")).collect()
}
