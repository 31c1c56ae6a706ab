//! Webhook secrets: holding them safely and turning them into HMAC keys.

use std::fmt;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

/// Prefix of Standard Webhooks secrets (`whsec_` + base64 of the key); Stripe uses it too.
pub const SECRET_PREFIX: &str = "whsec_";

/// Standard base64 alphabet that accepts secrets with or without `=` padding.
///
/// Secrets come from configuration, not from the network, so being lenient here costs nothing and
/// matches the Python reference library (the Rust and Go ones demand padding).
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A webhook signing secret, as configured (for example `whsec_MfKQ9r8G…`).
///
/// The text is wiped from memory when the value is dropped, and `Debug` prints a mask instead of
/// the secret. There is deliberately no `Display`: use [`WebhookSecret::expose`] where the secret
/// really must be shown (once, when it is generated).
///
/// How the text becomes an HMAC key depends on the scheme, so it is checked when a
/// [`Verifier`](crate::Verifier) is built or when a `sign` function is called:
///
/// - Standard Webhooks: the text after an optional `whsec_` prefix is the base64 of the key
///   (padding optional);
/// - Stripe: the whole text, `whsec_` included, is the key;
/// - GitHub and hex: the text is the key, as UTF-8 bytes.
pub struct WebhookSecret {
    text: Zeroizing<String>,
}

impl WebhookSecret {
    /// Wraps a secret read from configuration.
    ///
    /// Passing a `String` moves it without a copy; a `&str` is copied, and wiping the original is
    /// then the caller's business.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: Zeroizing::new(text.into()),
        }
    }

    /// Returns the secret text, for the one place that must show or store it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// Derives the HMAC key that `encoding` prescribes, refusing secrets that cannot be right.
    pub(crate) fn key(&self, encoding: KeyEncoding) -> Result<HmacKey, SecretError> {
        let text = self.text.as_str();
        if text.is_empty() {
            return Err(SecretError::Empty);
        }
        // A trailing newline from a secrets file is the classic cause of "every signature fails".
        if text.trim() != text {
            return Err(SecretError::SurroundingWhitespace);
        }
        let bytes = match encoding {
            KeyEncoding::Base64 => {
                let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
                let decoded = Zeroizing::new(
                    SECRET_BASE64
                        .decode(encoded)
                        .map_err(|_| SecretError::NotBase64)?,
                );
                if decoded.is_empty() {
                    return Err(SecretError::Empty);
                }
                decoded
            }
            KeyEncoding::StripeText => {
                // Stripe API keys pasted where the endpoint's signing secret belongs (stripe-node#356).
                if ["sk_", "rk_", "pk_"].iter().any(|p| text.starts_with(p)) {
                    return Err(SecretError::ApiKeyNotSigningSecret);
                }
                Zeroizing::new(text.as_bytes().to_vec())
            }
            KeyEncoding::Text => Zeroizing::new(text.as_bytes().to_vec()),
        };
        Ok(HmacKey { bytes })
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The `whsec_` prefix is public knowledge and helps tell secrets apart in logs; nothing
        // after it is shown, not even the length.
        let mask = if self.text.starts_with(SECRET_PREFIX) {
            "whsec_****"
        } else {
            "****"
        };
        f.debug_tuple("WebhookSecret").field(&mask).finish()
    }
}

/// How a scheme turns secret text into key bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyEncoding {
    /// Standard Webhooks: base64 after an optional `whsec_` prefix.
    Base64,
    /// Stripe: the whole text, `whsec_` included.
    StripeText,
    /// GitHub and plain hex: the text itself.
    Text,
}

/// HMAC key bytes derived from a [`WebhookSecret`]; wiped on drop.
pub(crate) struct HmacKey {
    bytes: Zeroizing<Vec<u8>>,
}

impl HmacKey {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Why a secret cannot be used (returned when building a verifier or signing).
///
/// The message names the problem, never the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretError {
    /// The secret (or, for Standard Webhooks, the key it encodes) is empty.
    Empty,
    /// The secret starts or ends with whitespace, most likely a newline from a file.
    SurroundingWhitespace,
    /// A Standard Webhooks secret is not base64 after its optional `whsec_` prefix.
    NotBase64,
    /// A Stripe secret looks like an API key (`sk_`, `rk_`, `pk_`), not an endpoint signing secret.
    ApiKeyNotSigningSecret,
    /// A verifier was given no secret at all.
    NoSecrets,
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "webhook secret is empty",
            Self::SurroundingWhitespace => {
                "webhook secret starts or ends with whitespace (a stray newline?)"
            }
            Self::NotBase64 => "webhook secret is not base64 after its optional `whsec_` prefix",
            Self::ApiKeyNotSigningSecret => {
                "webhook secret looks like a Stripe API key, not an endpoint signing secret (`whsec_…`)"
            }
            Self::NoSecrets => "no webhook secret configured",
        })
    }
}

impl std::error::Error for SecretError {}

/// Makes a new Standard Webhooks secret: `whsec_` + base64 of 32 bytes from the OS random source.
///
/// 32 bytes sits inside the 24–64 bytes the Standard Webhooks specification asks for and matches
/// the HMAC-SHA256 output size. The result also works as a GitHub, Stripe or hex secret.
///
/// # Errors
///
/// Fails only when the operating system cannot provide random bytes.
#[cfg(feature = "generate")]
pub fn generate_secret() -> std::io::Result<WebhookSecret> {
    let mut key = Zeroizing::new([0_u8; 32]);
    getrandom::fill(key.as_mut_slice()).map_err(std::io::Error::from)?;
    // Reserve the final size up front so the text is never reallocated, which would leave a copy
    // behind that nobody wipes.
    let mut text = String::with_capacity(SECRET_PREFIX.len() + 44);
    text.push_str(SECRET_PREFIX);
    base64::engine::general_purpose::STANDARD.encode_string(key.as_slice(), &mut text);
    Ok(WebhookSecret::new(text))
}

/// Encodes key bytes as a Standard Webhooks secret; used by tests that start from raw key bytes.
#[cfg(test)]
pub(crate) fn standard_secret_from_key(key: &[u8]) -> WebhookSecret {
    WebhookSecret::new(format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_A_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"; // hogguard:allow (the Standard Webhooks spec's public example secret)
    const VECTOR_A_KEY_HEX: &str = "31f290f6bf06298aab4f08d43c3f082cf648a362da2da4b0";

    fn hex_of(bytes: &[u8]) -> String {
        crate::encoding::encode_hex(bytes)
    }

    #[test]
    fn debug_shows_only_a_mask() {
        let with_prefix = WebhookSecret::new(VECTOR_A_SECRET);
        let debug = format!("{with_prefix:?}");
        assert_eq!(debug, r#"WebhookSecret("whsec_****")"#);
        let raw = WebhookSecret::new("It's a Secret to Everybody");
        assert_eq!(format!("{raw:?}"), r#"WebhookSecret("****")"#);
        assert!(!format!("{raw:#?}").contains("Secret to"));
    }

    #[test]
    fn standard_key_is_base64_with_or_without_prefix() {
        let with_prefix = WebhookSecret::new(VECTOR_A_SECRET)
            .key(KeyEncoding::Base64)
            .unwrap();
        let without_prefix = WebhookSecret::new(&VECTOR_A_SECRET[SECRET_PREFIX.len()..])
            .key(KeyEncoding::Base64)
            .unwrap();
        assert_eq!(hex_of(with_prefix.as_bytes()), VECTOR_A_KEY_HEX);
        assert_eq!(with_prefix.as_bytes(), without_prefix.as_bytes());
    }

    #[test]
    fn standard_key_accepts_unpadded_base64() {
        let padded = standard_secret_from_key(b"0123456789abcdefghijkl");
        assert!(padded.expose().ends_with('='));
        let unpadded = WebhookSecret::new(padded.expose().trim_end_matches('='));
        assert_eq!(
            padded.key(KeyEncoding::Base64).unwrap().as_bytes(),
            unpadded.key(KeyEncoding::Base64).unwrap().as_bytes()
        );
    }

    #[test]
    fn bad_secrets_are_refused_with_a_reason() {
        let cases = [
            ("", KeyEncoding::Base64, SecretError::Empty),
            ("whsec_", KeyEncoding::Base64, SecretError::Empty),
            (
                "whsec_not base64!",
                KeyEncoding::Base64,
                SecretError::NotBase64,
            ),
            // A signature header pasted as the secret (standard-webhooks#235).
            (
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                KeyEncoding::Base64,
                SecretError::NotBase64,
            ),
            (
                "whsec_abc\n",
                KeyEncoding::StripeText,
                SecretError::SurroundingWhitespace,
            ),
            (
                " secret",
                KeyEncoding::Text,
                SecretError::SurroundingWhitespace,
            ),
            (
                "sk_live_abcdef",
                KeyEncoding::StripeText,
                SecretError::ApiKeyNotSigningSecret,
            ),
            ("", KeyEncoding::Text, SecretError::Empty),
        ];
        for (text, encoding, expected) in cases {
            let err = WebhookSecret::new(text).key(encoding).err();
            assert_eq!(err, Some(expected), "secret {text:?} as {encoding:?}");
        }
    }

    #[test]
    fn stripe_and_text_keys_are_the_text_itself() {
        let stripe = WebhookSecret::new("whsec_abc").key(KeyEncoding::StripeText);
        assert_eq!(stripe.unwrap().as_bytes(), b"whsec_abc");
        let text = WebhookSecret::new("It's a Secret to Everybody").key(KeyEncoding::Text);
        assert_eq!(text.unwrap().as_bytes(), b"It's a Secret to Everybody");
    }

    #[test]
    fn error_messages_never_contain_the_secret() {
        let text = "whsec_not base64 at all";
        let err = WebhookSecret::new(text)
            .key(KeyEncoding::Base64)
            .err()
            .unwrap();
        assert!(!err.to_string().contains("not base64 at all"));
    }

    #[cfg(feature = "generate")]
    #[test]
    fn generated_secrets_are_fresh_32_byte_standard_secrets() {
        let first = generate_secret().unwrap();
        let second = generate_secret().unwrap();
        assert!(first.expose().starts_with(SECRET_PREFIX));
        assert_eq!(first.expose().len(), SECRET_PREFIX.len() + 44);
        assert_eq!(first.key(KeyEncoding::Base64).unwrap().as_bytes().len(), 32);
        assert_ne!(first.expose(), second.expose());
    }
}
