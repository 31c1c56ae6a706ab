//! A repository's whole object store: every blob once, packed and loose, so that all refs,
//! reflogs, stashes and unreachable objects are covered.
//!
//! Packs are decoded in pack order with gitoxide's delta-tree traversal, which resolves each
//! delta base once instead of once per object that depends on it. Commits met on the way are
//! kept (id, tree, author), so findings can be attributed afterwards to the oldest commit whose
//! tree holds their blob; blobs that no commit holds are marked unreachable.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use gix::ObjectId;
use gix::objs::Kind;
use gix::odb::pack::index::traverse::{Algorithm, Options, SafetyCheck};

use crate::matcher::Match;
use crate::stream::{self, Located};
use crate::{Error, Finding, Origin, ScanOutcome, Scanner, Warning};

/// What provenance needs to know of a commit.
#[derive(Debug, Clone)]
struct CommitInfo {
    id: ObjectId,
    tree: ObjectId,
    /// Committer time, to find the oldest commit holding a blob.
    time: i64,
    author: String,
    date: Option<String>,
}

/// State shared by the traversal threads.
#[derive(Default)]
struct Shared {
    seen_blobs: Mutex<HashSet<ObjectId>>,
    found: Mutex<Vec<(ObjectId, Located)>>,
    commits: Mutex<Vec<CommitInfo>>,
    outcome: Mutex<ScanOutcome>,
}

impl Shared {
    fn warn(&self, path: String, message: String) {
        self.lock_outcome().warnings.push(Warning { path, message });
    }

    fn lock_outcome(&self) -> std::sync::MutexGuard<'_, ScanOutcome> {
        self.outcome
            .lock()
            .expect("no thread panics while holding the lock")
    }
}

/// Handles one decoded object; cloned into each traversal thread.
#[derive(Clone)]
struct ObjectHandler<'a> {
    scanner: &'a Scanner,
    shared: &'a Shared,
    hash_kind: gix::hash::Kind,
    matches: Vec<Match>,
}

impl ObjectHandler<'_> {
    fn handle(&mut self, kind: Kind, data: &[u8], id: ObjectId) {
        match kind {
            Kind::Blob => self.scan_blob(data, id),
            Kind::Commit => self.keep_commit(data, id),
            Kind::Tree | Kind::Tag => {}
        }
    }

    fn scan_blob(&mut self, data: &[u8], id: ObjectId) {
        let first_time = self
            .shared
            .seen_blobs
            .lock()
            .expect("no panics under the lock")
            .insert(id);
        if !first_time {
            return;
        }
        let mut found = Vec::new();
        let scanned = stream::scan_slice(
            &self.scanner.matcher,
            data,
            &mut self.matches,
            self.scanner.options.scan_binary,
            |m| found.push((id, m)),
        );
        if !found.is_empty() {
            self.shared
                .found
                .lock()
                .expect("no panics under the lock")
                .extend(found);
        }
        let mut outcome = self.shared.lock_outcome();
        self.scanner.count(&mut outcome, scanned);
    }

    fn keep_commit(&mut self, data: &[u8], id: ObjectId) {
        let Ok(commit) = gix::objs::CommitRef::from_bytes(data, self.hash_kind) else {
            self.shared
                .warn(id.to_string(), "commit could not be parsed".to_owned());
            return;
        };
        let (author, date) = match commit.author() {
            Ok(signature) => {
                let name = signature.name.to_string();
                let email = signature.email.to_string();
                let date = signature.time().ok().map(|t| rfc3339(t.seconds, t.offset));
                (format!("{} <{}>", name.trim(), email.trim()), date)
            }
            Err(_) => (String::new(), None),
        };
        let time = commit.time().map_or(0, |t| t.seconds);
        let info = CommitInfo {
            id,
            tree: commit.tree(),
            time,
            author,
            date,
        };
        self.shared
            .commits
            .lock()
            .expect("no panics under the lock")
            .push(info);
    }
}

pub(crate) fn scan(scanner: &Scanner, path: &Path) -> Result<ScanOutcome, Error> {
    let repo =
        gix::discover(path).map_err(|e| Error::git(path, format!("not a git repository ({e})")))?;
    let objects = repo.common_dir().join("objects");
    let hash_kind = repo.object_hash();
    let shared = Shared::default();
    let handler = ObjectHandler {
        scanner,
        shared: &shared,
        hash_kind,
        matches: Vec::new(),
    };

    for index_path in pack_indexes(&objects)? {
        if scanner.progress.interrupted.load(Ordering::Relaxed) {
            break;
        }
        let shown = index_path.display().to_string();
        let bundle = match gix::odb::pack::Bundle::at(&index_path, hash_kind) {
            Ok(bundle) => bundle,
            Err(e) => {
                shared.warn(shown, format!("pack could not be opened: {e}"));
                continue;
            }
        };
        let mut handler = handler.clone();
        let traversed = bundle.index.traverse(
            &bundle.pack,
            &mut gix::progress::Discard,
            &scanner.progress.interrupted,
            move |kind, data, entry, _progress| {
                handler.handle(kind, data, entry.oid);
                Ok(())
            },
            Options {
                traversal: Algorithm::DeltaTreeLookup,
                thread_limit: Some(scanner.threads()),
                // Object ids come from the index; rehashing every object would double the
                // work, and a damaged object should cost a warning, not the whole scan.
                check: SafetyCheck::SkipFileAndObjectChecksumVerificationAndNoAbortOnDecodeError,
                alloc_limit_bytes: None,
                make_pack_lookup_cache: || gix::odb::pack::cache::Never,
            },
        );
        if let Err(e) = traversed {
            shared.warn(shown, format!("pack could not be read completely: {e:#}"));
        }
    }

    scan_loose(&objects, hash_kind, handler, &shared);

    let Shared {
        found,
        commits,
        outcome,
        ..
    } = shared;
    let mut outcome = outcome.into_inner().expect("no thread panicked");
    let found = found.into_inner().expect("no thread panicked");
    if found.is_empty() {
        return Ok(outcome);
    }
    let mut commits = commits.into_inner().expect("no thread panicked");
    commits.sort_by_key(|c| (c.time, c.id));
    commits.dedup_by_key(|c| c.id);
    let targets: HashSet<ObjectId> = found.iter().map(|(id, _)| *id).collect();
    let introduced = first_introductions(&repo, &commits, &targets, &mut outcome.warnings);
    outcome.findings = attribute(scanner, found, &commits, &introduced);
    Ok(outcome)
}

/// The `.idx` files of the object store's packs, in a stable order.
fn pack_indexes(objects: &Path) -> Result<Vec<std::path::PathBuf>, Error> {
    let pack_dir = objects.join("pack");
    let entries = match std::fs::read_dir(&pack_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                path: pack_dir,
                source,
            });
        }
    };
    let mut indexes: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "idx"))
        .collect();
    indexes.sort();
    Ok(indexes)
}

/// Loose objects, read one by one; a corrupt one costs a warning.
fn scan_loose(
    objects: &Path,
    hash_kind: gix::hash::Kind,
    mut handler: ObjectHandler<'_>,
    shared: &Shared,
) {
    let store = gix::odb::loose::Store::at(objects, hash_kind);
    let mut buffer = Vec::new();
    for id in store.iter() {
        if handler.scanner.progress.interrupted.load(Ordering::Relaxed) {
            return;
        }
        let id = match id {
            Ok(id) => id,
            Err(e) => {
                shared.warn(
                    objects.display().to_string(),
                    format!("loose object store: {e}"),
                );
                continue;
            }
        };
        match store.try_find(&id, &mut buffer) {
            Ok(Some(object)) => {
                let kind = object.kind;
                handler.handle(kind, object.data, id);
            }
            Ok(None) => {}
            Err(e) => shared.warn(id.to_string(), format!("corrupt loose object: {e}")),
        }
    }
}

/// Where a blob first appeared: the index of the commit in time order and the path.
type Introductions = HashMap<ObjectId, (usize, String)>;

/// For each target blob, the oldest commit whose tree holds it and its path there. Each tree
/// is read once: a tree seen in an older commit has already given its blobs their oldest commit.
fn first_introductions(
    repo: &gix::Repository,
    commits: &[CommitInfo],
    targets: &HashSet<ObjectId>,
    warnings: &mut Vec<Warning>,
) -> Introductions {
    let mut introduced = Introductions::new();
    let mut visited_trees = HashSet::new();
    let hash_kind = repo.object_hash();
    'commits: for (index, commit) in commits.iter().enumerate() {
        let mut stack = vec![(commit.tree, String::new())];
        while let Some((tree_id, prefix)) = stack.pop() {
            if !visited_trees.insert(tree_id) {
                continue;
            }
            let tree = match repo.find_object(tree_id) {
                Ok(tree) => tree,
                Err(e) => {
                    warnings.push(Warning {
                        path: tree_id.to_string(),
                        message: format!("tree could not be read: {e}"),
                    });
                    continue;
                }
            };
            for entry in
                gix::objs::TreeRefIter::from_bytes(&tree.data, hash_kind).filter_map(Result::ok)
            {
                let path = if prefix.is_empty() {
                    entry.filename.to_string()
                } else {
                    format!("{prefix}/{}", entry.filename)
                };
                if entry.mode.is_tree() {
                    stack.push((entry.oid.to_owned(), path));
                } else if entry.mode.is_blob() && targets.contains(entry.oid) {
                    introduced
                        .entry(entry.oid.to_owned())
                        .or_insert((index, path));
                }
            }
            if introduced.len() == targets.len() {
                break 'commits;
            }
        }
    }
    introduced
}

/// Turns located matches into findings with provenance, one per rule, secret and path: a secret
/// that stayed in a file through many commits is reported once, at the commit that added it.
fn attribute(
    scanner: &Scanner,
    found: Vec<(ObjectId, Located)>,
    commits: &[CommitInfo],
    introduced: &Introductions,
) -> Vec<Finding> {
    // The oldest finding wins: sort by introduction (unreachable last), then keep the first.
    let mut placed: Vec<(Option<usize>, Finding)> = found
        .into_iter()
        .map(|(blob, located)| {
            let introduction = introduced.get(&blob);
            let path = introduction.map_or_else(|| blob.to_string(), |(_, path)| path.clone());
            let origin = Origin {
                path,
                blob: Some(blob.to_string()),
            };
            let mut finding = scanner.finding(&origin, located);
            match introduction {
                Some(&(index, _)) => {
                    let commit = &commits[index];
                    finding.commit = Some(commit.id.to_string());
                    finding.author = Some(commit.author.clone());
                    finding.date = commit.date.clone();
                }
                None => finding.unreachable = true,
            }
            (introduction.map(|(index, _)| *index), finding)
        })
        .collect();
    placed.sort_by(|(a, fa), (b, fb)| {
        (a.is_none(), a, fa.line, fa.column).cmp(&(b.is_none(), b, fb.line, fb.column))
    });
    let mut reported = HashSet::new();
    placed
        .into_iter()
        .filter(|(_, f)| reported.insert((f.rule.clone(), f.fingerprint.clone(), f.path.clone())))
        .map(|(_, f)| f)
        .collect()
}

/// Formats seconds since the epoch at a UTC offset as RFC 3339, as git shows author dates.
pub(crate) fn rfc3339(seconds: i64, offset: i32) -> String {
    let Ok(timestamp) = jiff::Timestamp::from_second(seconds) else {
        return seconds.to_string();
    };
    let offset = jiff::tz::Offset::from_seconds(offset).unwrap_or(jiff::tz::Offset::UTC);
    timestamp
        .to_zoned(jiff::tz::TimeZone::fixed(offset))
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_offsets() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00+00:00");
        assert_eq!(rfc3339(1_700_000_000, 3600), "2023-11-14T23:13:20+01:00");
        assert_eq!(
            rfc3339(951_782_400, -5 * 3600 - 1800),
            "2000-02-28T18:30:00-05:30"
        );
    }
}
