//! Finds credentials in a window of bytes: a literal prefilter, then exact checks per rule.
//!
//! One SIMD pass for two-byte literals finds every place worth a closer look: `ph` (the tokens
//! `phc_`, `phx_`, `phs_`, `pha_`, `phr_`), `hg` (the proxy's `hgp_`), `hs` (`whsec_`), `Be` (`Bearer`), `og` or `OG` (the
//! end of the word PostHog in any case), and `Gh`, `Bo`, `aG`, `aH` (a token prefix in base64,
//! see [`encoded`](crate::encoded)). Two-byte literals are rare enough in code and let the
//! search run at about memchr's speed, where longer literals would halve it. Each hit is checked
//! in place. Tokens are then measured as whole alphanumeric runs, so a longer run
//! is never reported cut short; a token may follow a JSON, C or URL escape (`\n`, `\u0022`,
//! `\x22`, `%22`). Around each PostHog name, and only there, [`context`](crate::context) reads
//! the value assigned or passed to it.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, packed};
use regex::bytes::Regex;

use crate::context;
use crate::encoded::{self, MAX_ENCODED_LEN};
use crate::entropy::{is_placeholder, shannon_entropy};
use crate::error::Error;
use crate::rules::{CustomRule, builtin};
use crate::tokens::{
    CLIENT_TOKEN_SHAPE, CONTEXT, Match, TOKEN_SHAPES, TokenShape, WEBHOOK_MAX_BODY,
    WEBHOOK_MIN_BODY, WEBHOOK_PREFIX, line_bounds,
};

/// The longest match the matcher can report (a base64 blob), plus slack; a window must keep
/// this much beyond the last position it reports from.
pub(crate) const OVERLAP: usize = MAX_ENCODED_LEN + 4 * CONTEXT;

/// Inline comments that suppress a finding on their line.
const ALLOW_MARKERS: &[&[u8]] = &[
    b"hogguard:allow",
    b"gitleaks:allow",
    b"pragma: allowlist secret",
];

/// The literals of the prefilter: where a token, a webhook secret, a `Bearer` header, a PostHog
/// name or a token in base64 may be. What each hit is, is decided by the bytes around it.
///
/// Teddy puts at most eight literals in separate buckets, and literals of a bucket match each
/// other's bytes too; `og` and `OG` share one (their low nibbles are equal), which costs nothing
/// since `oG` and `Og` are rare, and `hg` shares another (no slower on the real-code tree,
/// measured against the build without it). In leftmost-first order a hit hides a literal that starts on
/// its second byte; only `phs` (`ph`, then `hs`) does that here, and `whsec_` never follows `p`.
const PREFILTER: [(&[u8], Literal); 10] = [
    (b"ph", Literal::Token),
    (b"hg", Literal::ClientToken),
    (b"hs", Literal::Webhook),
    (b"Be", Literal::Bearer),
    (b"og", Literal::PostHog),
    (
        b"Gh",
        Literal::Base64 {
            alignment: 0,
            offset: 1,
        },
    ),
    (
        b"Bo",
        Literal::Base64 {
            alignment: 1,
            offset: 0,
        },
    ),
    (
        b"aG",
        Literal::Base64 {
            alignment: 2,
            offset: 1,
        },
    ),
    (
        b"aH",
        Literal::Base64 {
            alignment: 2,
            offset: 1,
        },
    ),
    (b"OG", Literal::PostHog),
];

/// What a prefilter literal may be the start or part of.
#[derive(Debug, Clone, Copy)]
enum Literal {
    /// `ph`: a token prefix.
    Token,
    /// `hg`: a proxy client token's prefix.
    ClientToken,
    /// `hs`: `whsec_`, one byte before.
    Webhook,
    /// `Be`: `Bearer`.
    Bearer,
    /// The end of the word PostHog.
    PostHog,
    /// Part of a token prefix's base64 form of this alignment (see
    /// [`TOKEN_FORMS`](encoded::TOKEN_FORMS)), `offset` bytes into it.
    Base64 { alignment: usize, offset: usize },
}

/// The word PostHog less its last two letters, which the prefilter found; compared without
/// regard to case, so `posthog`, `PostHog`, `POSTHOG` and `Posthog` all name it.
const POSTHOG_HEAD: &[u8] = b"posth";

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
    prefilter: packed::Searcher,
    custom: Vec<CustomMatcher>,
    /// Keywords of the custom rules, and for each pattern the custom rule it belongs to.
    custom_keywords: Option<(AhoCorasick, Vec<usize>)>,
}

impl Matcher {
    /// Compiles the built-in rules and `custom`, whose rule indexes follow the built-in ones.
    pub(crate) fn new(custom: &[CustomRule]) -> Result<Self, Error> {
        // Leftmost-first: the only literals that overlap are `ph` and `hs` (`phs_`), and there
        // `ph` is the one that matters (`whsec_` is never preceded by `p`).
        let mut prefilter = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostFirst)
            .builder();
        prefilter.extend(PREFILTER.iter().map(|&(literal, _)| literal));
        let prefilter = prefilter.build().expect("fixed literals build a searcher");

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
        self.find_layer(window, report_from, report_to, out, true);
    }

    /// [`find`](Self::find), decoding base64 blobs when `decode` (one layer deep, as Kingfisher).
    fn find_layer(
        &self,
        window: &[u8],
        report_from: usize,
        report_to: usize,
        out: &mut Vec<Match>,
        decode: bool,
    ) {
        let first = out.len();
        // The end of the last name read for context, so that a name that spells PostHog twice
        // is read once; and of the last base64 run read.
        let mut name_end = 0;
        let mut run_end = 0;
        for hit in self.prefilter.find_iter(window) {
            let start = hit.start();
            let literal = PREFILTER[hit.pattern().as_usize()].1;
            // A blob that starts before `report_to` may hold its token's form after it.
            if start >= report_to + MAX_ENCODED_LEN {
                break;
            }
            if start >= report_to && !matches!(literal, Literal::Base64 { .. }) {
                continue;
            }
            match literal {
                Literal::Token => {
                    let shape = window
                        .get(start + 2..start + 4)
                        .and_then(|rest| TOKEN_SHAPES.iter().find(|s| s.prefix[2..] == *rest));
                    if let Some(shape) = shape
                        && start >= report_from
                        && starts_token(window, start)
                    {
                        out.extend(token_at(window, start, shape));
                    }
                }
                Literal::ClientToken => {
                    if start >= report_from
                        && window[start..].starts_with(CLIENT_TOKEN_SHAPE.prefix)
                        && starts_token(window, start)
                    {
                        out.extend(token_at(window, start, &CLIENT_TOKEN_SHAPE));
                    }
                }
                Literal::Webhook => {
                    if let Some(at) = start.checked_sub(1)
                        && at >= report_from
                        && window[at..].starts_with(WEBHOOK_PREFIX)
                        && starts_token(window, at)
                    {
                        out.extend(webhook_secret_at(window, at));
                    }
                }
                Literal::Bearer => {
                    if window[start..].starts_with(b"Bearer") {
                        context::find_bearer(window, start, report_from, report_to, out);
                    }
                }
                Literal::PostHog => {
                    if let Some(at) = start.checked_sub(POSTHOG_HEAD.len())
                        && at >= name_end
                        && window[at..start].eq_ignore_ascii_case(POSTHOG_HEAD)
                    {
                        name_end = context::find_at_name(window, at, report_from, report_to, out);
                    }
                }
                Literal::Base64 { alignment, offset } => {
                    if decode
                        && start >= run_end
                        && let Some(form) = start.checked_sub(offset)
                        && encoded::token_form_at(window, form, alignment)
                    {
                        run_end = self.find_in_blob(window, form, report_from, report_to, out);
                    }
                }
            }
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

    /// Matches in the base64 blob around `at` (where a token prefix's form starts), reported
    /// at the blob; returns where the run of base64 around `at` ends.
    fn find_in_blob(
        &self,
        window: &[u8],
        at: usize,
        report_from: usize,
        report_to: usize,
        out: &mut Vec<Match>,
    ) -> usize {
        let (start, end) = match encoded::blob_around(window, at) {
            Ok(blob) => blob,
            Err(run_end) => return run_end,
        };
        if !(report_from..report_to).contains(&start) {
            return end;
        }
        let Some(text) = encoded::decode_text(&window[start..end]) else {
            return end;
        };
        let mut inner = Vec::new();
        self.find_layer(&text, 0, text.len(), &mut inner, false);
        out.extend(inner.into_iter().map(|m| Match {
            rule: m.rule,
            start,
            end,
            decoded: Some(text[m.start..m.end].into()),
        }));
        end
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
                out.push(Match::plain(custom.rule, secret.start(), secret.end()));
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
    Some(Match::plain(shape.rule, start, body_start + body_len))
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
    Some(Match::plain(
        crate::rules::builtin::WEBHOOK_SECRET,
        start,
        body_start + body_len + padding,
    ))
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
