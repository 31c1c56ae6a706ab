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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hogguard_testkit::errors::{assert_no_repeated_segment, chain};
    use hogguard_webhook::{FileReplayStore, Scheme, WebhookSecret};

    use super::*;
    use crate::config::GatewayConfig;
    use crate::forward::UpstreamFailure;

    #[test]
    fn every_error_names_each_cause_once() {
        // See: issue 15 point 1 (a cause printed twice by `{:#}`).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay");
        let _held = FileReplayStore::open(&path).unwrap();
        let locked = GatewayError::ReplayStore(FileReplayStore::open(&path).unwrap_err());
        assert_eq!(chain(&locked)[0], "cannot open the replay store");
        assert!(chain(&locked)[1].contains("is locked by another hogguard process"));

        let config = GatewayConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            "http://127.0.0.1:1".parse().unwrap(),
            Scheme::Standard,
            vec![WebhookSecret::new("whsec_ not base64")],
        );
        let unusable = config.build_verifier().unwrap_err();
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let upstream_failures = [
            UpstreamFailure::Unreachable(Box::new(io::Error::other(refused))),
            UpstreamFailure::UnreadableAnswer("length limit exceeded".into()),
            UpstreamFailure::TimedOut(Duration::from_millis(300)),
        ];
        let errors: Vec<Box<dyn std::error::Error>> = vec![
            Box::new(locked),
            Box::new(unusable),
            Box::new(GatewayError::Bind {
                address: "127.0.0.1:80".parse().unwrap(),
                source: io::ErrorKind::PermissionDenied.into(),
            }),
            Box::new(GatewayError::ZeroLimit {
                setting: "max_connections",
            }),
        ];
        for error in errors.iter().map(AsRef::as_ref) {
            assert_no_repeated_segment(error);
        }
        for failure in &upstream_failures {
            assert_no_repeated_segment(failure);
        }
    }
}
