//! One module per subcommand.

pub(crate) mod audit;
pub(crate) mod check;
pub(crate) mod docs;
pub(crate) mod init;
pub(crate) mod keys;
pub(crate) mod proxy;
pub(crate) mod rotate;
pub(crate) mod scan;
pub(crate) mod scopes;
pub(crate) mod webhook;
