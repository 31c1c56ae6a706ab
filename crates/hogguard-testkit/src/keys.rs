//! PostHog token generators that follow `posthog/models/utils.py`, for every prefix and era.
//!
//! Current tokens are `int_to_base(randbits(n * 8) | 1 << (n * 8 - 1), 57)`; older ones used
//! base62 without forcing the top bit, so their length varies; personal keys made before 2021
//! were `secrets.token_urlsafe(32)` with no prefix.

/// The base57 alphabet of current tokens: base62 without the ambiguous `0 1 O I l`.
pub const BASE57: &[u8] = b"23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
/// The base62 alphabet of older tokens.
pub const BASE62: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A PostHog token prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prefix {
    /// `phc_`, project API key (public).
    Project,
    /// `phx_`, personal API key.
    Personal,
    /// `phs_`, team secret token or project secret API key.
    Secret,
    /// `pha_`, OAuth access token.
    OAuthAccess,
    /// `phr_`, OAuth refresh token.
    OAuthRefresh,
}

impl Prefix {
    /// Every prefix.
    pub const ALL: [Prefix; 5] = [
        Prefix::Project,
        Prefix::Personal,
        Prefix::Secret,
        Prefix::OAuthAccess,
        Prefix::OAuthRefresh,
    ];

    /// The literal prefix, underscore included.
    pub fn as_str(self) -> &'static str {
        match self {
            Prefix::Project => "phc_",
            Prefix::Personal => "phx_",
            Prefix::Secret => "phs_",
            Prefix::OAuthAccess => "pha_",
            Prefix::OAuthRefresh => "phr_",
        }
    }

    /// Random bytes PostHog draws for this prefix today (35 for `phx_`/`phs_`, else 32).
    pub fn current_bytes(self) -> usize {
        match self {
            Prefix::Personal | Prefix::Secret => 35,
            _ => 32,
        }
    }
}

/// How a token body was generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// Base57 with the top bit forced: 44 characters for 32 bytes, 48 or 49 for 35 bytes.
    Current,
    /// Base62 without top-bit forcing: 41–43 characters for 32 bytes, 45–48 for 35 bytes.
    Base62 {
        /// Random bytes drawn (32 or 35).
        bytes: usize,
    },
}

/// Converts a big-endian number to `alphabet`'s base, most significant digit first, as
/// PostHog's `int_to_base` does.
pub fn int_to_base(big_endian: &[u8], alphabet: &[u8]) -> String {
    let base = alphabet.len() as u32;
    let mut number: Vec<u32> = big_endian.iter().map(|&b| u32::from(b)).collect();
    let mut digits = Vec::new();
    while number.iter().any(|&d| d != 0) {
        let mut remainder = 0u32;
        for digit in &mut number {
            let value = remainder * 256 + *digit;
            *digit = value / base;
            remainder = value % base;
        }
        digits.push(alphabet[remainder as usize]);
    }
    if digits.is_empty() {
        digits.push(alphabet[0]);
    }
    digits.reverse();
    String::from_utf8(digits).expect("alphabets are ASCII")
}

/// The body PostHog would derive from `random` (the drawn bytes, big-endian) in `era`.
pub fn body_from_bytes(era: Era, random: &[u8]) -> String {
    match era {
        Era::Current => {
            let mut forced = random.to_vec();
            if let Some(first) = forced.first_mut() {
                *first |= 0x80;
            }
            int_to_base(&forced, BASE57)
        }
        Era::Base62 { .. } => int_to_base(random, BASE62),
    }
}

/// Operating-system random bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes
}

/// A fresh token of `prefix` in `era`, drawn from the OS random source.
pub fn token(prefix: Prefix, era: Era) -> String {
    let bytes = match era {
        Era::Current => prefix.current_bytes(),
        Era::Base62 { bytes } => bytes,
    };
    format!(
        "{}{}",
        prefix.as_str(),
        body_from_bytes(era, &random_bytes(bytes))
    )
}

/// A fresh current-era token of `prefix`.
pub fn current(prefix: Prefix) -> String {
    token(prefix, Era::Current)
}

/// A token of `prefix` whose body has exactly `len` characters of `alphabet`, for length
/// edge cases that random draws reach too rarely (a 49-character body, say).
pub fn with_body_len(prefix: Prefix, alphabet: &[u8], len: usize) -> String {
    let random = random_bytes(len);
    let body: String = random
        .iter()
        .map(|&b| alphabet[usize::from(b) % alphabet.len()] as char)
        .collect();
    format!("{}{}", prefix.as_str(), body)
}

/// A pre-2021 personal API key: `secrets.token_urlsafe(32)`, 43 characters, no prefix.
pub fn legacy_personal() -> String {
    const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let random = random_bytes(32);
    let mut out = String::with_capacity(43);
    for chunk in random.chunks(3) {
        let mut block = [0u8; 3];
        block[..chunk.len()].copy_from_slice(chunk);
        let n = (u32::from(block[0]) << 16) | (u32::from(block[1]) << 8) | u32::from(block[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(URL_SAFE[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A Standard Webhooks signing secret: `whsec_` and the base64 of 32 random bytes.
pub fn webhook_secret() -> String {
    const STD: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let random = random_bytes(33);
    let mut out = String::from("whsec_");
    for chunk in random.chunks(3) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        for i in 0..4 {
            out.push(STD[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A client token of hogguard's PostHog API proxy: `hgp_` and 44 random base57 characters.
pub fn client_token() -> String {
    let body: String = random_bytes(44)
        .iter()
        .map(|b| BASE57[usize::from(*b) % BASE57.len()] as char)
        .collect();
    format!("hgp_{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_lengths_follow_posthog() {
        for _ in 0..200 {
            assert_eq!(current(Prefix::Project).len(), 4 + 44);
            let personal = current(Prefix::Personal).len() - 4;
            assert!(personal == 48 || personal == 49, "{personal}");
        }
    }

    #[test]
    fn current_bodies_avoid_ambiguous_characters() {
        let token = current(Prefix::Secret);
        assert!(!token[4..].contains(['0', '1', 'O', 'I', 'l']));
    }

    #[test]
    fn int_to_base_matches_small_numbers() {
        assert_eq!(int_to_base(&[0, 57], BASE57), "32");
        assert_eq!(int_to_base(&[61], BASE62), "Z");
    }

    #[test]
    fn legacy_keys_are_43_url_safe_characters() {
        let key = legacy_personal();
        assert_eq!(key.len(), 43);
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
}
