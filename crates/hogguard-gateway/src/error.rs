//! Why a gateway could not start.

use std::io;
use std::net::SocketAddr;

use hogguard_webhook::replay::FileStoreError;
use hogguard_webhook::{BuildError, SecretError};

/// Why [`Gateway::bind`](crate::Gateway::bind) or [`run_until_signalled`](crate::run_until_signalled)
/// failed. Once serving, the gateway reports problems as events and keeps going.
///
/// Messages name the problem and where it is, never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// No secret is configured, so nothing could ever verify.
    #[error("no webhook secret configured")]
    NoSecrets,
    /// A configured secret cannot be used with the scheme.
    #[error("webhook secret #{} is not usable", .index + 1)]
    Secret {
        /// Position of the secret in [`GatewayConfig::secrets`](crate::GatewayConfig::secrets),
        /// from 0.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: SecretError,
    },
    /// The signature scheme cannot be used as configured (such as a hex scheme header name that
    /// is not a valid HTTP header name).
    #[error("the signature scheme is not usable")]
    Scheme(#[source] BuildError),
    /// A limit is zero, so the gateway could never take a delivery.
    #[error("{setting} must be at least 1")]
    ZeroLimit {
        /// The [`GatewayConfig`](crate::GatewayConfig) field.
        setting: &'static str,
    },
    /// The replay store file cannot be created, locked or read (its path is in the source).
    #[error("cannot open the replay store")]
    ReplayStore(#[source] FileStoreError),
    /// An address cannot be listened on.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The async runtime cannot be started.
    #[error("cannot start the async runtime")]
    Runtime(#[source] io::Error),
    /// The SIGTERM or Ctrl-C handler cannot be installed.
    #[error("cannot install the shutdown signal handlers")]
    Signal(#[source] io::Error),
}
