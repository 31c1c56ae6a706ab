//! GitHub (`X-Hub-Signature-256: sha256=<hex>`).
//!
//! HMAC-SHA256 of the raw body, keyed by the secret text as UTF-8. GitHub sends no timestamp, so
//! there is no replay window to check and nothing a replay store could key on: a captured
//! delivery can be replayed for ever. The `X-GitHub-Delivery` GUID is not signed, so
//! deduplicating on it stops accidents, not attackers. The legacy SHA-1 `sha1=` form is refused.

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
