//! Plain hex HMAC-SHA256 of the raw body, in a header of the caller's choosing, with an optional
//! `sha256=` prefix: the shape many smaller services (and PostHog's Hog templates) use.
//!
//! The key is the secret text as UTF-8. Like GitHub, there is no timestamp or id: a replay store
//! remembers a delivery by its body for a window of twice the tolerance (see
//! [`replay`](crate::replay)).

use crate::encoding::{decode_hex_mac, encode_hex};
use crate::error::VerifyError;
use crate::headers::{Headers, single_value};
use crate::secret::{KeyEncoding, SecretError, WebhookSecret};
use crate::signature::{Candidates, SignedContent};

/// The prefix GitHub requires and the hex scheme allows.
const SHA256_PREFIX: &[u8] = b"sha256=";

/// Longest header read, in bytes: the prefix and 64 digits, with slack.
const MAX_HEADER_LEN: usize = 128;

/// Signs a delivery, returning bare lowercase hex (prefix it with `sha256=` if the receiver
/// expects that).
///
/// # Errors
///
/// Fails when `secret` is empty or has surrounding whitespace.
pub fn sign(secret: &WebhookSecret, body: &[u8]) -> Result<String, SecretError> {
    let key = secret.key(KeyEncoding::Text)?;
    Ok(encode_hex(&SignedContent::Body.mac(key.as_bytes(), body)))
}

/// Whether the `sha256=` prefix must be present.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Prefix {
    Required,
    Optional,
}

/// Reads the single hex signature in header `name`.
///
/// A value that is not 64 hex digits is a signature that cannot match, not a malformed header:
/// only a missing required prefix (such as GitHub's legacy `sha1=`) is.
pub(crate) fn read<'a, H: Headers + ?Sized>(
    headers: &'a H,
    name: &'a str,
    prefix: Prefix,
) -> Result<(SignedContent<'a>, Candidates), VerifyError> {
    let value = single_value(headers, name, MAX_HEADER_LEN)?;
    let digits = match (value.strip_prefix(SHA256_PREFIX), prefix) {
        (Some(digits), _) => digits,
        (None, Prefix::Optional) => value,
        (None, Prefix::Required) => {
            return Err(VerifyError::malformed(name, "expected `sha256=<hex>`"));
        }
    };
    let mut signatures = Candidates::new();
    if let Some(mac) = decode_hex_mac(digits) {
        // Cannot fail: the first signature always fits.
        let _added = signatures.push(mac);
    }
    Ok((SignedContent::Body, signatures))
}
