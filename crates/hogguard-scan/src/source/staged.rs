//! The git index: what the next commit would hold, read from the staged blobs rather than
//! the working tree (which may differ).
//!
//! Only entries whose staged blob differs from `HEAD` are scanned. Index entries are sorted by
//! path bytes; so are `HEAD`'s blobs once listed, and one merge of the two finds the changes.

use std::path::Path;

use gix::ObjectId;
use gix::bstr::{BString, ByteSlice};

use crate::matcher::Match;
use crate::stream;
use crate::{Error, Origin, ScanOutcome, Scanner, Warning};

pub(crate) fn scan(scanner: &Scanner, path: &Path) -> Result<ScanOutcome, Error> {
    let repo = gix::discover(path).map_err(|e| Error::git(path, format!("not a git repository ({e})")))?;
    let index = repo
        .index_or_empty()
        .map_err(|e| Error::git(path, format!("the index could not be read ({e})")))?;
    let head = match repo.head_tree_id() {
        Ok(id) => head_blobs(&repo, id.detach()).map_err(|e| Error::git(path, e))?,
        // No commit yet: everything staged is new.
        Err(_) => Vec::new(),
    };

    let mut outcome = ScanOutcome::default();
    let mut matches: Vec<Match> = Vec::new();
    let mut head_entries = head.iter().peekable();
    for entry in index.entries() {
        if entry.mode.is_submodule() {
            continue;
        }
        let entry_path = entry.path(&index);
        while head_entries.next_if(|(p, _)| p.as_bstr() < entry_path).is_some() {}
        if head_entries.peek().is_some_and(|(p, id)| p.as_bstr() == entry_path && *id == entry.id) {
            continue;
        }
        let shown = entry_path.to_str_lossy().into_owned();
        let blob = match repo.find_object(entry.id) {
            Ok(blob) => blob,
            Err(e) => {
                outcome.warnings.push(Warning { path: shown, message: format!("staged blob could not be read: {e}") });
                continue;
            }
        };
        let origin = Origin { path: shown, blob: Some(entry.id.to_string()) };
        let findings = &mut outcome.findings;
        let scanned = stream::scan_slice(&scanner.matcher, &blob.data, &mut matches, scanner.options.scan_binary, |m| {
            findings.push(scanner.finding(&origin, m));
        });
        scanner.count(&mut outcome, scanned);
    }
    Ok(outcome)
}

/// Every non-tree entry of the tree `root` with its id, sorted by path bytes as the index is.
fn head_blobs(repo: &gix::Repository, root: ObjectId) -> Result<Vec<(BString, ObjectId)>, String> {
    let hash_kind = repo.object_hash();
    let mut blobs = Vec::new();
    let mut stack = vec![(root, BString::default())];
    while let Some((tree_id, prefix)) = stack.pop() {
        let tree = repo.find_object(tree_id).map_err(|e| format!("tree {tree_id} could not be read ({e})"))?;
        for entry in gix::objs::TreeRefIter::from_bytes(&tree.data, hash_kind) {
            let entry = entry.map_err(|e| format!("tree {tree_id} is corrupt ({e})"))?;
            let mut path = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(entry.filename);
            if entry.mode.is_tree() {
                stack.push((entry.oid.to_owned(), path));
            } else {
                blobs.push((path, entry.oid.to_owned()));
            }
        }
    }
    blobs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(blobs)
}
