//! The server's errors, and the one place they become wire responses:
//! `impl IntoResponse for Error` answers a `metav1.Status`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::storage::StorageError;

/// One field-level problem, as `Status.details.causes[]` carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, `FieldValueTypeInvalid`, …
    pub reason: &'static str,
    /// The field path, e.g. `spec.taskGroups[0].resources.memory`.
    pub field: String,
    /// What is wrong, e.g. `Required value`.
    pub message: String,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// What a resource error is about: `jobs.berth.dev "hello"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub group: String,
    /// The plural resource name (`jobs`); for `Invalid`, the kind (`Job`).
    pub kind: String,
    pub name: String,
}

impl Subject {
    fn qualified(&self) -> String {
        if self.group.is_empty() { self.kind.clone() } else { format!("{}.{}", self.kind, self.group) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    /// No valid credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// Authorization refused a request on a resource: the message, and what
    /// it was about (`details` of the Status).
    #[error("{1}")]
    Denied(Subject, String),
    /// A named object is missing.
    #[error("{} \"{}\" not found", .0.qualified(), .0.name)]
    NotFound(Subject),
    /// A path the server does not serve.
    #[error("{0}")]
    NoRoute(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{} \"{}\" already exists", .0.qualified(), .0.name)]
    AlreadyExists(Subject),
    #[error("Operation cannot be fulfilled on {} \"{}\": {}", .0.qualified(), .0.name, .1)]
    Conflict(Subject, String),
    /// A resourceVersion or continue token older than the kept history (410).
    #[error("{0}")]
    Expired(String),
    /// A continue token older than the kept history: 410, with a token in
    /// `metadata.continue` that continues the list at the latest revision.
    #[error("{INCONSISTENT_CONTINUE}")]
    ExpiredContinue(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A request body or an object over a size limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// A resourceVersion newer than the store has (504, as Kubernetes'
    /// "Too large resource version": clients retry).
    #[error("{0}")]
    FutureRevision(String),
    #[error("{} \"{}\" is invalid: {}", .0.qualified(), .0.name, causes_text(.1))]
    Invalid(Subject, Vec<Cause>),
    /// A server-side apply would change fields other managers own.
    #[error("{0}")]
    ApplyConflict(String, Vec<Cause>),
    #[error("{0}")]
    Internal(String),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

fn causes_text(causes: &[Cause]) -> String {
    match causes {
        [one] => one.to_string(),
        many => format!("[{}]", many.iter().map(Cause::to_string).collect::<Vec<_>>().join(", ")),
    }
}

impl Error {
    pub fn code(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) | Error::Denied(..) => StatusCode::FORBIDDEN,
            Error::NotFound(_) | Error::NoRoute(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Error::AlreadyExists(_) | Error::Conflict(..) | Error::ApplyConflict(..) => StatusCode::CONFLICT,
            Error::Expired(_) | Error::ExpiredContinue(_) => StatusCode::GONE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::FutureRevision(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::Invalid(..) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Internal(_) | Error::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "BadRequest",
            Error::Unauthorized(_) => "Unauthorized",
            Error::Forbidden(_) | Error::Denied(..) => "Forbidden",
            Error::NotFound(_) | Error::NoRoute(_) => "NotFound",
            Error::MethodNotAllowed(_) => "MethodNotAllowed",
            Error::NotAcceptable(_) => "NotAcceptable",
            Error::AlreadyExists(_) => "AlreadyExists",
            Error::Conflict(..) | Error::ApplyConflict(..) => "Conflict",
            Error::Expired(_) | Error::ExpiredContinue(_) => "Expired",
            Error::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Error::TooLarge(_) => "RequestEntityTooLarge",
            Error::FutureRevision(_) => "Timeout",
            Error::Invalid(..) => "Invalid",
            Error::Internal(_) | Error::Io(_) => "InternalError",
        }
    }

    /// The `metav1.Status` body (also the object of a watch `ERROR` event).
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code().as_u16(),
        });
        let details = match self {
            Error::NotFound(s) | Error::AlreadyExists(s) | Error::Conflict(s, _) | Error::Denied(s, _) => {
                Some(json!({"name": s.name, "group": s.group, "kind": s.kind}))
            }
            Error::Invalid(s, causes) => Some(json!({
                "name": s.name,
                "group": s.group,
                "kind": s.kind,
                "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
            })),
            Error::ApplyConflict(_, causes) => Some(json!({
                "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
            })),
            Error::FutureRevision(_) => Some(json!({
                "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                "retryAfterSeconds": 1,
            })),
            _ => None,
        };
        if let Some(d) = details {
            status["details"] = d;
        }
        if let Error::ExpiredContinue(token) = self {
            status["metadata"] = json!({"continue": token});
        }
        status
    }

    /// A resourceVersion the store has not reached yet.
    pub fn future(requested: u64, current: u64) -> Error {
        Error::FutureRevision(format!("Too large resource version: {requested}, current: {current}"))
    }

    /// Maps a storage error about `subject`.
    pub fn from_storage(e: StorageError, subject: &Subject) -> Error {
        match e {
            StorageError::AlreadyExists(_) => Error::AlreadyExists(subject.clone()),
            StorageError::NotFound(_) => Error::NotFound(subject.clone()),
            StorageError::Conflict { .. } => Error::Conflict(subject.clone(), CONFLICT_MESSAGE.into()),
            StorageError::Compacted { requested, oldest } => {
                Error::Expired(format!("too old resource version: {requested} ({oldest})"))
            }
            StorageError::FutureRevision(r) => Error::FutureRevision(format!("Too large resource version: {r}")),
            StorageError::Backend(m) => Error::Internal(m),
        }
    }
}

/// What Kubernetes says when a continue token has expired.
pub const INCONSISTENT_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list \
     result. You can start a new list without the continue parameter, or use the continue token in this response to \
     retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - \
     objects that were created, modified, or deleted between the time the first chunk was returned and now may show \
     up in the list.";

/// What Kubernetes says on a stale write.
pub const CONFLICT_MESSAGE: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Error {
        Error::from_storage(e, &Subject { group: String::new(), kind: "object".into(), name: String::new() })
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if self.code().is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        let body = serde_json::to_vec(&self.status()).unwrap_or_default();
        let mut resp = (self.code(), body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        resp
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_status_names_each_field() {
        let s = Subject { group: "berth.dev".into(), kind: "Job".into(), name: "hello".into() };
        let e = Error::Invalid(
            s,
            vec![Cause {
                reason: "FieldValueRequired",
                field: "spec.taskGroups[0].image".into(),
                message: "Required value".into(),
            }],
        );
        let st = e.status();
        assert_eq!(st["code"], 422);
        assert_eq!(st["message"], "Job.berth.dev \"hello\" is invalid: spec.taskGroups[0].image: Required value");
        assert_eq!(st["details"]["causes"][0]["field"], "spec.taskGroups[0].image");
    }

    #[test]
    fn not_found_reads_like_kubernetes() {
        let s = Subject { group: String::new(), kind: "namespaces".into(), name: "nope".into() };
        assert_eq!(Error::NotFound(s).to_string(), "namespaces \"nope\" not found");
    }
}
