//! Finds credentials in a window of bytes: a literal prefilter, then exact checks per rule.
//!
//! One Aho-Corasick pass finds every place worth a closer look (`phc_`, `phx_`, `phs_`, `pha_`,
//! `phr_`, `whsec_`, `Bearer` and the word PostHog in its usual spellings). Tokens are then
//! measured as whole alphanumeric runs, so a longer run is never reported cut short; a token may
//! follow a JSON, C or URL escape (`\n`, `\u0022`, `\x22`, `%22`). Around each PostHog name, and
//! only there, [`context`](crate::context) reads the value assigned or passed to it.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::Regex;

use crate::context;
use crate::entropy::{is_placeholder, shannon_entropy};
use crate::error::Error;
use crate::rules::{CustomRule, builtin};

/// How far around a match the matcher looks for the rest of its line (context words, allow
/// comments). Lines longer than this are judged by their nearby part.
pub(crate) const CONTEXT: usize = 1024;

/// The longest match the matcher can report, plus slack; a window must keep this much beyond
/// the last position it reports from.
pub(crate) const OVERLAP: usize = 4 * CONTEXT;

/// Inline comments that suppress a finding on their line.
const ALLOW_MARKERS: &[&[u8]] = &[
    b"hogguard:allow",
    b"gitleaks:allow",
    b"pragma: allowlist secret",
];

/// A credential found in a window: the rule's index and the byte range of the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Match {
    pub(crate) rule: usize,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// A PostHog token prefix with the body lengths it was ever issued with.
struct TokenShape {
    prefix: &'static [u8],
    rule: usize,
    min_body: usize,
    max_body: usize,
}

/// `phc_`, `pha_` and `phr_` carry 32 random bytes: 44 base57 characters today, 41–43 base62
/// characters before. `phx_` and `phs_` carry 35 bytes today (48–49) and carried 32 (41–43) or
/// 35 (45–48) in base62 before.
const TOKEN_SHAPES: [TokenShape; 5] = [
    TokenShape {
        prefix: b"phc_",
        rule: builtin::PROJECT_API_KEY,
        min_body: 41,
        max_body: 44,
    },
    TokenShape {
        prefix: b"phx_",
        rule: builtin::PERSONAL_API_KEY,
        min_body: 41,
        max_body: 49,
    },
    TokenShape {
        prefix: b"phs_",
        rule: builtin::PROJECT_SECRET_API_KEY,
        min_body: 41,
        max_body: 49,
    },
    TokenShape {
        prefix: b"pha_",
        rule: builtin::OAUTH_ACCESS_TOKEN,
        min_body: 41,
        max_body: 44,
    },
    TokenShape {
        prefix: b"phr_",
        rule: builtin::OAUTH_REFRESH_TOKEN,
        min_body: 41,
        max_body: 44,
    },
];

/// The prefixes of PostHog's tokens.
pub(crate) const TOKEN_PREFIXES: [&[u8]; 5] = [
    TOKEN_SHAPES[0].prefix,
    TOKEN_SHAPES[1].prefix,
    TOKEN_SHAPES[2].prefix,
    TOKEN_SHAPES[3].prefix,
    TOKEN_SHAPES[4].prefix,
];

pub(crate) const WEBHOOK_PREFIX: &[u8] = b"whsec_";
/// Standard Webhooks secrets carry 24 to 64 random bytes: 32 to 88 base64 characters.
const WEBHOOK_MIN_BODY: usize = 24;
const WEBHOOK_MAX_BODY: usize = 128;

/// How code spells PostHog in names (`POSTHOG_KEY`, `posthogKey`, `PostHogSecret`, ...), less
/// the leading `po`, which is checked at a hit: `pos` starts many words (`position`, `post`)
/// that would each cost the prefilter a verification, `sth` almost none. The name around a
/// hit is read for context rules.
const POSTHOG_SPELLINGS: [&[u8]; 3] = [b"sthog", b"stHog", b"STHOG"];

const PATTERN_WEBHOOK: usize = TOKEN_SHAPES.len();
const PATTERN_BEARER: usize = PATTERN_WEBHOOK + 1;
const FIRST_POSTHOG_PATTERN: usize = PATTERN_BEARER + 1;

/// A compiled custom rule.
struct CustomMatcher {
    rule: usize,
    regex: Regex,
    min_entropy: Option<f64>,
    /// Whether the rule runs only when one of its keywords occurs.
    keyed: bool,
}

/// All rules compiled for searching.
pub(crate) struct Matcher {
    prefilter: AhoCorasick,
    custom: Vec<CustomMatcher>,
    /// Keywords of the custom rules, and for each pattern the custom rule it belongs to.
    custom_keywords: Option<(AhoCorasick, Vec<usize>)>,
}

impl Matcher {
    /// Compiles the built-in rules and `custom`, whose rule indexes follow the built-in ones.
    pub(crate) fn new(custom: &[CustomRule]) -> Result<Self, Error> {
        let mut patterns: Vec<&[u8]> = TOKEN_SHAPES.iter().map(|shape| shape.prefix).collect();
        patterns.push(WEBHOOK_PREFIX);
        patterns.push(b"Bearer");
        patterns.extend(POSTHOG_SPELLINGS);
        // Case-sensitive on purpose: only then can the prefilter use SIMD (Teddy), which is what
        // keeps the scan near ripgrep's speed.
        let prefilter = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(patterns)
            .expect("fixed patterns compile");

        let mut compiled = Vec::with_capacity(custom.len());
        let mut keywords = Vec::new();
        let mut keyword_rules = Vec::new();
        for (i, rule) in custom.iter().enumerate() {
            let regex = Regex::new(&rule.regex).map_err(|source| Error::RuleRegex {
                id: rule.id.clone(),
                source,
            })?;
            for keyword in rule.keywords.iter().filter(|k| !k.is_empty()) {
                keywords.push(keyword.clone());
                keyword_rules.push(i);
            }
            compiled.push(CustomMatcher {
                rule: builtin::COUNT + i,
                regex,
                min_entropy: rule.min_entropy,
                keyed: rule.keywords.iter().any(|k| !k.is_empty()),
            });
        }
        let custom_keywords = if keywords.is_empty() {
            None
        } else {
            let automaton = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .build(&keywords)
                .map_err(|source| Error::RuleKeywords { source })?;
            Some((automaton, keyword_rules))
        };
        Ok(Matcher {
            prefilter,
            custom: compiled,
            custom_keywords,
        })
    }

    /// Appends to `out` every match in `window` that starts in `report_from..report_to`.
    /// `window` must hold [`OVERLAP`] bytes past `report_to` unless it ends the input, and
    /// [`CONTEXT`] bytes before `report_from` unless it starts the input.
    pub(crate) fn find(
        &self,
        window: &[u8],
        report_from: usize,
        report_to: usize,
        out: &mut Vec<Match>,
    ) {
        let first = out.len();
        // The end of the last name read for context, so that a name that spells PostHog twice
        // is read once.
        let mut name_end = 0;
        for hit in self.prefilter.find_iter(window) {
            let start = hit.start();
            if start >= report_to {
                break;
            }
            let pattern = hit.pattern().as_usize();
            if pattern >= FIRST_POSTHOG_PATTERN {
                let spells_posthog =
                    start >= 2 && window[start - 2..start].eq_ignore_ascii_case(b"po");
                if spells_posthog && start >= name_end {
                    name_end =
                        context::find_at_name(window, start - 2, report_from, report_to, out);
                }
                continue;
            }
            if pattern == PATTERN_BEARER {
                context::find_bearer(window, start, report_from, report_to, out);
                continue;
            }
            if start < report_from || !starts_token(window, start) {
                continue;
            }
            let found = if pattern == PATTERN_WEBHOOK {
                webhook_secret_at(window, start)
            } else {
                token_at(window, start, &TOKEN_SHAPES[pattern])
            };
            out.extend(found);
        }
        self.find_custom(window, report_from, report_to, out);
        // Suppressions are judged last, once per match, so every rule honours them alike.
        let mut i = first;
        while i < out.len() {
            if is_allowed(window, out[i].start) {
                out.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn find_custom(
        &self,
        window: &[u8],
        report_from: usize,
        report_to: usize,
        out: &mut Vec<Match>,
    ) {
        if self.custom.is_empty() {
            return;
        }
        let mut triggered = vec![false; self.custom.len()];
        if let Some((automaton, rules)) = &self.custom_keywords {
            for hit in automaton.find_iter(window) {
                triggered[rules[hit.pattern().as_usize()]] = true;
            }
        }
        for (i, custom) in self.custom.iter().enumerate() {
            if custom.keyed && !triggered[i] {
                continue;
            }
            for captures in custom.regex.captures_iter(window) {
                let Some(secret) = captures.get(1).or_else(|| captures.get(0)) else {
                    continue;
                };
                if secret.start() < report_from || secret.start() >= report_to || secret.is_empty()
                {
                    continue;
                }
                if custom
                    .min_entropy
                    .is_some_and(|min| shannon_entropy(secret.as_bytes()) < min)
                {
                    continue;
                }
                out.push(Match {
                    rule: custom.rule,
                    start: secret.start(),
                    end: secret.end(),
                });
            }
        }
    }
}

/// Whether a token may start at `start`: not in the middle of a word or identifier, unless
/// the word is an escape that stands for a separator (`\n`, `\u0022`, `\x22`, `%22`).
fn starts_token(window: &[u8], start: usize) -> bool {
    start == 0 || !is_word_byte(window[start - 1]) || ends_with_escape(&window[..start])
}

/// Whether `before` ends with a JSON, C or URL escape that ends in a letter or digit.
fn ends_with_escape(before: &[u8]) -> bool {
    let n = before.len();
    let hex = |range: std::ops::Range<usize>| before[range].iter().all(u8::is_ascii_hexdigit);
    (n >= 2 && before[n - 2] == b'\\' && matches!(before[n - 1], b'n' | b't' | b'r'))
        || (n >= 6 && before[n - 6] == b'\\' && before[n - 5] == b'u' && hex(n - 4..n))
        || (n >= 4 && before[n - 4] == b'\\' && before[n - 3] == b'x' && hex(n - 2..n))
        || (n >= 3 && before[n - 3] == b'%' && hex(n - 2..n))
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The PostHog token at `start`, if the prefix there is followed by a whole alphanumeric run
/// of a length PostHog issued, that is not a placeholder.
fn token_at(window: &[u8], start: usize, shape: &TokenShape) -> Option<Match> {
    let body_start = start + 4;
    let body_len = window[body_start..]
        .iter()
        .take(shape.max_body + 1)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    if !(shape.min_body..=shape.max_body).contains(&body_len) {
        return None;
    }
    let body = &window[body_start..body_start + body_len];
    if is_placeholder(body) {
        return None;
    }
    Some(Match {
        rule: shape.rule,
        start,
        end: body_start + body_len,
    })
}

/// The `whsec_` secret at `start`: a base64 body of plausible length and randomness.
fn webhook_secret_at(window: &[u8], start: usize) -> Option<Match> {
    let body_start = start + WEBHOOK_PREFIX.len();
    let body_len = window[body_start..]
        .iter()
        .take(WEBHOOK_MAX_BODY + 1)
        .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        .count();
    if !(WEBHOOK_MIN_BODY..=WEBHOOK_MAX_BODY).contains(&body_len) {
        return None;
    }
    let body = &window[body_start..body_start + body_len];
    if is_placeholder(body) {
        return None;
    }
    let padding = window[body_start + body_len..]
        .iter()
        .take(2)
        .take_while(|&&b| b == b'=')
        .count();
    Some(Match {
        rule: crate::rules::builtin::WEBHOOK_SECRET,
        start,
        end: body_start + body_len + padding,
    })
}

/// The bounds of the line around `pos`, at most [`CONTEXT`] bytes each way.
pub(crate) fn line_bounds(window: &[u8], pos: usize) -> (usize, usize) {
    let floor = pos.saturating_sub(CONTEXT);
    let start = memchr::memrchr(b'\n', &window[floor..pos]).map_or(floor, |i| floor + i + 1);
    let ceiling = (pos + CONTEXT).min(window.len());
    let end = memchr::memchr(b'\n', &window[pos..ceiling]).map_or(ceiling, |i| pos + i);
    (start, end)
}

/// Whether the line around `pos` carries an inline allow comment.
fn is_allowed(window: &[u8], pos: usize) -> bool {
    let (start, end) = line_bounds(window, pos);
    let line = &window[start..end];
    ALLOW_MARKERS
        .iter()
        .any(|marker| memchr::memmem::find(line, marker).is_some())
}

/// Helpers for tests in other modules.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::TOKEN_SHAPES;
    use hogguard_testkit::keys::Prefix;

    /// The rule that reports tokens of `prefix`.
    pub(crate) fn rule_of(prefix: Prefix) -> usize {
        TOKEN_SHAPES
            .iter()
            .find(|s| s.prefix == prefix.as_str().as_bytes())
            .expect("every prefix has a shape")
            .rule
    }

    pub(crate) use crate::context::is_legacy_key;
}

#[cfg(test)]
mod tests {
    use super::*;
    use hogguard_testkit::keys::{self, BASE57, BASE62, Era, Prefix};
    use tests_support::rule_of;

    fn rules_found(text: &str) -> Vec<(usize, String)> {
        let matcher = Matcher::new(&[]).unwrap();
        let mut out = Vec::new();
        matcher.find(text.as_bytes(), 0, text.len(), &mut out);
        out.sort_by_key(|m| m.start);
        out.into_iter()
            .map(|m| (m.rule, text[m.start..m.end].to_owned()))
            .collect()
    }

    #[test]
    fn finds_every_prefix_in_every_length_it_was_issued() {
        for prefix in Prefix::ALL {
            let lengths: &[usize] = match prefix {
                Prefix::Personal | Prefix::Secret => &[41, 42, 43, 45, 46, 47, 48, 49],
                _ => &[41, 42, 43, 44],
            };
            for &len in lengths {
                for alphabet in [BASE57, BASE62] {
                    let token = keys::with_body_len(prefix, alphabet, len);
                    let text = format!("key = \"{token}\"\n");
                    assert_eq!(
                        rules_found(&text),
                        vec![(rule_of(prefix), token.clone())],
                        "{len}"
                    );
                }
            }
        }
    }

    #[test]
    fn never_reports_a_longer_run_cut_short() {
        for (prefix, too_long) in [
            (Prefix::Project, 45),
            (Prefix::Personal, 50),
            (Prefix::OAuthAccess, 45),
        ] {
            let token = keys::with_body_len(prefix, BASE57, too_long);
            assert_eq!(rules_found(&format!("x {token} y")), vec![], "{token:.8}");
            let too_short = keys::with_body_len(prefix, BASE57, 40);
            assert_eq!(rules_found(&format!("x {too_short} y")), vec![]);
        }
    }

    #[test]
    fn tokens_inside_identifiers_are_not_tokens() {
        let token = keys::current(Prefix::Personal);
        assert_eq!(rules_found(&format!("my{token}")), vec![]);
        assert_eq!(rules_found(&format!("my_{token}")), vec![]);
        assert_eq!(rules_found(&format!("Bearer {token}")).len(), 1);
        // PostHog's prefixes are lowercase.
        assert_eq!(rules_found(&token.replacen("phx_", "PHX_", 1)), vec![]);
    }

    #[test]
    fn placeholders_are_not_secrets() {
        for text in [
            "POSTHOG_KEY=phx_your_key_here",
            "phx_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "phx_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "key: phx_...abcd",
            "key: phx_***1234",
            "POSTHOG_PERSONAL_API_KEY=<your personal api key>",
            "POSTHOG_PERSONAL_API_KEY=${POSTHOG_PERSONAL_API_KEY}",
            "posthog_api_key = os.getenv(\"POSTHOG_API_KEY\")",
            "const posthogKey = process.env.POSTHOG_KEY;",
            "POSTHOG_SECRET_KEY=changeme-changeme-changeme",
            "POSTHOG_HOST=https://us.i.posthog.com",
            "posthog_project_api_key = 'AUDIT_PROJECT_KEY'",
            "posthog_key: posthog_personal_api_key_v2",
            "webhook: whsec_your_signing_secret",
            "phs_abcd",
        ] {
            assert_eq!(rules_found(text), vec![], "{text}");
        }
    }

    #[test]
    fn legacy_keys_need_posthog_context_on_the_line() {
        let key = keys::legacy_personal();
        assert_eq!(
            rules_found(&format!("POSTHOG_PERSONAL_API_KEY={key}\n")),
            vec![(builtin::LEGACY_PERSONAL_API_KEY, key.clone())]
        );
        assert_eq!(
            rules_found(&format!(
                "curl -H 'Authorization: Bearer {key}' https://app.posthog.com/api/\n"
            )),
            vec![(builtin::LEGACY_PERSONAL_API_KEY, key.clone())]
        );
        assert_eq!(rules_found(&format!("SOME_OTHER_KEY={key}\n")), vec![]);
        assert_eq!(
            rules_found(&format!("posthog = 1\nSOME_OTHER_KEY={key}\n")),
            vec![]
        );
    }

    #[test]
    fn posthog_named_assignments_are_found_in_common_syntaxes() {
        let value = "Zq8vK2mN4pR7sT9wX3yB6cD5";
        for text in [
            format!("POSTHOG_SECRET={value}"),
            format!("export POSTHOG_WEBHOOK_TOKEN=\"{value}\""),
            format!("  \"posthogApiKey\": \"{value}\","),
            format!("posthog_secret_key: '{value}'"),
            format!("PostHog.token := `{value}`"),
        ] {
            assert_eq!(
                rules_found(&text),
                vec![(builtin::SECRET_ASSIGNMENT, value.to_owned())],
                "{text}"
            );
        }
        // Not a secret-like name, or a value another rule reports.
        assert_eq!(rules_found(&format!("POSTHOG_PROJECT_ID={value}")), vec![]);
        let token = keys::current(Prefix::Project);
        assert_eq!(
            rules_found(&format!("POSTHOG_KEY={token}")),
            vec![(builtin::PROJECT_API_KEY, token)]
        );
    }

    #[test]
    fn webhook_secrets_include_their_padding() {
        let secret = keys::webhook_secret();
        assert_eq!(
            rules_found(&format!("SIGNING={secret}\n")),
            vec![(builtin::WEBHOOK_SECRET, secret.clone())]
        );
        let padded = format!("whsec_{}==", &secret[6..42]);
        assert_eq!(
            rules_found(&padded),
            vec![(builtin::WEBHOOK_SECRET, padded.clone())]
        );
    }

    #[test]
    fn allow_comments_suppress_their_line_only() {
        let token = keys::current(Prefix::Secret);
        for marker in [
            "# hogguard:allow",
            "// gitleaks:allow",
            "# pragma: allowlist secret",
        ] {
            assert_eq!(
                rules_found(&format!("k = \"{token}\" {marker}\n")),
                vec![],
                "{marker}"
            );
        }
        assert_eq!(
            rules_found(&format!("# hogguard:allow\nk = \"{token}\"\n")).len(),
            1
        );
    }

    #[test]
    fn current_and_legacy_eras_both_match() {
        for era in [Era::Current, Era::Base62 { bytes: 35 }] {
            let token = keys::token(Prefix::Personal, era);
            assert_eq!(
                rules_found(&token),
                vec![(builtin::PERSONAL_API_KEY, token.clone())]
            );
        }
    }

    #[test]
    fn custom_rules_honour_keywords_groups_and_entropy() {
        let rules = [
            CustomRule {
                id: "itk".into(),
                regex: r"itk_([a-z0-9]{16})\b".into(),
                keywords: vec!["ITK_".into()],
                min_entropy: Some(3.0),
                severity: crate::Severity::High,
                secret: true,
                description: None,
            },
            CustomRule {
                id: "unkeyed".into(),
                regex: r"corp-[0-9]{6}".into(),
                keywords: vec![],
                min_entropy: None,
                severity: crate::Severity::Low,
                secret: false,
                description: None,
            },
        ];
        let matcher = Matcher::new(&rules).unwrap();
        let text = b"a itk_k3j5h7g9f2d4s6a8 b itk_aaaaaaaaaaaaaaaa corp-123456";
        let mut out = Vec::new();
        matcher.find(text, 0, text.len(), &mut out);
        out.sort_by_key(|m| m.start);
        let found: Vec<_> = out
            .iter()
            .map(|m| (m.rule, &text[m.start..m.end]))
            .collect();
        assert_eq!(
            found,
            vec![
                (builtin::COUNT, &b"k3j5h7g9f2d4s6a8"[..]),
                (builtin::COUNT + 1, &b"corp-123456"[..])
            ]
        );
        let bad = CustomRule {
            regex: "(".into(),
            ..rules[0].clone()
        };
        assert!(matches!(Matcher::new(&[bad]), Err(Error::RuleRegex { .. })));
    }
}
