//! Integration tests of hogguard-audit, one binary (see `shared/reference/rust-style.md` §8).

mod common;
mod crash;
mod errors;
mod files;
mod log;
mod query;
mod ship;
mod verify;
