//! Base64 blobs, decoded the way Kingfisher decodes them, where a PostHog token may hide in one.
//!
//! A blob is a run of the standard or URL-safe base64 alphabet (`A-Z a-z 0-9 + / - _`) with at
//! most two `=` of padding, at least 32 characters long and a multiple of four (Kingfisher's
//! test), and at most [`MAX_ENCODED_LEN`]. It must decode (standard alphabet, then URL-safe,
//! padded or not) to text: printable ASCII, tabs and line ends. Hashes, keys, compressed data
//! and images decode to random bytes, and 24 random bytes are all text about once in 2^33.
//!
//! A blob is decoded only where the prefilter met the base64 form of a token prefix in it. A
//! prefix has one form per byte alignment ([`TOKEN_FORMS`]), so every blob in which Kingfisher's
//! decoding would find a token is decoded, and almost no other: the scan of plain text costs
//! three more two-byte literals in the prefilter, nothing per byte. The decoded text is scanned
//! with every rule, one layer deep, and what is found there is reported at the blob's start.

/// The longest blob decoded, in encoded characters; longer runs are left alone. A window keeps
/// this much beyond the last position it reports from (see the matcher's `OVERLAP`),
/// so a blob is always decoded whole.
pub(crate) const MAX_ENCODED_LEN: usize = 12 << 10;

/// Kingfisher's shortest blob: 24 decoded bytes.
const MIN_ENCODED_LEN: usize = 32;

/// The base64 forms of the token prefixes `phc_`, `phx_`, `phs_`, `pha_`, `phr_` (in that order)
/// for each offset of the prefix modulo 3 in the decoded bytes: the characters that the four
/// prefix bytes alone decide.
pub(crate) const TOKEN_FORMS: [[&[u8]; 5]; 3] = [
    [b"cGhjX", b"cGh4X", b"cGhzX", b"cGhhX", b"cGhyX"],
    [b"BoY1", b"BoeF", b"Boc1", b"BoYV", b"Bocl"],
    [b"waGNf", b"waHhf", b"waHNf", b"waGFf", b"waHJf"],
];

/// Which bytes base64 runs are made of, in either alphabet.
const BASE64_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_');
        b += 1;
    }
    table
};

fn is_base64_byte(b: u8) -> bool {
    BASE64_BYTES[usize::from(b)]
}

/// Whether a token prefix's base64 form of alignment `alignment` starts at `at`.
pub(crate) fn token_form_at(window: &[u8], at: usize, alignment: usize) -> bool {
    let rest = &window[at..];
    TOKEN_FORMS[alignment]
        .iter()
        .any(|form| rest.starts_with(form))
}

/// The run of base64 around `at`, as Kingfisher delimits blobs: `Ok((start, end))` with its
/// padding if it is one to decode, else `Err(end)`, where the run (or the part of it read) ends,
/// so that later hits inside it are skipped.
pub(crate) fn blob_around(window: &[u8], at: usize) -> Result<(usize, usize), usize> {
    let floor = at.saturating_sub(MAX_ENCODED_LEN);
    let mut start = at;
    while start > floor && is_base64_byte(window[start - 1]) {
        start -= 1;
    }
    let ceiling = (start + MAX_ENCODED_LEN + 1).min(window.len());
    let mut end = at;
    while end < ceiling && is_base64_byte(window[end]) {
        end += 1;
    }
    let too_long = (start == floor && start > 0 && is_base64_byte(window[start - 1]))
        || end == ceiling && window.get(end).is_some_and(|&b| is_base64_byte(b));
    if too_long {
        return Err(end);
    }
    let padding = window[end..]
        .iter()
        .take(2)
        .take_while(|&&b| b == b'=')
        .count();
    let len = end + padding - start;
    if (MIN_ENCODED_LEN..=MAX_ENCODED_LEN).contains(&len) && len.is_multiple_of(4) {
        Ok((start, end + padding))
    } else {
        Err(end)
    }
}

/// The text that `blob` encodes, if it decodes to text.
pub(crate) fn decode_text(blob: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let decoded = STANDARD
        .decode(blob)
        .or_else(|_| URL_SAFE.decode(blob))
        .or_else(|_| URL_SAFE_NO_PAD.decode(blob))
        .ok()?;
    decoded
        .iter()
        .all(|&b| matches!(b, b' '..=b'~' | b'\t' | b'\n' | b'\r'))
        .then_some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::TOKEN_PREFIXES;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    #[test]
    fn token_forms_are_what_base64_makes_of_each_prefix_at_each_alignment() {
        for (alignment, forms) in TOKEN_FORMS.iter().enumerate() {
            for (prefix, form) in TOKEN_PREFIXES.iter().zip(forms) {
                // Whatever surrounds the prefix, its form is in the encoding.
                for filler in [0u8, 0x7f, 0xff] {
                    let mut data = vec![filler; alignment];
                    data.extend_from_slice(prefix);
                    data.extend_from_slice(&[filler; 5]);
                    let encoded = STANDARD.encode(&data);
                    assert!(
                        memchr::memmem::find(encoded.as_bytes(), form).is_some(),
                        "{alignment} {encoded}"
                    );
                }
            }
        }
    }

    #[test]
    fn blobs_are_delimited_as_kingfisher_does() {
        let encoded = STANDARD.encode(b"POSTHOG_PERSONAL_API_KEY=phx_1234");
        let text = format!("data: {encoded} end");
        let at = text.find(&encoded).unwrap();
        assert_eq!(
            blob_around(text.as_bytes(), at + 5),
            Ok((at, at + encoded.len()))
        );
        // Too short, or not a multiple of four.
        let short = "data: cGh4X2FiY2RlZmdo end";
        assert!(blob_around(short.as_bytes(), 8).is_err());
        let odd = format!("data: {} end", &encoded[..encoded.len() - 1]);
        assert!(blob_around(odd.as_bytes(), 8).is_err());
        // Longer than decoded.
        let long = "A".repeat(MAX_ENCODED_LEN + 4);
        assert!(blob_around(long.as_bytes(), MAX_ENCODED_LEN).is_err());
    }

    proptest! {
        #[test]
        fn blobs_are_found_whole_and_decoded_back_wherever_they_stand(
            text in "[ -~\t\n]{24,600}",
            before in "[ ,;:\"'(\n]{0,3}[a-z ]{0,20}[ ,;:\"'(\n]",
            after in "[ ,;:\"')\n][a-z ]{0,20}",
            at in any::<prop::sample::Index>(),
        ) {
            let blob = STANDARD.encode(&text);
            let input = format!("{before}{blob}{after}");
            let start = before.len();
            let inside = start + at.index(blob.trim_end_matches('=').len());
            prop_assert_eq!(
                blob_around(input.as_bytes(), inside),
                Ok((start, start + blob.len()))
            );
            prop_assert_eq!(decode_text(blob.as_bytes()), Some(text.into_bytes()));
        }

        #[test]
        fn any_bytes_give_a_blob_inside_them_or_where_to_go_on(
            bytes in prop::collection::vec(any::<u8>(), 1..300),
            at in any::<prop::sample::Index>(),
        ) {
            let at = at.index(bytes.len());
            match blob_around(&bytes, at) {
                Ok((start, end)) => {
                    prop_assert!(start <= at && at < end && end <= bytes.len());
                    prop_assert!((end - start).is_multiple_of(4) && end - start >= MIN_ENCODED_LEN);
                    if let Some(text) = decode_text(&bytes[start..end]) {
                        prop_assert!(text.iter().all(u8::is_ascii));
                    }
                }
                Err(next) => prop_assert!(at <= next && next <= bytes.len()),
            }
        }
    }

    #[test]
    fn only_text_is_decoded() {
        assert_eq!(
            decode_text(STANDARD.encode("a=b\n\tc").as_bytes()),
            Some(b"a=b\n\tc".to_vec())
        );
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode(b"~~~>>>???");
        assert!(url_safe.contains(['-', '_']));
        assert_eq!(
            decode_text(url_safe.as_bytes()),
            Some(b"~~~>>>???".to_vec())
        );
        assert_eq!(decode_text(STANDARD.encode([0xff, 0, 1]).as_bytes()), None);
        assert_eq!(decode_text(b"not base64!"), None);
    }
}
