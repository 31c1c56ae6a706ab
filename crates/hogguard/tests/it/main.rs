//! Integration tests of the `hogguard` binary, one test binary for all of them.

mod audit;
mod check;
mod distribution;
mod init;
mod keys;
mod leaks;
mod live;
mod proxy;
mod rotate;
mod scan;
mod scopes;
mod serve;
mod settings;
mod support;
mod webhook;
