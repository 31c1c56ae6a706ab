//! The log line: how the writer lays it out and hashes it, and how a reader checks one line
//! on its own (its hash and its syntax). Linking lines into a chain is in `chain.rs`.

use std::borrow::Cow;

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::entry::{Entry, Outcome};
use crate::time::Timestamp;

/// The `v` member of every line.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Hashed before the line's bytes, so that a line hash is never mistaken for any other
/// SHA-256 (a checkpoint MAC, an event uuid).
pub(crate) const LINE_HASH_DOMAIN: &[u8] = b"hogguard-audit-v1\n";

/// The last member of every line, up to its value.
const HASH_MEMBER: &[u8] = b",\"hash\":\"";

/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = HASH_MEMBER.len() + 64 + 2;

/// The longest line, newline excluded, that the writer writes and a reader accepts. It keeps
/// a shipped batch far below capture's 20 MB limit and an event below its 1 MB one.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The `prev` of the entry with seq 1: 64 zeros.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A SHA-256 value.
pub(crate) type Digest = [u8; 32];

/// The digest [`GENESIS_PREV`] stands for.
pub(crate) const GENESIS_DIGEST: Digest = [0; 32];

/// The hash of a line whose bytes without the hash member are `head` followed by `}`.
fn line_hash(head: &[u8]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(LINE_HASH_DOMAIN);
    hasher.update(head);
    hasher.update(b"}");
    hasher.finalize().into()
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    push_hex(&mut text, bytes);
    text
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
}

/// The bytes written as `text` in lowercase hex, if it is exactly that.
pub(crate) fn parse_hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    fn nibble(digit: u8) -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            _ => None,
        }
    }
    if text.len() != N * 2 {
        return None;
    }
    let mut bytes = [0; N];
    for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(bytes)
}

/// A JSON value serialised with every object's keys in byte order, whatever order the map
/// keeps (serde_json's `preserve_order` feature may be on through another crate).
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => SortedMap(map).serialize(serializer),
            Value::Array(items) => serializer.collect_seq(items.iter().map(Sorted)),
            scalar => scalar.serialize(serializer),
        }
    }
}

struct SortedMap<'a>(&'a Map<String, Value>);

impl Serialize for SortedMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut members: Vec<(&String, &Value)> = self.0.iter().collect();
        members.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut map = serializer.serialize_map(Some(members.len()))?;
        for (key, value) in members {
            map.serialize_entry(key, &Sorted(value))?;
        }
        map.end()
    }
}

/// The members an entry's caller decides, serialised once before the entry gets its place
/// in the chain: `"action":…,"user_id":…,"resource":…,"result":…,"metadata":{…}`.
pub(crate) fn serialize_caller_members(
    action: &str,
    user_id: &str,
    resource: &str,
    result: Outcome,
    metadata: &Map<String, Value>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"\"action\":");
    push_json(&mut out, action);
    out.extend_from_slice(b",\"user_id\":");
    push_json(&mut out, user_id);
    out.extend_from_slice(b",\"resource\":");
    push_json(&mut out, resource);
    out.extend_from_slice(b",\"result\":\"");
    out.extend_from_slice(result.as_str().as_bytes());
    out.extend_from_slice(b"\",\"metadata\":");
    push_json(&mut out, &SortedMap(metadata));
    out
}

/// Appends `value` as compact JSON.
fn push_json(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    serde_json::to_writer(out, value)
        .expect("serialising strings and JSON values into a Vec cannot fail");
}

/// Where a new line goes in the chain.
pub(crate) struct LinePosition<'a> {
    pub(crate) log_id: &'a str,
    pub(crate) seq: u64,
    pub(crate) timestamp: Timestamp,
    pub(crate) prev: &'a Digest,
}

/// Appends the complete line (newline included) for `caller_members` at `position` to
/// `out`, and returns its hash.
pub(crate) fn write_line(
    out: &mut Vec<u8>,
    position: &LinePosition<'_>,
    caller_members: &[u8],
) -> Digest {
    use std::fmt::Write as _;
    let start = out.len();
    let mut head = String::with_capacity(192);
    // Writing into a String cannot fail.
    let _ = write!(
        head,
        "{{\"v\":{FORMAT_VERSION},\"log\":\"{}\",\"seq\":{},\"timestamp\":\"{}\",\"prev\":\"",
        position.log_id, position.seq, position.timestamp
    );
    push_hex(&mut head, position.prev);
    head.push_str("\",");
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(caller_members);
    let hash = line_hash(&out[start..]);
    let mut tail = String::with_capacity(HASH_SUFFIX_LEN + 1);
    tail.push_str(",\"hash\":\"");
    push_hex(&mut tail, &hash);
    tail.push_str("\"}\n");
    out.extend_from_slice(tail.as_bytes());
    hash
}

/// The members of a line, borrowed from it where no unescaping is needed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineMembers<'a> {
    v: u32,
    #[serde(borrow)]
    log: Cow<'a, str>,
    seq: u64,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    prev: Cow<'a, str>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    #[serde(borrow)]
    resource: Cow<'a, str>,
    result: Outcome,
    #[serde(borrow)]
    metadata: &'a RawValue,
    #[serde(borrow)]
    hash: Cow<'a, str>,
}

/// A line whose hash matches its bytes and whose members are all well formed.
pub(crate) struct ParsedLine<'a> {
    members: LineMembers<'a>,
    /// The log id, as written (32 lowercase hex digits).
    pub(crate) log_id_hex: [u8; 16],
    pub(crate) seq: u64,
    pub(crate) timestamp: Timestamp,
    pub(crate) prev: Digest,
    pub(crate) hash: Digest,
}

/// Why one line, on its own, is not a valid entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LineError {
    /// The hash member does not match the line's other bytes.
    HashMismatch,
    /// The line is not an entry at all; the reason says what is wrong.
    Malformed(String),
}

/// Checks one line (without its newline): its hash member is last and matches the rest of
/// its bytes, and it has exactly the members of an entry, each well formed.
pub(crate) fn parse_line(line: &[u8]) -> Result<ParsedLine<'_>, LineError> {
    let malformed = |reason: &str| LineError::Malformed(reason.to_owned());
    if line.len() > MAX_LINE_BYTES {
        return Err(malformed(crate::problem::TOO_LONG));
    }
    let Some(head_len) = line.len().checked_sub(HASH_SUFFIX_LEN) else {
        return Err(malformed("too short to be an entry"));
    };
    let (head, suffix) = line.split_at(head_len);
    let claimed = suffix
        .strip_prefix(HASH_MEMBER)
        .and_then(|rest| rest.strip_suffix(b"\"}"))
        .and_then(parse_hex::<32>)
        .ok_or_else(|| {
            malformed("does not end with a \"hash\" member of 64 lowercase hex digits")
        })?;
    if line_hash(head) != claimed {
        return Err(LineError::HashMismatch);
    }
    let members: LineMembers<'_> = serde_json::from_slice(line)
        .map_err(|error| LineError::Malformed(format!("not an entry: {error}")))?;
    if members.v != FORMAT_VERSION {
        return Err(LineError::Malformed(format!(
            "unknown format version {}",
            members.v
        )));
    }
    // The hash member is last (checked above) and unique (serde refuses duplicates).
    if members.hash.as_bytes() != &suffix[HASH_MEMBER.len()..HASH_MEMBER.len() + 64] {
        return Err(malformed("the hash member is not the last member"));
    }
    if members.seq == 0 {
        return Err(malformed("seq 0 (sequence numbers start at 1)"));
    }
    let log_id_hex = parse_hex::<16>(members.log.as_bytes())
        .ok_or_else(|| malformed("log is not 32 lowercase hex digits"))?;
    let prev = parse_hex::<32>(members.prev.as_bytes())
        .ok_or_else(|| malformed("prev is not 64 lowercase hex digits"))?;
    let timestamp =
        Timestamp::parse(&members.timestamp).map_err(|_| malformed("timestamp is not RFC 3339"))?;
    if !members.metadata.get().starts_with('{') {
        return Err(malformed("metadata is not a JSON object"));
    }
    if members.user_id.is_empty() {
        return Err(malformed("user_id is empty"));
    }
    Ok(ParsedLine {
        seq: members.seq,
        log_id_hex,
        timestamp,
        prev,
        hash: claimed,
        members,
    })
}

impl ParsedLine<'_> {
    /// The log id as text.
    pub(crate) fn log_id(&self) -> &str {
        &self.members.log
    }

    /// The line as an owned [`Entry`].
    pub(crate) fn to_entry(&self) -> Entry {
        let metadata = serde_json::from_str(self.members.metadata.get())
            .expect("metadata was parsed as a JSON object");
        Entry {
            log_id: self.members.log.clone().into_owned(),
            seq: self.seq,
            timestamp: self.timestamp,
            prev: hex(&self.prev),
            action: self.members.action.clone().into_owned(),
            user_id: self.members.user_id.clone().into_owned(),
            resource: self.members.resource.clone().into_owned(),
            result: self.members.result,
            metadata,
            hash: hex(&self.hash),
        }
    }

    /// The entry's action.
    pub(crate) fn action(&self) -> &str {
        &self.members.action
    }

    /// The entry's user id.
    pub(crate) fn user_id(&self) -> &str {
        &self.members.user_id
    }

    /// The entry's result.
    pub(crate) fn result(&self) -> Outcome {
        self.members.result
    }
}

/// The `seq` a line claims, read leniently (no hash or syntax check beyond the member), for
/// telling a reordering from a gap after a chain break.
pub(crate) fn claimed_seq(line: &[u8]) -> Option<u64> {
    const SEQ_MEMBER: &[u8] = b"\"seq\":";
    let start = line
        .windows(SEQ_MEMBER.len())
        .position(|window| window == SEQ_MEMBER)?
        + SEQ_MEMBER.len();
    let digits = &line[start..];
    let count = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&digits[..count]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_line(metadata: &Map<String, Value>) -> Vec<u8> {
        let members = serialize_caller_members(
            "key.rotate",
            "ops",
            "phx_...abcd",
            Outcome::Success,
            metadata,
        );
        let mut line = Vec::new();
        write_line(
            &mut line,
            &LinePosition {
                log_id: "0123456789abcdef0123456789abcdef",
                seq: 7,
                timestamp: Timestamp::from_unix_millis(1_735_689_600_250),
                prev: &GENESIS_DIGEST,
            },
            &members,
        );
        line
    }

    #[test]
    fn the_line_layout_is_fixed_and_its_hash_covers_everything_before_the_hash_member() {
        let mut metadata = Map::new();
        metadata.insert("z".into(), Value::from(1));
        metadata.insert("a".into(), serde_json::json!({"y": [1, "two"], "b": null}));
        let line = sample_line(&metadata);
        let text = std::str::from_utf8(&line).unwrap();
        let expected_head = concat!(
            r#"{"v":1,"log":"0123456789abcdef0123456789abcdef","seq":7,"#,
            r#""timestamp":"2025-01-01T00:00:00.250Z","prev":"0000000000000000000000000000000000000000000000000000000000000000","#,
            r#""action":"key.rotate","user_id":"ops","resource":"phx_...abcd","result":"success","#,
            r#""metadata":{"a":{"b":null,"y":[1,"two"]},"z":1}"#
        );
        assert!(text.starts_with(expected_head), "{text}");
        let mut hashed = LINE_HASH_DOMAIN.to_vec();
        hashed.extend_from_slice(expected_head.as_bytes());
        hashed.push(b'}');
        let expected_hash = hex(&Sha256::digest(&hashed));
        assert_eq!(
            &text[expected_head.len()..],
            format!(",\"hash\":\"{expected_hash}\"}}\n")
        );

        let parsed = parse_line(&line[..line.len() - 1]).unwrap();
        assert_eq!(parsed.seq, 7);
        let entry = parsed.to_entry();
        assert_eq!(entry.hash, expected_hash);
        assert_eq!(entry.metadata, metadata);
        assert_eq!(claimed_seq(&line), Some(7));
    }

    #[test]
    fn lines_that_are_not_entries_are_malformed() {
        let line = sample_line(&Map::new());
        let body = &line[..line.len() - 1];
        assert!(matches!(parse_line(b""), Err(LineError::Malformed(_))));
        assert!(matches!(
            parse_line(&body[1..]),
            Err(LineError::Malformed(_)) | Err(LineError::HashMismatch)
        ));
        let mut upper = body.to_vec();
        let last_hex = upper.len() - 3;
        upper[last_hex] = upper[last_hex].to_ascii_uppercase();
        if upper != body {
            assert!(matches!(parse_line(&upper), Err(LineError::Malformed(_))));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Fuzz-style: arbitrary bytes never make the parser panic.
        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_line(&bytes);
            let _ = claimed_seq(&bytes);
        }

        /// Fuzz-style: lines that are almost entries (a valid line with a splice of arbitrary
        /// bytes, with or without a hash recomputed over the result) never make it panic, and
        /// only the untouched line is accepted.
        #[test]
        fn parsing_mutated_entries_never_panics(
            start in 0usize..400,
            len in 0usize..20,
            insert in proptest::collection::vec(any::<u8>(), 0..20),
            rehash in any::<bool>(),
        ) {
            let line = sample_line(&Map::new());
            let body = &line[..line.len() - 1];
            let start = start.min(body.len());
            let end = (start + len).min(body.len());
            let mut mutated = body[..start].to_vec();
            mutated.extend_from_slice(&insert);
            mutated.extend_from_slice(&body[end..]);
            if rehash && mutated.len() > HASH_SUFFIX_LEN {
                let head_len = mutated.len() - HASH_SUFFIX_LEN;
                let hash = hex(&line_hash(&mutated[..head_len]));
                mutated.truncate(head_len);
                mutated.extend_from_slice(format!(",\"hash\":\"{hash}\"}}").as_bytes());
            }
            let parsed = parse_line(&mutated);
            if mutated != body && !rehash {
                prop_assert!(parsed.is_err());
            }
        }
    }
}
