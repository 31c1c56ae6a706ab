//! Scans a stream in fixed windows that overlap, so memory stays bounded on multi-gigabyte
//! files and single-line files, while every match is reported exactly once.
//!
//! Each window reports only matches that start in its middle part: bytes it shares with the
//! previous window were reported there, and the last [`OVERLAP`] bytes are reported by the
//! next window, which also sees what follows them. Matches are shorter than the overlap, so a
//! match reported by a window lies wholly inside it.

use std::io::{self, Read};

use crate::matcher::{CONTEXT, Match, Matcher, OVERLAP};

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
        Window { data: vec![0; WINDOW + OVERLAP].into_boxed_slice(), matches: Vec::new() }
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

/// Scans `reader` window by window, calling `emit` for each match in input order.
pub(crate) fn scan_reader(
    matcher: &Matcher,
    mut reader: impl Read,
    window: &mut Window,
    scan_binary: bool,
    mut emit: impl FnMut(Located),
) -> io::Result<Scanned> {
    let mut len = 0;
    let mut base = 0u64;
    let mut report_from = 0;
    let mut cursor = LineCursor { pos: 0, line: 1, line_start: 0 };
    let mut first = true;
    loop {
        let eof = fill(&mut reader, &mut window.data, &mut len)?;
        let data = &window.data[..len];
        if first {
            first = false;
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
            emit(Located {
                rule: m.rule,
                value: data[m.start..m.end].to_vec(),
                line: cursor.line,
                column: base + m.start as u64 - cursor.line_start + 1,
            });
        }
        if eof {
            return Ok(Scanned::Bytes(base + len as u64));
        }
        // Keep the overlap and the context before it, and count the lines of what is dropped.
        let keep_from = report_to - CONTEXT;
        cursor.advance(data, base, keep_from);
        window.data.copy_within(keep_from..len, 0);
        len -= keep_from;
        base += keep_from as u64;
        cursor.pos = 0;
        report_from = CONTEXT;
    }
}

/// Scans a whole input held in memory (a git blob).
pub(crate) fn scan_slice(
    matcher: &Matcher,
    data: &[u8],
    matches: &mut Vec<Match>,
    scan_binary: bool,
    mut emit: impl FnMut(Located),
) -> Scanned {
    if !scan_binary && looks_binary(data) {
        return Scanned::Binary;
    }
    matches.clear();
    matcher.find(data, 0, data.len(), matches);
    matches.sort_unstable_by_key(|m| (m.start, m.rule));
    let mut cursor = LineCursor { pos: 0, line: 1, line_start: 0 };
    for m in matches.iter() {
        cursor.advance(data, 0, m.start);
        emit(Located {
            rule: m.rule,
            value: data[m.start..m.end].to_vec(),
            line: cursor.line,
            column: m.start as u64 - cursor.line_start + 1,
        });
    }
    Scanned::Bytes(data.len() as u64)
}

/// Reads until the buffer is full or the input ends; returns whether it ended.
fn fill(reader: &mut impl Read, buffer: &mut [u8], len: &mut usize) -> io::Result<bool> {
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
