//! PostHog credential kinds and [`Secret`], the one type that holds a raw credential.
//!
//! Every hogguard crate keeps credentials in a [`Secret`]: its `Debug` and `Display` print only
//! PostHog's own mask (`phx_...abcd`), and its memory is zeroed on drop. Code that needs the raw
//! value calls [`Secret::expose`], which is easy to find in review.
//!
//! ```
//! use hogguard_secret::{CredentialKind, Secret};
//!
//! let key = Secret::new("phx_abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789");
//! assert_eq!(key.to_string(), "phx_...6789");
//! assert_eq!(format!("{key:?}"), "Secret(phx_...6789)");
//! assert_eq!(CredentialKind::from_value(key.expose()), Some(CredentialKind::PersonalApiKey));
//! ```
#![deny(missing_docs)]

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// A raw credential whose `Debug` and `Display` show only its mask, zeroed on drop.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Takes ownership of a raw credential value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw value. Call it only to send the credential where it belongs.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// PostHog's mask of the value (see [`mask`]).
    pub fn mask(&self) -> String {
        mask(&self.0)
    }

    /// The content fingerprint of the value (see [`fingerprint`]).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.mask())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.mask())
    }
}

/// Values shorter than this are masked entirely, as PostHog's `mask_key_value` does: showing
/// eight characters of a short value would show most of it.
const SHORTEST_PARTLY_SHOWN: usize = 16;

/// PostHog's mask of a credential: the first four and last four characters around `...`
/// (`phx_...abcd`), or `********` for values shorter than 16 characters.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < SHORTEST_PARTLY_SHOWN {
        return "********".to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

/// The prefix of hogguard's proxy client tokens, which scanners find like PostHog's keys.
pub const CLIENT_TOKEN_PREFIX: &str = "hgp_";

/// The random base57 characters after [`CLIENT_TOKEN_PREFIX`]: 44 carry over 256 bits.
pub const CLIENT_TOKEN_BODY_CHARS: usize = 44;

/// Whether `value` has the shape of a personal API key made before 2021: 43 URL-safe
/// characters and no prefix.
pub fn is_legacy_personal_key_shape(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The content fingerprint of a credential: the hex SHA-256 of its value, which identifies a
/// secret wherever it moves without revealing it.
pub fn fingerprint(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// What a credential is, as far as its value or its context tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CredentialKind {
    /// `phc_`: a project API key, public by design (it ships in the JavaScript snippet).
    ProjectApiKey,
    /// `phx_`: a personal API key, which can read or change what its scopes allow.
    PersonalApiKey,
    /// A personal API key made before 2021: 43 URL-safe characters with no prefix.
    LegacyPersonalApiKey,
    /// `phs_`: a project secret API key or a team secret token.
    ProjectSecretApiKey,
    /// `pha_`: an OAuth access token (one hour).
    OAuthAccessToken,
    /// `phr_`: an OAuth refresh token (30 days, rotated on use).
    OAuthRefreshToken,
    /// `whsec_`: a Standard Webhooks signing secret.
    WebhookSecret,
    /// A value assigned to a PostHog-named secret, key or token variable.
    PostHogSecret,
    /// `hgp_`: a client token of hogguard's own PostHog API proxy.
    HogguardClientToken,
    /// A match of a rule from the configuration.
    Custom,
}

impl CredentialKind {
    /// The kind's stable name in machine-readable output.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::ProjectApiKey => "project_api_key",
            CredentialKind::PersonalApiKey => "personal_api_key",
            CredentialKind::LegacyPersonalApiKey => "legacy_personal_api_key",
            CredentialKind::ProjectSecretApiKey => "project_secret_api_key",
            CredentialKind::OAuthAccessToken => "oauth_access_token",
            CredentialKind::OAuthRefreshToken => "oauth_refresh_token",
            CredentialKind::WebhookSecret => "webhook_secret",
            CredentialKind::PostHogSecret => "posthog_secret",
            CredentialKind::HogguardClientToken => "hogguard_client_token",
            CredentialKind::Custom => "custom",
        }
    }

    /// Whether a leak of this kind is a security problem. Only project API keys are public.
    pub fn is_secret(self) -> bool {
        self != CredentialKind::ProjectApiKey
    }

    /// The kind a token prefix (PostHog's `phc_`, `phx_`, `phs_`, `pha_`, `phr_`, `whsec_`, or
    /// the proxy's `hgp_`) stands for.
    pub fn from_prefix(prefix: &str) -> Option<Self> {
        Some(match prefix {
            "phc_" => CredentialKind::ProjectApiKey,
            "phx_" => CredentialKind::PersonalApiKey,
            "phs_" => CredentialKind::ProjectSecretApiKey,
            "pha_" => CredentialKind::OAuthAccessToken,
            "phr_" => CredentialKind::OAuthRefreshToken,
            "whsec_" => CredentialKind::WebhookSecret,
            CLIENT_TOKEN_PREFIX => CredentialKind::HogguardClientToken,
            _ => return None,
        })
    }

    /// The kind of a value judged by its prefix alone; `None` for unprefixed values.
    pub fn from_value(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.starts_with("whsec_") {
            return Some(CredentialKind::WebhookSecret);
        }
        value.get(..4).and_then(Self::from_prefix)
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_is_posthog_mask_value() {
        assert_eq!(mask("phx_0123456789abcdefghij"), "phx_...ghij");
        assert_eq!(mask("short"), "********");
        assert_eq!(mask("ünïcödé-vàlüé-lóng"), "ünïc...lóng");
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let raw = "phs_SecretValueThatMustNotLeak42";
        let secret = Secret::new(raw);
        for shown in [
            format!("{secret}"),
            format!("{secret:?}"),
            format!("{secret:#?}"),
        ] {
            assert!(!shown.contains("SecretValue"), "{shown}");
            assert!(shown.contains("phs_...ak42"), "{shown}");
        }
    }

    #[test]
    fn fingerprint_is_sha256_hex() {
        assert_eq!(
            fingerprint("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn kinds_come_from_prefixes() {
        assert_eq!(
            CredentialKind::from_value("phc_x"),
            Some(CredentialKind::ProjectApiKey)
        );
        assert_eq!(
            CredentialKind::from_value(" whsec_x"),
            Some(CredentialKind::WebhookSecret)
        );
        assert_eq!(CredentialKind::from_value("ph"), None);
        assert!(!CredentialKind::ProjectApiKey.is_secret());
        assert!(CredentialKind::OAuthRefreshToken.is_secret());
    }
}
