//! hogguard's PostHog API proxy: services call PostHog through it with a client token of
//! their own, each limited to the scopes it needs; the proxy checks the scope every call
//! requires, injects the environment's real key, and audits every call.
#![deny(missing_docs)]

mod openapi;
pub mod path;
mod scope;
mod table;

pub use openapi::{ImportError, PERSONAL_KEY_SCHEME, import_openapi};
pub use scope::{Access, InvalidScope, Scope, minimal as minimal_scopes};
pub use table::{
    ActionRow, BUILT_IN_TABLE, Lookup, OperationRow, Requirement, ScopeTable, TABLE_FORMAT,
    TableError, TableFile, ViewsetRow,
};
