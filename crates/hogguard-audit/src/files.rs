//! Reading the log's files: the log must be a regular file, and it is read a bounded line at
//! a time, so that a device (`/dev/zero`), a FIFO or a line longer than any entry cannot make
//! a reader wait forever or hold more than one line in memory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read as _};
use std::path::Path;

use crate::format::{MAX_LINE_BYTES, claimed_seq};

/// The largest checkpoint or outbox file read: each is one line of a few hundred bytes.
pub(crate) const MAX_SIDECAR_BYTES: u64 = 64 * 1024;

/// Opens `path` with `options`, refusing anything but a regular file (a symbolic link to one
/// is followed). The path is looked at before it is opened, because opening a FIFO waits for
/// a writer, and the opened file again, in case it was replaced in between.
// TODO(hogguard-fs): a stand-in until hogguard-fs opens regular files for streaming, as its
// `read_regular` does for files read whole.
pub(crate) fn open_regular(path: &Path, options: &OpenOptions) -> Result<File, hogguard_fs::Error> {
    let failed = |action| {
        move |source| hogguard_fs::Error::Io {
            action,
            path: path.to_owned(),
            source,
        }
    };
    let not_regular = || hogguard_fs::Error::NotRegularFile {
        path: path.to_owned(),
    };
    if !fs::metadata(path).map_err(failed("open"))?.is_file() {
        return Err(not_regular());
    }
    let file = options.open(path).map_err(failed("open"))?;
    if !file.metadata().map_err(failed("read"))?.is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

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
