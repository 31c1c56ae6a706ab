//! Text that hogguard did not write itself (error messages that quote input, paths, commit
//! authors, values from PostHog) on its way to a terminal, a report or a log: every secret in
//! it is masked and every character that could drive a terminal or hide text is escaped.
//!
//! Every error hogguard prints passes through [`error_text`], so a parser that quotes the
//! line it failed on (TOML, env files) cannot print a key, whatever command loaded it.

use std::borrow::Cow;
use std::sync::{LazyLock, OnceLock};

use hogguard_scan::{CustomRule, ScanOptions, Scanner};
use regex::Regex;

/// What stands in for text when no redaction rules could be built: fail closed.
const WITHHELD: &str = "(text withheld: hogguard's redaction rules did not load)";

/// The project's `[[scan.rules]]`, once its configuration is loaded.
static PROJECT_RULES: OnceLock<Vec<CustomRule>> = OnceLock::new();

/// The rules text is masked with: the built-in ones and the project's, built on first use
/// (most runs print no error). Text printed before the configuration is read, or when it
/// does not load, gets the built-in rules.
static SCANNER: LazyLock<Option<Scanner>> = LazyLock::new(|| {
    let custom = PROJECT_RULES.get().map_or(&[][..], Vec::as_slice);
    Scanner::new(custom, ScanOptions::default())
        .or_else(|_| Scanner::new(&[], ScanOptions::default()))
        .ok()
});

/// Makes the project's own rules mask text from now on, as they mask its audit entries.
/// Called once the configuration is loaded, before anything is printed.
pub(crate) fn use_project_rules(rules: &[CustomRule]) {
    // One configuration per process; a second call changes nothing.
    let _ = PROJECT_RULES.set(rules.to_vec());
}

fn scanner() -> Option<&'static Scanner> {
    SCANNER.as_ref()
}

/// Anything shaped like a prefixed secret, placeholder-looking or not: the scanner leaves
/// `phx_0123456789abcdef...` alone in code, but an error message has no reason to show it.
static PREFIXED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:ph[xsar]|hgp|whsec)_[A-Za-z0-9_+/=-]{12,}").expect("a valid pattern")
});

/// `text` with every credential replaced by its mask: what the scanner finds (in context,
/// with the project's own rules), then any prefixed secret it judged a placeholder.
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    let Some(scanner) = scanner() else {
        return Cow::Borrowed(WITHHELD);
    };
    match scanner.redact(text) {
        Cow::Borrowed(text) => {
            PREFIXED.replace_all(text, |m: &regex::Captures<'_>| hogguard_secret::mask(&m[0]))
        }
        Cow::Owned(text) => Cow::Owned(
            PREFIXED
                .replace_all(&text, |m: &regex::Captures<'_>| {
                    hogguard_secret::mask(&m[0])
                })
                .into_owned(),
        ),
    }
}

/// `text` with control characters (line breaks included), bidirectional overrides and
/// zero-width characters written as escapes, so it stays one line and shows what it holds.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_invisible_format(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that reorder or hide the text around them (Trojan Source) without being
/// control characters.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// `text` redacted, then escaped: the form every untrusted string is shown in.
pub(crate) fn clean(text: &str) -> String {
    escape(&redact(text))
}

/// An error and its causes on one line (`what failed: why: why`), redacted and escaped.
pub(crate) fn error_text(error: &anyhow::Error) -> String {
    clean(&format!("{error:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hogguard_testkit::keys::{self, Prefix};

    #[test]
    fn escapes_controls_line_breaks_bidi_and_zero_width() {
        assert_eq!(escape("a\x1b[31mb\rc"), "a\\u{1b}[31mb\\rc");
        assert_eq!(escape("a\nfake line"), "a\\nfake line");
        assert_eq!(escape("x\u{202E}y\u{200B}z"), "x\\u{202e}y\\u{200b}z");
        assert_eq!(escape("plain/path.env ü"), "plain/path.env ü");
    }

    #[test]
    fn placeholder_looking_keys_are_masked_too() {
        let text = redact("after phx_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS here");
        assert_eq!(text, "after phx_...PQRS here");
        let masked = "already phx_...abcd masked";
        assert_eq!(redact(masked), masked);
    }

    #[test]
    fn an_error_that_quotes_a_key_shows_only_its_mask() {
        let key = keys::current(Prefix::Personal);
        let error = anyhow::anyhow!("expected '=' after {key}\nsecond line")
            .context("invalid env file .env");
        let text = error_text(&error);
        assert!(!text.contains(&key), "{text}");
        assert!(text.contains(&hogguard_secret::mask(&key)), "{text}");
        assert!(text.starts_with("invalid env file .env: expected '=' after phx_..."));
        assert!(!text.contains('\n'));
    }

    proptest::proptest! {
        #[test]
        fn escaped_text_has_no_controls_and_no_line_breaks(text in "\\PC*|(?s).{0,64}") {
            let escaped = escape(&text);
            proptest::prop_assert!(!escaped.chars().any(|c| c.is_control() || is_invisible_format(c)));
        }
    }
}
