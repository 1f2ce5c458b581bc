//! Validation of objects: names and labels (`names`), and each CRD's
//! structural OpenAPI v3 schema with pruning and defaulting (`schema`).

pub mod names;
pub mod schema;

pub use schema::{FieldError, Outcome, check};
