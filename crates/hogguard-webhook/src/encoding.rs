//! Text encodings of HMAC-SHA256 signatures, decoded into fixed buffers without allocating.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Length of an HMAC-SHA256 output in bytes.
pub(crate) const MAC_LEN: usize = 32;

/// An HMAC-SHA256 output.
pub(crate) type Mac = [u8; MAC_LEN];

/// Lowercase hex, the form GitHub and Stripe send.
pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Decodes 64 lowercase hex digits into a MAC; anything else is `None`.
///
/// Lowercase only, as GitHub and Stripe send it: one signature has one spelling, so a flipped
/// case bit is a different (non-matching) signature rather than a second way to write it.
pub(crate) fn decode_hex_mac(text: &[u8]) -> Option<Mac> {
    if text.len() != MAC_LEN * 2 {
        return None;
    }
    let mut mac = [0_u8; MAC_LEN];
    for (byte, pair) in mac.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(mac)
}

fn hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// Decodes canonical padded base64 of exactly 32 bytes (44 characters); anything else is `None`.
///
/// Strict on purpose: one signature has one spelling, so truncated, padded or re-encoded
/// variants never match.
pub(crate) fn decode_base64_mac(text: &[u8]) -> Option<Mac> {
    if text.len() != 44 {
        return None;
    }
    // Room for the decoder's worst-case estimate; the length check below keeps it exact.
    let mut buffer = [0_u8; 48];
    let written = STANDARD.decode_slice(text, &mut buffer).ok()?;
    if written != MAC_LEN {
        return None;
    }
    let mut mac = [0_u8; MAC_LEN];
    mac.copy_from_slice(&buffer[..MAC_LEN]);
    Some(mac)
}

/// Canonical padded base64, the form Standard Webhooks sends.
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Parses a strict unsigned decimal (ASCII digits only, no sign, no spaces), as Unix seconds.
pub(crate) fn parse_unix_seconds(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    text.iter().try_fold(0_u64, |value, &digit| {
        if !digit.is_ascii_digit() {
            return None;
        }
        value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_in_lowercase_only() {
        let mac: Mac = core::array::from_fn(|i| (i as u8).wrapping_mul(37));
        let lower = encode_hex(&mac);
        assert_eq!(decode_hex_mac(lower.as_bytes()), Some(mac));
        assert_eq!(decode_hex_mac(lower.to_uppercase().as_bytes()), None);
    }

    #[test]
    fn hex_rejects_wrong_lengths_and_digits() {
        let lower = encode_hex(&[0xab; MAC_LEN]);
        assert_eq!(decode_hex_mac(&lower.as_bytes()[..63]), None);
        assert_eq!(decode_hex_mac(format!("{lower}0").as_bytes()), None);
        assert_eq!(decode_hex_mac(lower.replace('a', "g").as_bytes()), None);
        assert_eq!(decode_hex_mac(b""), None);
    }

    #[test]
    fn base64_is_strict() {
        let mac = [0x5a; MAC_LEN];
        let text = encode_base64(&mac);
        assert_eq!(decode_base64_mac(text.as_bytes()), Some(mac));
        assert_eq!(
            decode_base64_mac(text.trim_end_matches('=').as_bytes()),
            None
        );
        assert_eq!(decode_base64_mac(format!("{text}=").as_bytes()), None);
        assert_eq!(decode_base64_mac(&text.as_bytes()[..40]), None);
        // 33 bytes encode to 44 characters too, without padding.
        assert_eq!(decode_base64_mac(encode_base64(&[1; 33]).as_bytes()), None);
        // Non-zero trailing bits spell the same bytes differently; only one spelling is accepted.
        let mut sloppy = text.into_bytes();
        assert_eq!(sloppy[42], b'o');
        sloppy[42] = b'p';
        assert_eq!(decode_base64_mac(&sloppy), None);
    }

    #[test]
    fn unix_seconds_are_strict_decimals() {
        assert_eq!(parse_unix_seconds(b"1614265330"), Some(1_614_265_330));
        assert_eq!(parse_unix_seconds(b"0"), Some(0));
        assert_eq!(parse_unix_seconds(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"1.5",
            b"123abc",
            b" 1",
            b"18446744073709551616",
            b"000000000000000000001",
        ] {
            assert_eq!(parse_unix_seconds(bad), None, "{bad:?}");
        }
    }
}
