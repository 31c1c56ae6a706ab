//! Reading the log's files: the log must be a regular file, and it is read a bounded line at
//! a time, so that a device (`/dev/zero`), a FIFO or a line longer than any entry cannot make
//! a reader wait forever or hold more than one line in memory.

use std::io::{self, BufRead, Read as _};

use crate::format::{MAX_LINE_BYTES, claimed_seq};

/// The largest checkpoint or outbox file read: each is one line of a few hundred bytes.
pub(crate) const MAX_SIDECAR_BYTES: u64 = 64 * 1024;

/// Reads the next line of `reader` into `line` (emptied first), its newline included, and
/// returns how many bytes were read (0 at the end). At most one byte more than the longest
/// entry is read: a line without its newline is the last one, cut short, or longer than any
/// entry can be (`line.len() > MAX_LINE_BYTES`).
pub(crate) fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<usize> {
    line.clear();
    reader
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', line)
}

/// Whether a line left in `reader` claims to be entry `seq`; lines longer than any entry
/// are skipped unread.
pub(crate) fn seq_appears(reader: &mut impl BufRead, seq: u64) -> io::Result<bool> {
    let mut line = Vec::new();
    while read_line(reader, &mut line)? > 0 {
        if line.last() != Some(&b'\n') && line.len() > MAX_LINE_BYTES {
            reader.skip_until(b'\n')?;
            continue;
        }
        if claimed_seq(line.strip_suffix(b"\n").unwrap_or(&line)) == Some(seq) {
            return Ok(true);
        }
    }
    Ok(false)
}
