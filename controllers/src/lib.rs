//! `berth-controllers`
