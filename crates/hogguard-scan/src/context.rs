//! Values whose meaning comes from where they stand: unprefixed pre-2021 keys and literal
//! values of PostHog-named secrets.
//!
//! Context is read only around a name that mentions PostHog (or a `Bearer` header), never from
//! elsewhere on the line: the value must be assigned to that name (`POSTHOG_API_KEY = "…"`,
//! `"posthogKey": "…"`), or passed to that call (`posthog.init('…')`,
//! `Posthog(personal_api_key='…')`). Its role then decides what it is: a personal-key name or a
//! `Bearer` header makes a 43-character value a personal key (a secret); an SDK's init or a
//! project or API key name makes it a public project key.

use crate::entropy::{MIN_TOKEN_ENTROPY, is_placeholder, shannon_entropy};
use crate::rules::builtin;
use crate::tokens::{Match, has_token_prefix, line_bounds};

/// How far from a name its value may end: well inside the bytes a window keeps before the
/// positions it reports, so that a value is judged with its name in every window.
const SPAN: usize = 768;
/// Pre-2021 project and personal keys: `secrets.token_urlsafe(32)`, 43 URL-safe characters.
pub(crate) const LEGACY_KEY_LEN: usize = 43;
/// The shortest literal value worth reporting from a PostHog-named variable.
const MIN_ASSIGNED_LEN: usize = 16;
const MAX_ASSIGNED_LEN: usize = 256;

/// What a name says its value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A personal API key: a secret that reaches an organisation.
    Personal,
    /// A secret of another kind (`POSTHOG_SECRET`, `posthog_private_key`).
    Secret,
    /// A project API key or token: public by design.
    Project,
}

/// Words of a name that make its value a reference, a pattern, a digest or a setting, never a
/// secret (`POSTHOG_KEY_FILE`, `POSTHOG_TOKEN_PATTERN`, `posthogKeyType`).
const NOT_VALUE_WORDS: &[&str] = &[
    "pattern",
    "regex",
    "regexp",
    "re",
    "format",
    "fmt",
    "template",
    "prefix",
    "suffix",
    "file",
    "filename",
    "path",
    "dir",
    "url",
    "uri",
    "host",
    "hostname",
    "header",
    "name",
    "type",
    "kind",
    "length",
    "len",
    "env",
    "environ",
    "environment",
    "var",
    "variable",
    "field",
    "label",
    "placeholder",
    "example",
    "sha",
    "sha1",
    "sha256",
    "sha512",
    "hash",
    "digest",
    "checksum",
    "integrity",
    "id",
];

/// The words of a name, lowercase: split at punctuation and at lower-to-upper case changes.
fn words(name: &[u8]) -> Vec<Vec<u8>> {
    let mut words: Vec<Vec<u8>> = Vec::new();
    let mut previous_lower = false;
    let mut current = Vec::new();
    for &b in name {
        let starts_word = !b.is_ascii_alphanumeric() || (b.is_ascii_uppercase() && previous_lower);
        if starts_word && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        if b.is_ascii_alphanumeric() {
            current.push(b.to_ascii_lowercase());
        }
        previous_lower = b.is_ascii_lowercase() || b.is_ascii_digit();
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// The role a name gives its value, from its words; `None` when it names no credential.
fn role_of(name: &[u8]) -> Option<Role> {
    let words = words(name);
    if words
        .iter()
        .any(|word| NOT_VALUE_WORDS.iter().any(|not| word == not.as_bytes()))
    {
        return None;
    }
    let lower = words.concat();
    let holds = |word: &str| memchr::memmem::find(&lower, word.as_bytes()).is_some();
    if holds("personal") {
        Some(Role::Personal)
    } else if holds("secret") || holds("private") {
        Some(Role::Secret)
    } else if holds("key") || holds("token") {
        Some(Role::Project)
    } else {
        None
    }
}

/// Which bytes names are made of: letters, digits, `_`, `-` and `.`. A table, because names
/// are read at every PostHog mention.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.';
        b += 1;
    }
    table
};

fn is_name_byte(b: u8) -> bool {
    NAME_BYTES[usize::from(b)]
}

/// The bounds of the name around `at` (letters, digits, `_`, `-`, `.` and `::`).
fn name_bounds(window: &[u8], at: usize) -> (usize, usize) {
    let floor = at.saturating_sub(128);
    let mut start = at;
    while start > floor {
        if is_name_byte(window[start - 1]) {
            start -= 1;
        } else if start >= 2 && window[start - 1] == b':' && window[start - 2] == b':' {
            start -= 2;
        } else {
            break;
        }
    }
    let ceiling = (at + 128).min(window.len());
    let mut end = at;
    while end < ceiling {
        if is_name_byte(window[end]) {
            end += 1;
        } else if window[end..].starts_with(b"::") {
            end += 2;
        } else {
            break;
        }
    }
    (start, end)
}

/// Quote marks as JSON, URL, C and HTML escapes write them.
const ESCAPED_QUOTES: &[&[u8]] = &[
    b"\\\"", b"\\'", b"\\u0022", b"\\u0027", b"\\x22", b"\\x27", b"%22", b"%27", b"&quot;",
    b"&#34;",
];

/// The quote mark at `at`, raw or escaped, if one starts there.
#[inline]
fn quote_at(window: &[u8], at: usize) -> Option<&'static [u8]> {
    let rest = window.get(at..)?;
    match rest.first()? {
        b'"' => Some(b"\""),
        b'\'' => Some(b"'"),
        b'`' => Some(b"`"),
        b'\\' | b'%' | b'&' => ESCAPED_QUOTES.iter().copied().find(|quote| {
            rest.len() >= quote.len() && rest[..quote.len()].eq_ignore_ascii_case(quote)
        }),
        _ => None,
    }
}

/// Assignment operators, raw and URL-encoded; the second item says whether it is one.
const OPERATORS: &[(&[u8], bool)] = &[
    (b"==", false),
    (b"::", false),
    (b":=", true),
    (b"=>", true),
    (b"?=", true),
    (b"||=", true),
    (b"=", true),
    (b":", true),
    (b"%3D", true),
    (b"%3A", true),
];

fn skip_blanks(window: &[u8], mut at: usize, end: usize) -> usize {
    while at < end && matches!(window[at], b' ' | b'\t') {
        at += 1;
    }
    at
}

fn skip_space(window: &[u8], mut at: usize, end: usize) -> usize {
    while at < end && window[at].is_ascii_whitespace() {
        at += 1;
    }
    at
}

/// After a name: past a closing quote and blanks, the length of an assignment operator.
fn operator_at(window: &[u8], at: usize, end: usize) -> Option<usize> {
    let rest = window.get(at..end)?;
    if !matches!(rest.first(), Some(b'=' | b':' | b'?' | b'|' | b'%')) {
        return None;
    }
    for &(operator, assigns) in OPERATORS {
        if rest.len() >= operator.len() && rest[..operator.len()].eq_ignore_ascii_case(operator) {
            return assigns.then_some(operator.len());
        }
    }
    None
}

/// The value that starts at `at` (after blanks): a quoted string, or an unquoted run up to a
/// blank or punctuation. Returns its bounds.
fn value_at(window: &[u8], at: usize, end: usize) -> Option<(usize, usize)> {
    let at = skip_blanks(window, at, end);
    if at >= end {
        return None;
    }
    if let Some(quote) = quote_at(window, at) {
        let start = at + quote.len();
        let limit = (start + MAX_ASSIGNED_LEN + 1).min(end).max(start);
        let mut i = start;
        // The closing quote, on the same line.
        while let Some(found) = memchr::memchr3(quote[0], b'\n', b'\r', &window[i..limit]) {
            i += found;
            if window[i] == quote[0] && window[i..].starts_with(quote) {
                return Some((start, i));
            }
            if window[i] != quote[0] {
                return None;
            }
            i += 1;
        }
        return None;
    }
    let limit = (at + MAX_ASSIGNED_LEN + 1).min(end);
    let mut i = at;
    while i < limit
        && !window[i].is_ascii_whitespace()
        && !matches!(
            window[i],
            b'"' | b'\''
                | b'`'
                | b';'
                | b','
                | b'#'
                | b'('
                | b')'
                | b'['
                | b']'
                | b'&'
                | b'|'
                | b'\\'
                | b'%'
        )
    {
        i += 1;
    }
    // A name followed by `(` is a call (`normalizeKey(config.key)`), not a value.
    (i > at && window.get(i) != Some(&b'(')).then_some((at, i))
}

/// Whether a value is a pre-2021 key in shape: 43 URL-safe characters that look random.
fn is_legacy_shaped(value: &[u8]) -> bool {
    value.len() == LEGACY_KEY_LEN
        && value
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && is_legacy_key(value)
}

/// Whether a 43-character URL-safe run looks like `secrets.token_urlsafe(32)`: random text has
/// upper and lower case letters and digits; identifiers and words rarely have all three.
pub(crate) fn is_legacy_key(run: &[u8]) -> bool {
    run.iter().any(u8::is_ascii_uppercase)
        && run.iter().any(u8::is_ascii_lowercase)
        && run.iter().any(u8::is_ascii_digit)
        && shannon_entropy(run) >= 4.0
        && !is_placeholder(run)
}

/// The match for `value` (at `start..end`) given the role its context gives it.
fn judge(
    role: impl FnOnce() -> Option<Role>,
    window: &[u8],
    start: usize,
    end: usize,
) -> Option<Match> {
    let value = &window[start..end];
    // Values are judged before names: most values next to a PostHog name are short or plain,
    // and the name's words need not be read for them.
    if value.len() < MIN_ASSIGNED_LEN {
        return None;
    }
    if has_token_prefix(value) || is_piece_of_longer_run(window, start, end) {
        return None;
    }
    let rule = if is_legacy_shaped(value) {
        match role()? {
            Role::Personal => builtin::LEGACY_PERSONAL_API_KEY,
            Role::Project => builtin::LEGACY_PROJECT_API_KEY,
            Role::Secret => builtin::SECRET_ASSIGNMENT,
        }
    } else if is_assigned_secret(value) && role().is_some() {
        builtin::SECRET_ASSIGNMENT
    } else {
        return None;
    };
    Some(Match::plain(rule, start, end))
}

/// Whether `start..end` continues a longer base64 or hex run: next to `+`, `/` or `=`
/// padding, which URL-safe keys never hold.
fn is_piece_of_longer_run(window: &[u8], start: usize, end: usize) -> bool {
    let before = start.checked_sub(1).map(|i| window[i]);
    let after = window.get(end).copied();
    matches!(before, Some(b'+' | b'/')) || matches!(after, Some(b'+' | b'/' | b'='))
}

/// The PostHog context at a prefilter hit on a PostHog spelling: the name around it, then its
/// value if the name is assigned, or its arguments if it is called. Returns where the name
/// ends, so that later hits inside it are skipped.
pub(crate) fn find_at_name(
    window: &[u8],
    at: usize,
    report_from: usize,
    report_to: usize,
    out: &mut Vec<Match>,
) -> usize {
    // Most mentions are not assigned or called (`import posthog`, `posthog.capture(`, prose):
    // tell them from the rest by what follows the name, before reading the name whole.
    let (name_end, last_segment) = name_end_from(window, at);
    let mut next = name_end;
    if let Some(quote) = quote_at(window, next) {
        next += quote.len();
    }
    next = skip_blanks(window, next, (next + 64).min(window.len()));
    match window.get(next) {
        Some(b'(') if is_init_segment(last_segment) => {}
        Some(b'=' | b':' | b'?' | b'|' | b'%') => {}
        _ => return name_end,
    }
    let (name_start, name_end) = name_bounds(window, at);
    let name = &window[name_start..name_end];
    let end = (name_end + SPAN).min(window.len());
    let mut i = name_end;
    if let Some(quote) = quote_at(window, i) {
        i += quote.len();
    }
    i = skip_blanks(window, i, end);
    let mut push = |found: Option<Match>| {
        if let Some(m) = found.filter(|m| (report_from..report_to).contains(&m.start)) {
            out.push(m);
        }
    };
    if let Some(operator) = operator_at(window, i, end) {
        if let Some((start, value_end)) = value_at(window, i + operator, end) {
            push(judge(|| role_of(name), window, start, value_end));
        }
    } else if window.get(i) == Some(&b'(') && is_init_call(name) {
        for found in call_arguments(window, i + 1, end) {
            push(Some(found));
        }
    }
    name_end
}

/// Where the name that holds `at` (the start of a PostHog spelling) ends, and its last segment
/// (after the last `.` or `::`) when that segment starts at or after `at`; otherwise the part
/// of it from `at`.
fn name_end_from(window: &[u8], at: usize) -> (usize, &[u8]) {
    let ceiling = (at + 128).min(window.len());
    // The spelling itself is seven name bytes.
    let mut end = (at + 7).min(ceiling);
    let mut segment = at;
    loop {
        end += window[end..ceiling]
            .iter()
            .position(|&b| b == b'.' || !is_name_byte(b))
            .unwrap_or(ceiling - end);
        if end < ceiling && window[end] == b'.' {
            end += 1;
        } else if end + 1 < ceiling && window[end] == b':' && window[end + 1] == b':' {
            end += 2;
        } else {
            break;
        }
        segment = end;
    }
    (end, &window[segment..end])
}

/// Whether a call's first positional argument is the project key: SDK constructors and init
/// functions (`posthog.init`, `PostHog::init`, `new PostHog`, `Posthog(`).
fn is_init_call(name: &[u8]) -> bool {
    let last = name
        .rsplit(|&b| b == b'.' || b == b':')
        .next()
        .unwrap_or(name);
    is_init_segment(last)
}

/// Whether the last segment of a called name is an SDK constructor or init function.
fn is_init_segment(last: &[u8]) -> bool {
    const INIT_NAMES: &[&[u8]] = &[
        b"init",
        b"initialize",
        b"setup",
        b"configure",
        b"create",
        b"client",
        b"new",
    ];
    last.windows(7).any(|w| w.eq_ignore_ascii_case(b"posthog"))
        || INIT_NAMES.iter().any(|n| last.eq_ignore_ascii_case(n))
}

/// Matches among the arguments of an init call to `name` that start at `at`: the first
/// positional argument (a project key), and every `name=value` or `name: value` inside.
fn call_arguments(window: &[u8], at: usize, end: usize) -> Vec<Match> {
    let mut found = Vec::new();
    let mut i = skip_space(window, at, end);
    if let Some(quote) = quote_at(window, i)
        && let Some((start, value_end)) = value_at(window, i, end)
    {
        found.extend(judge(|| Some(Role::Project), window, start, value_end));
        i = value_end + quote.len();
    }
    let mut depth = 0usize;
    while i < end {
        let b = window[i];
        match b {
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            _ if is_name_byte(b) && (i == 0 || !is_name_byte(window[i - 1])) => {
                let (start, name_end) = name_bounds(window, i);
                let mut j = name_end;
                if let Some(quote) = quote_at(window, j) {
                    j += quote.len();
                }
                j = skip_blanks(window, j, end);
                if let Some(operator) = operator_at(window, j, end)
                    && let Some((value_start, value_end)) = value_at(window, j + operator, end)
                {
                    found.extend(judge(
                        || role_of(&window[start..name_end]),
                        window,
                        value_start,
                        value_end,
                    ));
                    i = value_end;
                    continue;
                }
                i = name_end;
                continue;
            }
            b'"' | b'\'' | b'`' => {
                // Skip a string argument whole: names inside it are not arguments.
                if let Some((_, value_end)) = value_at(window, i, end) {
                    i = value_end + 1;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// A pre-2021 personal key in an `Authorization: Bearer` header at `at` (the `B`), when
/// PostHog is named near it on the same line.
pub(crate) fn find_bearer(
    window: &[u8],
    at: usize,
    report_from: usize,
    report_to: usize,
    out: &mut Vec<Match>,
) {
    let start = skip_blanks(window, at + b"Bearer".len(), window.len());
    if start == at + b"Bearer".len() {
        return;
    }
    let end = window[start..]
        .iter()
        .take(LEGACY_KEY_LEN + 1)
        .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        .count()
        + start;
    if !(report_from..report_to).contains(&start)
        || !is_legacy_shaped(&window[start..end])
        || is_piece_of_longer_run(window, start, end)
    {
        return;
    }
    let (line_start, line_end) = line_bounds(window, start);
    let near = &window[line_start.max(start.saturating_sub(256))..line_end.min(end + 256)];
    let names_posthog = near.windows(7).any(|w| w.eq_ignore_ascii_case(b"posthog"));
    if names_posthog {
        out.push(Match::plain(builtin::LEGACY_PERSONAL_API_KEY, start, end));
    }
}

/// Whether a value assigned to a PostHog-named secret is a literal credential: long enough,
/// random-looking, and not a reference (`process.env.X`, `os.getenv(`), a URL, a pattern, a
/// placeholder or words joined by dashes (`mock-personal-key`).
pub(crate) fn is_assigned_secret(value: &[u8]) -> bool {
    if !(MIN_ASSIGNED_LEN..=MAX_ASSIGNED_LEN).contains(&value.len())
        || value.iter().any(|b| {
            b.is_ascii_whitespace()
                || matches!(
                    b,
                    b'(' | b')'
                        | b'['
                        | b']'
                        | b'{'
                        | b'}'
                        | b'<'
                        | b'>'
                        | b'\\'
                        | b'$'
                        | b'%'
                        | b'|'
                        | b'^'
                        | b'*'
                )
        })
        || memchr::memmem::find(value, b"://").is_some()
        || is_dotted_reference(value)
        || is_snake_case_name(value)
        || is_joined_words(value)
    {
        return false;
    }
    let has_digit = value.iter().any(u8::is_ascii_digit);
    let mixed_case =
        value.iter().any(u8::is_ascii_uppercase) && value.iter().any(u8::is_ascii_lowercase);
    (has_digit || mixed_case)
        && shannon_entropy(value) >= MIN_TOKEN_ENTROPY
        && !is_placeholder(value)
}

/// `mock-personal-key`, `my-key-value-here`, `maskPersonalDataProperties`: words joined by
/// punctuation or case changes, each with a vowel, is a name or a test string, not a secret.
/// Random text splits into pieces without vowels or with digits.
fn is_joined_words(value: &[u8]) -> bool {
    let words = words(value);
    words.len() >= 2
        && words.iter().all(|word| {
            word.len() <= 14
                && word.iter().all(u8::is_ascii_alphabetic)
                && word.iter().any(|b| b"aeiouy".contains(b))
        })
}

/// `AUDIT_PROJECT_KEY`, `posthog_personal_key`: the name of another variable, not a value.
/// Generated secrets mix cases or carry no underscores.
fn is_snake_case_name(value: &[u8]) -> bool {
    let single_case = value
        .iter()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
        || value
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
    single_case && value.contains(&b'_') && value[0].is_ascii_alphabetic()
}

/// `settings.POSTHOG_KEY`, `process.env.POSTHOG_KEY`: names, not values.
fn is_dotted_reference(value: &[u8]) -> bool {
    value.contains(&b'.')
        && value.split(|&b| b == b'.').all(|part| {
            !part.is_empty()
                && !part[0].is_ascii_digit()
                && part.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Pieces of text that steer the context parser through its branches.
    const PIECES: &[&str] = &[
        "posthog",
        "PostHog",
        "POSTHOG_",
        "personal_api_key",
        "apiKey",
        "Bearer ",
        "=",
        ":",
        "::",
        "==",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        ",",
        "'",
        "\"",
        "`",
        "\\\"",
        "%22",
        "%3D",
        "\\u0022",
        "&quot;",
        " ",
        "\n",
        "init",
        "new ",
        "abc",
        "Zq8vK2mN4pR7sT9wX3yB6cD5fG8hJ2kLmN3pQ5rS7tU",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn context_parsing_never_panics_and_stays_in_range(
            picks in proptest::collection::vec(0..PIECES.len(), 0..60),
            cut in any::<prop::sample::Index>(),
            from in any::<prop::sample::Index>(),
        ) {
            let text: String = picks.iter().map(|&i| PIECES[i]).collect();
            let window = &text.as_bytes()[..cut.index(text.len() + 1)];
            let report_from = from.index(window.len() + 1);
            let mut out = Vec::new();
            let matcher = crate::matcher::Matcher::new(&[]).unwrap();
            matcher.find(window, report_from, window.len(), &mut out);
            for m in out {
                prop_assert!(report_from <= m.start && m.start < m.end && m.end <= window.len());
            }
        }
    }

    #[test]
    fn a_name_across_the_end_of_a_long_call_is_no_panic() {
        let matcher = crate::matcher::Matcher::new(&[]).unwrap();
        for pad in SPAN - 20..SPAN + 20 {
            let text = format!("posthog.init({}apiKey\":'x')", ",".repeat(pad));
            let mut out = Vec::new();
            matcher.find(text.as_bytes(), 0, text.len(), &mut out);
            assert_eq!(out, []);
        }
    }

    #[test]
    fn names_split_into_words() {
        assert_eq!(
            words(b"NG_APP_POSTHOG_KEY"),
            [&b"ng"[..], b"app", b"posthog", b"key"]
        );
        assert_eq!(words(b"posthogKeyFile"), [&b"posthog"[..], b"key", b"file"]);
        assert_eq!(role_of(b"POSTHOG_KEY_FILE"), None);
        assert_eq!(role_of(b"POSTHOG_SHARED_SECRET"), Some(Role::Secret));
        assert_eq!(role_of(b"posthogPersonalApiKey"), Some(Role::Personal));
        assert_eq!(role_of(b"posthog.api_key"), Some(Role::Project));
    }
}
