//! Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`), the native scheme
//! and the one PostHog's webhook destination follows.
//!
//! The signed content is `{id}.{timestamp}.{body}`; the signature header holds space-separated
//! `v1,<base64 HMAC-SHA256>` entries, so a sender can sign with an old and a new secret during a
//! rotation. Entries of other versions (`v1a,…`, `v2,…`) and entries that do not decode are
//! skipped, not errors. Secrets are `whsec_` + base64 of the key; the prefix is optional.
//!
//! Senders built on Svix brand the headers `svix-id`, `svix-timestamp` and `svix-signature`;
//! each is accepted in place of its `webhook-` name (the scheme is the same). A header sent under
//! both names must have the same value under each, or the delivery is refused as malformed:
//! two values would be two readings of one delivery.

use std::fmt;

use crate::encoding::{decode_base64_mac, encode_base64, parse_unix_seconds};
use crate::error::VerifyError;
use crate::headers::{AliasedHeader, Headers};
use crate::secret::{KeyEncoding, SecretError, WebhookSecret};
use crate::signature::{Candidates, MAX_SIGNATURES, SignedContent};

/// Header carrying the message id, unchanged across retries.
pub const ID_HEADER: &str = "webhook-id";
/// Header carrying the attempt's Unix timestamp in seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Header carrying the space-separated `v1,<base64>` signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// Svix's name for [`ID_HEADER`], accepted as an alias.
pub const SVIX_ID_HEADER: &str = "svix-id";
/// Svix's name for [`TIMESTAMP_HEADER`], accepted as an alias.
pub const SVIX_TIMESTAMP_HEADER: &str = "svix-timestamp";
/// Svix's name for [`SIGNATURE_HEADER`], accepted as an alias.
pub const SVIX_SIGNATURE_HEADER: &str = "svix-signature";

const ID: AliasedHeader = AliasedHeader {
    name: ID_HEADER,
    alias: SVIX_ID_HEADER,
    disagreement: "`webhook-id` and `svix-id` disagree",
};
const TIMESTAMP: AliasedHeader = AliasedHeader {
    name: TIMESTAMP_HEADER,
    alias: SVIX_TIMESTAMP_HEADER,
    disagreement: "`webhook-timestamp` and `svix-timestamp` disagree",
};
const SIGNATURE: AliasedHeader = AliasedHeader {
    name: SIGNATURE_HEADER,
    alias: SVIX_SIGNATURE_HEADER,
    disagreement: "`webhook-signature` and `svix-signature` disagree",
};

/// Longest `webhook-id` accepted, in bytes (svix ids are about 30).
pub const MAX_ID_LEN: usize = 256;

/// Longest `webhook-signature` header read, in bytes: room for [`MAX_SIGNATURES`] entries with
/// generous slack.
const MAX_SIGNATURE_HEADER_LEN: usize = 4096;

/// Signs a delivery, returning the `webhook-signature` value (`v1,<base64>`).
///
/// Send it with `webhook-id: {msg_id}` and `webhook-timestamp: {timestamp}`. Only ids the
/// [`Verifier`](crate::Verifier) accepts are signed: 1 to [`MAX_ID_LEN`] bytes of printable ASCII
/// without `.`. Every `u64` timestamp is written as the plain decimal the verifier reads.
///
/// # Errors
///
/// [`SignError::Secret`] when `secret` is not a usable Standard Webhooks secret, and
/// [`SignError::InvalidMessageId`] for an id the verifier would refuse.
pub fn sign(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: u64,
    body: &[u8],
) -> Result<String, SignError> {
    let key = secret.key(KeyEncoding::Base64).map_err(SignError::Secret)?;
    if !is_valid_id(msg_id) {
        return Err(SignError::InvalidMessageId);
    }
    let timestamp_text = timestamp.to_string();
    let content = SignedContent::Standard {
        id: msg_id,
        timestamp_text: timestamp_text.as_bytes(),
        timestamp,
    };
    let mac = content.mac(key.as_bytes(), body);
    Ok(format!("v1,{}", encode_base64(&mac)))
}

/// Why [`sign`] refused to sign a delivery.
///
/// Messages never contain the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignError {
    /// The secret is not a usable Standard Webhooks secret.
    Secret(SecretError),
    /// The message id is one the verifier refuses: empty, longer than [`MAX_ID_LEN`] bytes, or
    /// not printable ASCII without `.`.
    InvalidMessageId,
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(err) => err.fmt(f),
            Self::InvalidMessageId => write!(
                f,
                "message id must be 1 to {MAX_ID_LEN} bytes of printable ASCII without `.`"
            ),
        }
    }
}

impl std::error::Error for SignError {}

/// Whether `id` is a message id the verifier accepts: 1 to [`MAX_ID_LEN`] bytes of printable
/// ASCII without `.`.
///
/// A `.` would make `{id}.{timestamp}.{body}` ambiguous (the specification asks senders to avoid
/// it), and the replay store needs printable ASCII without spaces.
fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && byte != b'.')
}

/// Reads the three headers into the signed content and the offered `v1` signatures.
pub(crate) fn read<H: Headers + ?Sized>(
    headers: &H,
) -> Result<(SignedContent<'_>, Candidates), VerifyError> {
    let (id, id_name) = ID.value(headers, MAX_ID_LEN)?;
    let id = std::str::from_utf8(id)
        .ok()
        .filter(|id| is_valid_id(id))
        .ok_or_else(|| VerifyError::malformed(id_name, "id must be printable ASCII without `.`"))?;
    let (timestamp_text, timestamp_name) = TIMESTAMP.value(headers, 20)?;
    let timestamp = parse_unix_seconds(timestamp_text)
        .ok_or_else(|| VerifyError::malformed(timestamp_name, "timestamp is not Unix seconds"))?;

    let (signature_header, signature_name) = SIGNATURE.value(headers, MAX_SIGNATURE_HEADER_LEN)?;
    let mut signatures = Candidates::new();
    let entries = signature_header
        .split(|&byte| byte == b' ')
        .filter(|entry| !entry.is_empty());
    for (index, entry) in entries.enumerate() {
        if index == MAX_SIGNATURES {
            return Err(VerifyError::malformed(
                signature_name,
                "too many signatures",
            ));
        }
        let Some(comma) = entry.iter().position(|&byte| byte == b',') else {
            continue;
        };
        let (version, encoded) = (&entry[..comma], &entry[comma + 1..]);
        if version != b"v1" {
            continue;
        }
        if let Some(mac) = decode_base64_mac(encoded) {
            // Cannot fail: there are at most MAX_SIGNATURES entries.
            let _added = signatures.push(mac);
        }
    }
    let content = SignedContent::Standard {
        id,
        timestamp_text,
        timestamp,
    };
    Ok((content, signatures))
}
