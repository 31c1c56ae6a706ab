//! GitHub (`X-Hub-Signature-256: sha256=<hex>`).
//!
//! HMAC-SHA256 of the raw body, keyed by the secret text as UTF-8. The legacy SHA-1 `sha1=` form
//! is refused. GitHub signs no timestamp, so a replay store remembers a delivery by its body,
//! for a window of twice the tolerance: a copy within the window is a replay, a copy after it is
//! taken again. The `X-GitHub-Delivery` GUID is not signed, so the store does not key on it (see
//! [`replay`](crate::replay)).

use crate::encoding::encode_hex;
use crate::secret::{KeyEncoding, SecretError, WebhookSecret};
use crate::signature::SignedContent;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Signs a delivery, returning the `X-Hub-Signature-256` value (`sha256=<hex>`).
///
/// # Errors
///
/// Fails when `secret` is empty or has surrounding whitespace.
pub fn sign(secret: &WebhookSecret, body: &[u8]) -> Result<String, SecretError> {
    let key = secret.key(KeyEncoding::Text)?;
    let mac = SignedContent::Body.mac(key.as_bytes(), body);
    Ok(format!("sha256={}", encode_hex(&mac)))
}
