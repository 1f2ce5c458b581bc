//! Benchmarks' measuring code, shared by `make bench` and the tests that
//! check it runs.

pub mod launch;
