//! hogguard-rotate against the PostHog stand-in and real files: every provider, the stores,
//! locking, faults and crashes at every step.

mod assisted;
mod command_store;
mod crashes;
mod errors;
mod killed;
mod locking;
mod plan;
mod private;
mod project_secret_key;
mod support;
