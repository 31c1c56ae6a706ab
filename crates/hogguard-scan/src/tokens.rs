//! What the finders share: the shapes of the tokens hogguard knows by their prefix, the match
//! every finder returns, and how far around a match its line is read.

use crate::rules::builtin;

/// How far around a match the matcher looks for the rest of its line (context words, allow
/// comments). Lines longer than this are judged by their nearby part.
pub(crate) const CONTEXT: usize = 1024;

/// A credential found in a window: the rule's index and the byte range of the secret, or of
/// the base64 blob that encodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Match {
    pub(crate) rule: usize,
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// The secret, when `start..end` is the blob it was decoded from.
    pub(crate) decoded: Option<Box<[u8]>>,
}

impl Match {
    /// A secret at `start..end` as it stands.
    pub(crate) fn plain(rule: usize, start: usize, end: usize) -> Self {
        Match {
            rule,
            start,
            end,
            decoded: None,
        }
    }
}

/// A PostHog token prefix with the body lengths it was ever issued with.
pub(crate) struct TokenShape {
    pub(crate) prefix: &'static [u8],
    pub(crate) rule: usize,
    pub(crate) min_body: usize,
    pub(crate) max_body: usize,
}

/// `phc_`, `pha_` and `phr_` carry 32 random bytes: 44 base57 characters today, 41–43 base62
/// characters before. `phx_` and `phs_` carry 35 bytes today (48–49) and carried 32 (41–43) or
/// 35 (45–48) in base62 before.
pub(crate) const TOKEN_SHAPES: [TokenShape; 5] = [
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

/// A client token of hogguard's proxy: `hgp_` and 44 base57 characters.
pub(crate) const CLIENT_TOKEN_SHAPE: TokenShape = TokenShape {
    prefix: hogguard_secret::CLIENT_TOKEN_PREFIX.as_bytes(),
    rule: builtin::CLIENT_TOKEN,
    min_body: hogguard_secret::CLIENT_TOKEN_BODY_CHARS,
    max_body: hogguard_secret::CLIENT_TOKEN_BODY_CHARS,
};

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
pub(crate) const WEBHOOK_MIN_BODY: usize = 24;
pub(crate) const WEBHOOK_MAX_BODY: usize = 128;

/// Whether `value` starts like a token of a prefix hogguard knows (PostHog's, `whsec_`,
/// `hgp_`): such a value is found by its own rule, never as an assigned secret.
pub(crate) fn has_token_prefix(value: &[u8]) -> bool {
    TOKEN_PREFIXES
        .iter()
        .chain([&WEBHOOK_PREFIX, &CLIENT_TOKEN_SHAPE.prefix])
        .any(|prefix| value.starts_with(prefix))
}

/// The bounds of the line around `pos`, at most [`CONTEXT`] bytes each way.
pub(crate) fn line_bounds(window: &[u8], pos: usize) -> (usize, usize) {
    let floor = pos.saturating_sub(CONTEXT);
    let start = memchr::memrchr(b'\n', &window[floor..pos]).map_or(floor, |i| floor + i + 1);
    let ceiling = (pos + CONTEXT).min(window.len());
    let end = memchr::memchr(b'\n', &window[pos..ceiling]).map_or(ceiling, |i| pos + i);
    (start, end)
}
