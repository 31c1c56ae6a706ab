//! Test support shared by hogguard's crates.
//!
//! Tests never commit a real-looking PostHog key: they make one at run time with PostHog's own
//! algorithm ([`keys`]) and build the git repositories they scan ([`git`]).

pub mod errors;
pub mod git;
pub mod keys;
#[cfg(feature = "posthog")]
pub mod posthog;
pub mod tools;
