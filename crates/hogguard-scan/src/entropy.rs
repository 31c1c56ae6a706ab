//! Tests that tell a random-looking secret from a placeholder.

/// Shannon entropy of `bytes` in bits per byte.
pub fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let len = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum()
}

/// Random bodies of 40 or more base57 or base62 characters have about 5 bits per character;
/// below 3 it is a pattern such as `aaaa…` or `abcabc…`, as Betterleaks also judges.
pub(crate) const MIN_TOKEN_ENTROPY: f64 = 3.0;

/// Words that mark a sample value in documentation and templates wherever they appear. Six
/// letters or more, so that a random 44-character body holds one by chance about once in a
/// million keys rather than once in a few thousand.
const PLACEHOLDER_WORDS: &[&[u8]] = &[
    b"example",
    b"placeholder",
    b"changeme",
    b"change_me",
    b"redacted",
    b"replace",
    b"insert",
    b"sample",
    b"posthog",
    b"****",
    b"...",
];

/// Short words that mark a sample value only as a word of their own (`your_key_here`,
/// `xxxx-xxxx`, `dummy`): inside a run of letters and digits they are as likely to be chance,
/// and a real key that happens to hold `XXXx` must still be found.
const PLACEHOLDER_SHORT_WORDS: &[&[u8]] = &[b"your", b"xxxx", b"dummy"];

/// Whether a candidate secret value is a placeholder rather than a credential: a template
/// reference (`${X}`, `<key>`, `{{ x }}`, `$VAR`), a mask (`phx_...abcd`, `***`), a sample
/// word, too few distinct characters, or too little entropy.
pub(crate) fn is_placeholder(value: &[u8]) -> bool {
    if value.is_empty() {
        return true;
    }
    if matches!(value[0], b'$' | b'<' | b'{' | b'%' | b'[') {
        return true;
    }
    let lower = value.to_ascii_lowercase();
    if PLACEHOLDER_WORDS
        .iter()
        .any(|word| memchr::memmem::find(&lower, word).is_some())
        || PLACEHOLDER_SHORT_WORDS
            .iter()
            .any(|word| holds_as_word(&lower, word))
    {
        return true;
    }
    let mut seen = [false; 256];
    let mut distinct = 0;
    for &b in value {
        if !seen[usize::from(b)] {
            seen[usize::from(b)] = true;
            distinct += 1;
        }
    }
    distinct < 6 || shannon_entropy(value) < MIN_TOKEN_ENTROPY || holds_typed_run(value, &lower)
}

/// The shortest run of sequential or keyboard characters that marks a typed-in test string
/// (`0123456789abcdef…`, `qwertyuiop`). A random base57 body of 49 characters holds one by
/// chance about once in ten billion keys.
const TYPED_RUN: usize = 7;

/// Keyboard rows and the digit row, as people type them into test values.
const KEYBOARD_ROWS: &[&[u8]] = &[b"1234567890", b"qwertyuiop", b"asdfghjkl", b"zxcvbnm"];

/// Whether `value` (and `lower`, the same in lowercase) holds [`TYPED_RUN`] characters that
/// step through the alphabet or the digits (up or down), or along a keyboard row.
fn holds_typed_run(value: &[u8], lower: &[u8]) -> bool {
    let stepping = |step: i16| {
        value.windows(TYPED_RUN).any(|w| {
            w.windows(2).all(|pair| {
                i16::from(pair[1]) - i16::from(pair[0]) == step && pair[0].is_ascii_alphanumeric()
            })
        })
    };
    if stepping(1) || stepping(-1) {
        return true;
    }
    KEYBOARD_ROWS.iter().any(|row| {
        row.windows(TYPED_RUN)
            .any(|run| memchr::memmem::find(lower, run).is_some())
    })
}

/// Whether `word` occurs in `text` with no letter or digit right before or after it.
fn holds_as_word(text: &[u8], word: &[u8]) -> bool {
    memchr::memmem::find_iter(text, word).any(|at| {
        let before = at.checked_sub(1).map(|i| text[i]);
        let after = text.get(at + word.len()).copied();
        [before, after]
            .into_iter()
            .all(|neighbour| neighbour.is_none_or(|b| !b.is_ascii_alphanumeric()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_simple_strings() {
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
    }

    #[test]
    fn placeholders_are_recognised() {
        for value in [
            "your_key_here",
            "${POSTHOG_KEY}",
            "<personal-api-key>",
            "{{ posthog_key }}",
            "$POSTHOG_KEY",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abababababababababababababababababab",
            "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "***1234",
            "...abcd",
        ] {
            assert!(is_placeholder(value.as_bytes()), "{value}");
        }
        assert!(!is_placeholder(b"Zq8vK2mN4pR7sT9wX3yB6cD5fG8hJ2kL"));
    }

    #[test]
    fn typed_runs_are_placeholders() {
        for value in [
            "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL",
            "Zq8vK2mNabcdefgR7sT9wX3yB6cD5",
            "Zq8vK2mNQWERTYUR7sT9wX3yB6cD5",
            "Zq8vK2mN9876543R7sT9wX3yB6cD5",
        ] {
            assert!(is_placeholder(value.as_bytes()), "{value}");
        }
        // Six in a row is chance, not typing.
        assert!(!is_placeholder(b"Zq8vK2mNabcdefR7sT9wX3yB6cD5"));
    }

    #[test]
    fn short_sample_words_count_only_as_words_of_their_own() {
        for value in [
            "your_key_here",
            "xxxx-xxxx-1234-abcd",
            "dummy",
            "key_for_YOUR-app9",
        ] {
            assert!(is_placeholder(value.as_bytes()), "{value}");
        }
        // Random bodies that hold them by chance (this one was a generated key that a
        // substring test used to drop).
        for value in [
            "XeWcHrT228TF8diNvxzrTrn4J9bHscnAZoTaGQ8SunMqXXXx",
            "K2mN4pR7yourT9wX3yB6cD5fG8hJ2kLZq8vdummyQ3s",
        ] {
            assert!(!is_placeholder(value.as_bytes()), "{value}");
        }
    }
}
