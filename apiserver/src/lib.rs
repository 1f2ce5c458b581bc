//! `berth-apiserver`: the versioned API store.
pub mod storage;
