//! Scans a stream in fixed windows that overlap, so memory stays bounded on multi-gigabyte
//! files and single-line files, while every match is reported exactly once.
//!
//! Each window reports only matches that start in its middle part: bytes it shares with the
//! previous window were reported there, and the last [`OVERLAP`] bytes are reported by the
//! next window, which also sees what follows them. Matches are shorter than the overlap, so a
//! match reported by a window lies wholly inside it.

use std::io::{self, Read};

use crate::matcher::{Matcher, OVERLAP};
use crate::tokens::{CONTEXT, Match};

/// Bytes read per window, beyond the overlap.
const WINDOW: usize = 1 << 20;
/// How much of the start of an input is checked for NUL bytes, as git and ripgrep do.
const BINARY_PROBE: usize = 8 << 10;

/// A match placed in its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub(crate) rule: usize,
    pub(crate) value: Vec<u8>,
    pub(crate) line: u64,
    pub(crate) column: u64,
    /// Whether the value was decoded from the base64 blob at `line` and `column`.
    pub(crate) decoded: bool,
    /// Identical matches after this one that were counted, not kept.
    pub(crate) repeats: u64,
}

impl Located {
    /// `m`, found in `data`, placed at `line` and `column`.
    fn new(m: &Match, data: &[u8], line: u64, column: u64) -> Self {
        Located {
            rule: m.rule,
            value: m
                .decoded
                .as_deref()
                .unwrap_or(&data[m.start..m.end])
                .to_vec(),
            line,
            column,
            decoded: m.decoded.is_some(),
            repeats: 0,
        }
    }
}

/// What scanning one input did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scanned {
    /// The input was searched; this many bytes.
    Bytes(u64),
    /// The input looked binary and was skipped.
    Binary,
}

/// A reusable window buffer, one per thread.
pub(crate) struct Window {
    data: Box<[u8]>,
    matches: Vec<Match>,
}

impl Window {
    pub(crate) fn new() -> Self {
        Self::with_reach(WINDOW)
    }

    /// A window that reports `reach` bytes per step; it must exceed [`CONTEXT`], which each
    /// step keeps, or a step would read nothing new.
    fn with_reach(reach: usize) -> Self {
        assert!(reach > CONTEXT);
        Window {
            data: vec![0; reach + OVERLAP].into_boxed_slice(),
            matches: Vec::new(),
        }
    }
}

/// Whether the start of an input looks binary.
pub(crate) fn looks_binary(start: &[u8]) -> bool {
    memchr::memchr(0, &start[..start.len().min(BINARY_PROBE)]).is_some()
}

/// Counts lines lazily: only up to where a match is, or where a window is dropped.
struct LineCursor {
    /// Index in the current window up to which lines are counted.
    pos: usize,
    /// Line number at `pos`.
    line: u64,
    /// Absolute offset of the start of that line.
    line_start: u64,
}

impl LineCursor {
    fn advance(&mut self, window: &[u8], base: u64, to: usize) {
        let segment = &window[self.pos..to];
        let newlines = memchr::memchr_iter(b'\n', segment).count();
        if newlines > 0 {
            self.line += newlines as u64;
            let last = memchr::memrchr(b'\n', segment).expect("a newline was counted");
            self.line_start = base + (self.pos + last + 1) as u64;
        }
        self.pos = to;
    }
}

/// Scans `reader` window by window, calling `emit` for each match in input order. UTF-16
/// text is decoded first (see [`utf16_order`]).
pub(crate) fn scan_reader(
    matcher: &Matcher,
    mut reader: impl Read,
    window: &mut Window,
    scan_binary: bool,
    mut emit: impl FnMut(Located),
) -> io::Result<Scanned> {
    scan_windows(matcher, &mut reader, window, scan_binary, &mut emit, true)
}

/// [`scan_reader`] without generics, so that it can call itself on a decoded stream.
fn scan_windows(
    matcher: &Matcher,
    reader: &mut dyn Read,
    window: &mut Window,
    scan_binary: bool,
    emit: &mut dyn FnMut(Located),
    may_decode: bool,
) -> io::Result<Scanned> {
    let mut len = 0;
    let mut base = 0u64;
    let mut report_from = 0;
    let mut cursor = LineCursor {
        pos: 0,
        line: 1,
        line_start: 0,
    };
    let mut first = true;
    loop {
        let eof = fill(reader, &mut window.data, &mut len)?;
        let data = &window.data[..len];
        if first {
            first = false;
            if let Some(order) = utf16_order(data).filter(|_| may_decode) {
                let head = std::io::Cursor::new(data.to_vec());
                let mut decoded = Utf16Decoder::new(head.chain(reader), order);
                return scan_windows(matcher, &mut decoded, window, true, emit, false);
            }
            if !scan_binary && looks_binary(data) {
                return Ok(Scanned::Binary);
            }
        }
        let report_to = if eof { len } else { len - OVERLAP };
        window.matches.clear();
        matcher.find(data, report_from, report_to, &mut window.matches);
        window.matches.sort_unstable_by_key(|m| (m.start, m.rule));
        for m in &window.matches {
            cursor.advance(data, base, m.start);
            let column = base + m.start as u64 - cursor.line_start + 1;
            emit(Located::new(m, data, cursor.line, column));
        }
        if eof {
            return Ok(Scanned::Bytes(base + len as u64));
        }
        // Keep the overlap and the context before it, and count the lines of what is dropped.
        let keep_from = report_to - CONTEXT;
        if cursor.pos < keep_from {
            cursor.advance(data, base, keep_from);
        }
        window.data.copy_within(keep_from..len, 0);
        len -= keep_from;
        base += keep_from as u64;
        cursor.pos -= keep_from;
        report_from = CONTEXT;
    }
}

/// The byte order of UTF-16 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteOrder {
    Little,
    Big,
}

/// Whether the start of an input is UTF-16 text, as Windows tools write `.env` files and logs:
/// a byte-order mark followed by text with NUL bytes (which UTF-8 and Latin-1 text never
/// holds), or ASCII text with every other byte NUL.
pub(crate) fn utf16_order(start: &[u8]) -> Option<ByteOrder> {
    let probe = &start[..start.len().min(BINARY_PROBE) & !1];
    let has_nul = memchr::memchr(0, probe).is_some();
    match start {
        [0xff, 0xfe, ..] if has_nul => return Some(ByteOrder::Little),
        [0xfe, 0xff, ..] if has_nul => return Some(ByteOrder::Big),
        _ if !has_nul => return None,
        _ => {}
    }
    let units = probe.len() / 2;
    if units < 4 {
        return None;
    }
    let is_text = |b: u8| matches!(b, b'\t' | b'\n' | b'\r' | 0x20..=0x7e);
    let count = |order: ByteOrder| {
        probe
            .chunks_exact(2)
            .filter(|pair| match order {
                ByteOrder::Little => pair[1] == 0 && is_text(pair[0]),
                ByteOrder::Big => pair[0] == 0 && is_text(pair[1]),
            })
            .count()
    };
    // Nearly all units ASCII: a binary file with NULs rarely looks like this.
    [ByteOrder::Little, ByteOrder::Big]
        .into_iter()
        .find(|&order| count(order) * 20 >= units * 19)
}

/// Decodes UTF-16 into UTF-8 as it is read; unpaired surrogates become U+FFFD, and a leading
/// byte-order mark is dropped.
pub(crate) struct Utf16Decoder<R> {
    inner: R,
    order: ByteOrder,
    raw: Vec<u8>,
    /// Raw bytes read but not yet decoded (an odd byte at the end of a read).
    carry: Option<u8>,
    high_surrogate: Option<u16>,
    decoded: Vec<u8>,
    /// How much of `decoded` was handed out.
    handed: usize,
    at_start: bool,
    done: bool,
}

impl<R: Read> Utf16Decoder<R> {
    pub(crate) fn new(inner: R, order: ByteOrder) -> Self {
        Utf16Decoder {
            inner,
            order,
            raw: vec![0; 64 << 10],
            carry: None,
            high_surrogate: None,
            decoded: Vec::new(),
            handed: 0,
            at_start: true,
            done: false,
        }
    }

    fn push_char(&mut self, c: char) {
        let mut utf8 = [0; 4];
        self.decoded
            .extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }

    fn push_unit(&mut self, unit: u16) {
        if std::mem::take(&mut self.at_start) && unit == 0xfeff {
            return;
        }
        match unit {
            0xd800..=0xdbff => {
                if self.high_surrogate.replace(unit).is_some() {
                    self.push_char(char::REPLACEMENT_CHARACTER);
                }
            }
            0xdc00..=0xdfff => {
                let c = self
                    .high_surrogate
                    .take()
                    .map_or(char::REPLACEMENT_CHARACTER, |high| {
                        let code = 0x10000
                            + ((u32::from(high) - 0xd800) << 10)
                            + (u32::from(unit) - 0xdc00);
                        char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
                    });
                self.push_char(c);
            }
            _ => {
                if self.high_surrogate.take().is_some() {
                    self.push_char(char::REPLACEMENT_CHARACTER);
                }
                let c = char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER);
                self.push_char(c);
            }
        }
    }

    /// Reads and decodes the next chunk; false at the end of the input.
    fn refill(&mut self) -> io::Result<bool> {
        self.decoded.clear();
        self.handed = 0;
        if self.done {
            return Ok(false);
        }
        let start = usize::from(self.carry.is_some());
        if let Some(byte) = self.carry.take() {
            self.raw[0] = byte;
        }
        let read = loop {
            match self.inner.read(&mut self.raw[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if read == 0 {
            self.done = true;
            if self.high_surrogate.take().is_some() || start == 1 {
                self.push_char(char::REPLACEMENT_CHARACTER);
            }
            return Ok(!self.decoded.is_empty());
        }
        let end = start + read;
        let whole = end & !1;
        if whole < end {
            self.carry = Some(self.raw[whole]);
        }
        for i in (0..whole).step_by(2) {
            let pair = [self.raw[i], self.raw[i + 1]];
            let unit = match self.order {
                ByteOrder::Little => u16::from_le_bytes(pair),
                ByteOrder::Big => u16::from_be_bytes(pair),
            };
            self.push_unit(unit);
        }
        Ok(true)
    }
}

impl<R: Read> Read for Utf16Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.handed == self.decoded.len() {
            if !self.refill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.decoded.len() - self.handed);
        buf[..n].copy_from_slice(&self.decoded[self.handed..self.handed + n]);
        self.handed += n;
        Ok(n)
    }
}

/// Scans a whole input held in memory (a git blob).
#[cfg(any(feature = "git", test))]
pub(crate) fn scan_slice(
    matcher: &Matcher,
    data: &[u8],
    matches: &mut Vec<Match>,
    scan_binary: bool,
    emit: impl FnMut(Located),
) -> Scanned {
    if let Some(order) = utf16_order(data) {
        let mut decoded = Vec::with_capacity(data.len());
        Utf16Decoder::new(data, order)
            .read_to_end(&mut decoded)
            .expect("reading from memory cannot fail");
        return scan_decoded(matcher, &decoded, matches, emit);
    }
    if !scan_binary && looks_binary(data) {
        return Scanned::Binary;
    }
    scan_decoded(matcher, data, matches, emit)
}

/// Scans text held in memory.
#[cfg(any(feature = "git", test))]
fn scan_decoded(
    matcher: &Matcher,
    data: &[u8],
    matches: &mut Vec<Match>,
    mut emit: impl FnMut(Located),
) -> Scanned {
    matches.clear();
    matcher.find(data, 0, data.len(), matches);
    matches.sort_unstable_by_key(|m| (m.start, m.rule));
    let mut cursor = LineCursor {
        pos: 0,
        line: 1,
        line_start: 0,
    };
    for m in matches.iter() {
        cursor.advance(data, 0, m.start);
        let column = m.start as u64 - cursor.line_start + 1;
        emit(Located::new(m, data, cursor.line, column));
    }
    Scanned::Bytes(data.len() as u64)
}

/// Reads until the buffer is full or the input ends; returns whether it ended.
fn fill(reader: &mut dyn Read, buffer: &mut [u8], len: &mut usize) -> io::Result<bool> {
    while *len < buffer.len() {
        match reader.read(&mut buffer[*len..]) {
            Ok(0) => return Ok(true),
            Ok(n) => *len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hogguard_testkit::keys::{self, Era, Prefix};
    use proptest::prelude::*;

    use crate::rules::builtin;

    /// Hands out at most `chunk` bytes per read, as pipes and slow disks do.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.data.len().min(self.chunk).min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Every kind and era the scanner must know, as (prefix, era, rule).
    fn shapes() -> Vec<(Option<Prefix>, Era, usize)> {
        let mut shapes = Vec::new();
        for prefix in Prefix::ALL {
            let rule = crate::matcher::tests_support::rule_of(prefix);
            shapes.push((Some(prefix), Era::Current, rule));
            shapes.push((Some(prefix), Era::Base62 { bytes: 32 }, rule));
            if matches!(prefix, Prefix::Personal | Prefix::Secret) {
                shapes.push((Some(prefix), Era::Base62 { bytes: 35 }, rule));
            }
        }
        shapes.push((None, Era::Current, builtin::LEGACY_PERSONAL_API_KEY));
        shapes.push((None, Era::Base62 { bytes: 0 }, builtin::WEBHOOK_SECRET));
        shapes
    }

    /// The text to embed and the secret in it, made from `random` deterministically.
    fn embedded(shape: (Option<Prefix>, Era, usize), random: &[u8]) -> (String, String) {
        const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        match shape {
            (Some(prefix), era, _) => {
                let bytes = match era {
                    Era::Current => prefix.current_bytes(),
                    Era::Base62 { bytes } => bytes,
                };
                let token = format!(
                    "{}{}",
                    prefix.as_str(),
                    keys::body_from_bytes(era, &random[..bytes])
                );
                (token.clone(), token)
            }
            (None, Era::Current, _) => {
                let key: String = random[..43]
                    .iter()
                    .map(|&b| URL_SAFE[usize::from(b) % 64] as char)
                    .collect();
                (format!("POSTHOG_PERSONAL_API_KEY={key}"), key)
            }
            (None, _, _) => {
                let body: String = random[..43]
                    .iter()
                    .map(|&b| BASE64[usize::from(b) % 64] as char)
                    .collect();
                let secret = format!("whsec_{body}");
                (secret.clone(), secret)
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn an_embedded_key_is_found_once_across_window_boundaries(
            shape in 0..14usize,
            random in proptest::collection::vec(any::<u8>(), 43),
            filler in "[a-gA-G0-9 \n=:\"'.,;{}()-]{0,12000}",
            at in any::<prop::sample::Index>(),
            reach in 2 * CONTEXT..2 * CONTEXT + 700,
            chunk in 1..5000usize,
        ) {
            let shape = shapes()[shape];
            let (text, secret) = embedded(shape, &random);
            prop_assume!(shape.0.is_none() || secret.len() >= 45);
            let legacy_context_ok = shape.0.is_some() || crate::matcher::tests_support::is_legacy_key(secret.as_bytes());
            prop_assume!(legacy_context_ok && !crate::entropy::is_placeholder(secret.as_bytes()));
            let split = at.index(filler.len() + 1);
            let input = format!("{} {text}\n{}", &filler[..split], &filler[split..]);
            let secret_at = input.find(&secret).unwrap();
            let line = input[..secret_at].matches('\n').count() as u64 + 1;
            let column = (secret_at - input[..secret_at].rfind('\n').map_or(0, |i| i + 1)) as u64 + 1;
            let expected = vec![Located { rule: shape.2, value: secret.into_bytes(), line, column, decoded: false, repeats: 0 }];

            let matcher = Matcher::new(&[]).unwrap();
            let mut window = Window::with_reach(reach);
            let mut found = Vec::new();
            let reader = Trickle { data: input.as_bytes(), chunk };
            let scanned = scan_reader(&matcher, reader, &mut window, false, |m| found.push(m)).unwrap();
            prop_assert_eq!(scanned, Scanned::Bytes(input.len() as u64));
            prop_assert_eq!(&found, &expected);

            let mut whole = Vec::new();
            scan_slice(&matcher, input.as_bytes(), &mut Vec::new(), false, |m| whole.push(m));
            prop_assert_eq!(&whole, &expected);
        }
    }

    #[test]
    fn a_base64_blob_across_window_boundaries_is_decoded_once() {
        use base64::Engine;
        let matcher = Matcher::new(&[]).unwrap();
        let token = keys::current(Prefix::Personal);
        let blob = base64::engine::general_purpose::STANDARD.encode(format!("key: {token}\n"));
        let reach = 2 * CONTEXT + 300;
        // Blob starts on every side of the first window's last reported position.
        for start in reach - blob.len() - 3..reach + 3 {
            let filler = "abc de\n".repeat(start / 7) + &"x".repeat(start % 7);
            let input = format!("{filler}\n{blob}\n{}", "tail\n".repeat(5000));
            let mut found = Vec::new();
            let mut window = Window::with_reach(reach);
            let reader = Trickle {
                data: input.as_bytes(),
                chunk: 4096,
            };
            scan_reader(&matcher, reader, &mut window, false, |m| found.push(m)).unwrap();
            let line = filler.matches('\n').count() as u64 + 2;
            let expected = Located {
                rule: builtin::PERSONAL_API_KEY,
                value: token.clone().into_bytes(),
                line,
                column: 1,
                decoded: true,
                repeats: 0,
            };
            assert_eq!(found, vec![expected], "{start}");
        }
    }

    #[test]
    fn binary_inputs_are_skipped_unless_asked() {
        let matcher = Matcher::new(&[]).unwrap();
        let token = keys::current(Prefix::Personal);
        let input = format!("\0\0ELF {token}\n");
        let mut found = Vec::new();
        let scanned = scan_reader(&matcher, input.as_bytes(), &mut Window::new(), false, |m| {
            found.push(m)
        })
        .unwrap();
        assert_eq!((scanned, found.len()), (Scanned::Binary, 0));
        let scanned = scan_reader(&matcher, input.as_bytes(), &mut Window::new(), true, |m| {
            found.push(m)
        })
        .unwrap();
        assert_eq!(
            (scanned, found.len()),
            (Scanned::Bytes(input.len() as u64), 1)
        );
    }

    #[test]
    fn a_line_longer_than_any_window_is_scanned_in_bounded_memory() {
        let matcher = Matcher::new(&[]).unwrap();
        let tokens: Vec<String> = (0..5).map(|_| keys::current(Prefix::Secret)).collect();
        let filler = "x".repeat(3 * CONTEXT + 17);
        let input: String = tokens.iter().map(|t| format!("{filler} {t} ")).collect();
        let mut window = Window::with_reach(2 * CONTEXT);
        let mut found = Vec::new();
        scan_reader(&matcher, input.as_bytes(), &mut window, false, |m| {
            found.push(m)
        })
        .unwrap();
        let values: Vec<_> = found
            .iter()
            .map(|m| String::from_utf8(m.value.clone()).unwrap())
            .collect();
        assert_eq!(values, tokens);
        assert!(found.iter().all(|m| m.line == 1));
        assert_eq!(
            found[1].column,
            (filler.len() + 1 + tokens[0].len() + 1 + filler.len() + 1 + 1) as u64
        );
    }
}
