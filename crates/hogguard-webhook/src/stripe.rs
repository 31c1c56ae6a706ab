//! Stripe (`Stripe-Signature: t=…,v1=…[,v1=…][,v0=…]`).
//!
//! The signed content is `{t}.{body}` and each `v1` is lowercase hex HMAC-SHA256. **The key is
//! the whole secret text, `whsec_` included, with no base64 decoding**: the largest trap when
//! moving between Stripe and Standard Webhooks. `v0` and unknown entries are ignored, as Stripe's
//! libraries do. Unlike those libraries, timestamps too far in the future are rejected too.

use crate::encoding::{decode_hex_mac, encode_hex, parse_unix_seconds};
use crate::error::VerifyError;
use crate::headers::{Headers, single_value, trim_optional_whitespace};
use crate::secret::{KeyEncoding, SecretError, WebhookSecret};
use crate::signature::{Candidates, MAX_SIGNATURES, SignedContent};

/// Header carrying the timestamp and signatures.
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// Longest `Stripe-Signature` header read, in bytes.
const MAX_HEADER_LEN: usize = 4096;

/// Most comma-separated items read: the timestamp, [`MAX_SIGNATURES`] `v1` and as many others.
const MAX_ITEMS: usize = 1 + 2 * MAX_SIGNATURES;

/// Signs a delivery, returning the `Stripe-Signature` value (`t={timestamp},v1={hex}`).
///
/// # Errors
///
/// Fails when `secret` is not a usable Stripe signing secret.
pub fn sign(secret: &WebhookSecret, timestamp: u64, body: &[u8]) -> Result<String, SecretError> {
    let key = secret.key(KeyEncoding::StripeText)?;
    let timestamp_text = timestamp.to_string();
    let content = SignedContent::Stripe {
        timestamp_text: timestamp_text.as_bytes(),
        timestamp,
    };
    let mac = content.mac(key.as_bytes(), body);
    Ok(format!("t={timestamp},v1={}", encode_hex(&mac)))
}

/// Reads the header into the signed content and the offered `v1` signatures.
pub(crate) fn read<H: Headers + ?Sized>(
    headers: &H,
) -> Result<(SignedContent<'_>, Candidates), VerifyError> {
    let value = single_value(headers, SIGNATURE_HEADER, MAX_HEADER_LEN)?;
    let mut timestamp = None;
    let mut signatures = Candidates::new();
    for (index, item) in value.split(|&byte| byte == b',').enumerate() {
        if index == MAX_ITEMS {
            return Err(VerifyError::malformed(SIGNATURE_HEADER, "too many items"));
        }
        // Senders and proxies sometimes write `t=…, v1=…`.
        let item = trim_optional_whitespace(item);
        let Some(equals) = item.iter().position(|&byte| byte == b'=') else {
            continue;
        };
        let (key, text) = (&item[..equals], &item[equals + 1..]);
        match key {
            b"t" => {
                if timestamp.is_some() {
                    // Two readings of the signed content; refuse to pick one.
                    return Err(VerifyError::malformed(SIGNATURE_HEADER, "repeated `t=`"));
                }
                let seconds = parse_unix_seconds(text).ok_or_else(|| {
                    VerifyError::malformed(SIGNATURE_HEADER, "`t=` is not Unix seconds")
                })?;
                timestamp = Some((text, seconds));
            }
            b"v1" => {
                if let Some(mac) = decode_hex_mac(text)
                    && !signatures.push(mac)
                {
                    return Err(VerifyError::malformed(
                        SIGNATURE_HEADER,
                        "too many signatures",
                    ));
                }
            }
            _ => {}
        }
    }
    let (timestamp_text, timestamp) =
        timestamp.ok_or_else(|| VerifyError::malformed(SIGNATURE_HEADER, "no `t=` timestamp"))?;
    let content = SignedContent::Stripe {
        timestamp_text,
        timestamp,
    };
    Ok((content, signatures))
}
