//! The git index: what the next commit would hold, read from the staged blobs rather than
//! the working tree (which may differ).
//!
//! Only entries whose staged blob differs from `HEAD` are scanned. The index's tree cache
//! finds them by reading only the trees along changed paths; without one, the sorted index is
//! merged with every blob of `HEAD`.

use std::path::Path;

use gix::ObjectId;
use gix::bstr::{BString, ByteSlice};

use crate::stream;
use crate::tokens::Match;
use crate::{Error, Origin, RepeatLimiter, ScanOutcome, Scanner, Warning};

/// Which index entries to scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entries {
    /// Those whose staged blob differs from `HEAD`: what the next commit changes.
    Staged,
    /// All of them: every tracked file as the index holds it.
    Tracked,
}

pub(crate) fn scan(scanner: &Scanner, path: &Path, which: Entries) -> Result<ScanOutcome, Error> {
    let repo = gix::discover(path).map_err(|source| Error::NotARepository {
        path: path.to_owned(),
        source: Box::new(source),
    })?;
    let index = repo
        .index_or_empty()
        .map_err(|e| Error::git(path, "read the index", e))?;
    let changed = match (which, repo.head_tree_id().ok(), index.tree()) {
        (Entries::Staged, Some(head), Some(cache)) => {
            changed_by_cache_tree(&repo, &index, cache, head.detach())
        }
        (Entries::Staged, Some(head), None) => changed_by_merge(&repo, &index, head.detach()),
        // Every entry, or no commit yet, so everything staged is new.
        (Entries::Tracked, ..) | (Entries::Staged, None, _) => {
            Ok((0..index.entries().len()).collect())
        }
    }?;

    let mut outcome = ScanOutcome::default();
    let mut matches: Vec<Match> = Vec::new();
    for position in changed {
        let entry = &index.entries()[position];
        if entry.mode.is_submodule() {
            continue;
        }
        let shown = entry.path(&index).to_str_lossy().into_owned();
        let blob = match repo.find_object(entry.id) {
            Ok(blob) => blob,
            Err(e) => {
                outcome
                    .warnings
                    .push(Warning::unread(shown, "staged blob could not be read").because(e));
                continue;
            }
        };
        let origin = Origin {
            path: shown,
            blob: Some(entry.id.to_string()),
        };
        let findings = &mut outcome.findings;
        let mut limiter = RepeatLimiter::default();
        let scanned = stream::scan_slice(
            &scanner.matcher,
            &blob.data,
            &mut matches,
            scanner.options.scan_binary,
            |m| limiter.record(findings, m, |m| scanner.finding(&origin, m)),
        );
        scanner.count(&mut outcome, scanned);
    }
    Ok(outcome)
}

/// Above this many entries left to compare, one merge with all of `HEAD` beats looking each up.
const MAX_LOOKUPS: usize = 512;

/// Positions of index entries that differ from `HEAD`, using the index's cache of tree ids:
/// a directory whose cached id is valid and equals `HEAD`'s is unchanged as a whole, so after
/// `git add` of one file only the trees along its path are read.
fn changed_by_cache_tree(
    repo: &gix::Repository,
    index: &gix::index::File,
    cache: &gix::index::extension::Tree,
    head: ObjectId,
) -> Result<Vec<usize>, Error> {
    let hash_kind = repo.object_hash();
    let entries = index.entries();
    let mut unchanged = vec![false; entries.len()];
    let mut stack = vec![(cache, Some(head), BString::default())];
    while let Some((node, head_id, dir)) = stack.pop() {
        if node.num_entries.is_some() && head_id == Some(node.id) {
            mark_directory(index, &dir, &mut unchanged);
            continue;
        }
        let mut head_subtrees = Vec::new();
        if let Some(id) = head_id {
            let tree = repo
                .find_object(id)
                .map_err(|e| Error::git(repo.git_dir(), format!("read tree {id}"), e))?;
            for entry in gix::objs::TreeRefIter::from_bytes(&tree.data, hash_kind) {
                let entry =
                    entry.map_err(|e| Error::git(repo.git_dir(), format!("parse tree {id}"), e))?;
                if entry.mode.is_tree() {
                    head_subtrees
                        .push((BString::from(entry.filename.to_vec()), entry.oid.to_owned()));
                }
            }
        }
        for child in &node.children {
            let name = child.name.as_bstr();
            let head_child = head_subtrees
                .iter()
                .find(|(n, _)| n.as_bstr() == name)
                .map(|(_, id)| *id);
            let mut path = dir.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name);
            stack.push((child, head_child, path));
        }
    }
    let candidates: Vec<usize> = (0..entries.len()).filter(|&i| !unchanged[i]).collect();
    if candidates.len() > MAX_LOOKUPS {
        return changed_by_merge(repo, index, head);
    }
    let head_tree = repo
        .find_tree(head)
        .map_err(|e| Error::git(repo.git_dir(), format!("read tree {head}"), e))?;
    let mut changed = Vec::new();
    for position in candidates {
        let entry = &entries[position];
        let path = gix::path::from_bstr(entry.path(index))
            .map_err(|e| Error::git(repo.git_dir(), "read a path of the index", e))?;
        let in_head = head_tree.lookup_entry_by_path(&*path).map_err(|e| {
            Error::git(
                repo.git_dir(),
                format!("look {} up in HEAD", path.display()),
                e,
            )
        })?;
        if in_head.is_none_or(|found| found.object_id() != entry.id) {
            changed.push(position);
        }
    }
    Ok(changed)
}

/// Marks the entries under `dir` (all of them for the root), which are contiguous because the
/// index is sorted by path bytes and `/` sorts right before `0`.
fn mark_directory(index: &gix::index::File, dir: &BString, unchanged: &mut [bool]) {
    let entries = index.entries();
    let (start, end) = if dir.is_empty() {
        (0, entries.len())
    } else {
        let mut low = dir.clone();
        low.push(b'/');
        let mut high = dir.clone();
        high.push(b'/' + 1);
        (
            entries.partition_point(|e| e.path(index) < low.as_bstr()),
            entries.partition_point(|e| e.path(index) < high.as_bstr()),
        )
    };
    unchanged[start..end].iter_mut().for_each(|u| *u = true);
}

/// Positions of index entries that differ from `HEAD`, by one merge of the sorted index with
/// every blob of `HEAD`: for indexes without a usable tree cache.
fn changed_by_merge(
    repo: &gix::Repository,
    index: &gix::index::File,
    head: ObjectId,
) -> Result<Vec<usize>, Error> {
    let head = head_blobs(repo, head)?;
    let mut head_entries = head.iter().peekable();
    let mut changed = Vec::new();
    for (position, entry) in index.entries().iter().enumerate() {
        let entry_path = entry.path(index);
        while head_entries
            .next_if(|(p, _)| p.as_bstr() < entry_path)
            .is_some()
        {}
        if !head_entries
            .peek()
            .is_some_and(|(p, id)| p.as_bstr() == entry_path && *id == entry.id)
        {
            changed.push(position);
        }
    }
    Ok(changed)
}

/// Every non-tree entry of the tree `root` with its id, sorted by path bytes as the index is.
fn head_blobs(repo: &gix::Repository, root: ObjectId) -> Result<Vec<(BString, ObjectId)>, Error> {
    let hash_kind = repo.object_hash();
    let mut blobs = Vec::new();
    let mut stack = vec![(root, BString::default())];
    while let Some((tree_id, prefix)) = stack.pop() {
        let tree = repo
            .find_object(tree_id)
            .map_err(|e| Error::git(repo.git_dir(), format!("read tree {tree_id}"), e))?;
        for entry in gix::objs::TreeRefIter::from_bytes(&tree.data, hash_kind) {
            let entry = entry
                .map_err(|e| Error::git(repo.git_dir(), format!("parse tree {tree_id}"), e))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use hogguard_testkit::git::TempRepo;

    #[test]
    fn tree_cache_and_full_merge_agree() {
        let repo = TempRepo::new();
        for dir in ["a", "a/b", "a.b", "a-b", "c"] {
            repo.write(&format!("{dir}/one.txt"), "1\n");
            repo.write(&format!("{dir}/two.txt"), "2\n");
        }
        repo.commit_all("base", "2024-01-01T00:00:00+00:00");
        repo.write("a/b/two.txt", "changed\n");
        repo.write("a.b/new.txt", "new\n");
        repo.write("c/one.txt", "changed too\n");
        repo.git(&["add", "a/b/two.txt", "a.b/new.txt"]);

        let git = gix::open(repo.path()).unwrap();
        let index = git.index_or_empty().unwrap();
        let head = git.head_tree_id().unwrap().detach();
        let cache = index.tree().expect("git add keeps a tree cache");
        let by_cache = changed_by_cache_tree(&git, &index, cache, head).unwrap();
        let by_merge = changed_by_merge(&git, &index, head).unwrap();
        let paths: Vec<_> = by_cache
            .iter()
            .map(|&i| index.entries()[i].path(&index).to_string())
            .collect();
        assert_eq!(paths, vec!["a.b/new.txt", "a/b/two.txt"]);
        assert_eq!(by_cache, by_merge);
    }
}
