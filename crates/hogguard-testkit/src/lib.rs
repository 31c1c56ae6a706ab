//! Test support shared by hogguard's crates.
//!
//! Tests never commit a real-looking PostHog key: they make one at run time with PostHog's own
//! algorithm ([`keys`]) and build the git repositories they scan ([`git`]). What a test cannot
//! change for itself alone (the umask, resource limits) it changes in a child process that
//! runs it again ([`child`]).

pub mod child;
pub mod errors;
pub mod git;
pub mod keys;
#[cfg(feature = "posthog")]
pub mod posthog;
pub mod tools;
