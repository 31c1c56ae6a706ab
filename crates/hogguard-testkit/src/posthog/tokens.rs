//! How PostHog stores, masks and identifies credentials (`posthog/models/utils.py`).

use sha2::{Digest, Sha256};

use crate::keys::{self, Era, Prefix};

/// The lowercase hex SHA-256 of `value`: how the stand-in records the credential and the
/// headers of each request it receives ([`RequestRecord`](super::RequestRecord)).
pub fn sha256_hex(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// `hash_key_value`: the `secure_value` PostHog stores instead of a PAK or PSAK.
pub(crate) fn hash_key_value(value: &str) -> String {
    format!("sha256${}", sha256_hex(value))
}

/// `mask_key_value`: `phx_...abcd`, or `********` for values shorter than 16 characters.
pub(crate) fn mask_key_value(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 16 {
        return "********".to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

/// `generate_random_token()`: the unprefixed 32-byte base57 token PostHog uses as the primary
/// key of personal and project secret API keys.
pub(crate) fn random_id() -> String {
    keys::body_from_bytes(Era::Current, &keys::random_bytes(32))
}

/// A fresh current-era token of `prefix`.
pub(crate) fn new_token(prefix: Prefix) -> String {
    keys::current(prefix)
}

/// A random version-4 UUID in its hyphenated form.
pub(crate) fn uuid4() -> String {
    let mut bytes = keys::random_bytes(16);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Whether `text` is a UUID in one of the spellings the `uuid` crate accepts (hyphenated,
/// simple, braced or `urn:uuid:`), as capture requires of an event's `uuid`.
pub(crate) fn is_uuid(text: &str) -> bool {
    let inner = text
        .strip_prefix("urn:uuid:")
        .or_else(|| text.strip_prefix('{').and_then(|t| t.strip_suffix('}')))
        .unwrap_or(text);
    let hex_groups = |groups: &[usize], parts: Vec<&str>| {
        parts.len() == groups.len()
            && parts.iter().zip(groups).all(|(part, len)| {
                part.len() == *len && part.bytes().all(|b| b.is_ascii_hexdigit())
            })
    };
    hex_groups(&[8, 4, 4, 4, 12], inner.split('-').collect()) || hex_groups(&[32], vec![inner])
}

/// `posthog/api/secret_revocation.py`'s `_LEGACY_PERSONAL_API_KEY_PATTERN`: the 43-character
/// URL-safe shape of personal API keys issued before the `phx_` prefix.
pub(crate) fn is_legacy_personal_key_shape(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_like_posthog() {
        assert_eq!(mask_key_value("phx_123456789abcdef"), "phx_...cdef");
        assert_eq!(mask_key_value("phx_short"), "********");
    }

    #[test]
    fn hashes_like_posthog() {
        assert_eq!(
            hash_key_value("abc"),
            "sha256$ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn recognises_uuids() {
        let fresh = uuid4();
        assert!(is_uuid(&fresh), "{fresh}");
        assert!(is_uuid(&fresh.replace('-', "")));
        assert!(!is_uuid("not-a-uuid"));
    }
}
