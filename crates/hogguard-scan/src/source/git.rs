//! A repository's whole object store: every blob once, packed and loose, in the repository and
//! in its alternates (`git clone --shared`), so that all refs, reflogs, stashes and unreachable
//! objects are covered; commit and tag messages too.
//!
//! Packs are decoded in pack order with gitoxide's delta-tree traversal, which resolves each
//! delta base once instead of once per object that depends on it. The delta trees of files of a
//! megabyte or more are traversed apart, by one thread, beside the rest, so that memory holds
//! one such file's versions at a time, not one per core. That traversal stops at the
//! first object it cannot decode, so a pack it could not finish is read again object by object,
//! and only the objects that really cannot be read cost a warning each. No object larger than
//! [`MAX_OBJECT_BYTES`] is held in memory: a larger blob is inflated as a stream, anything else
//! that large is skipped with a warning.
//!
//! Commits met on the way are kept (id, parents, tree, author), and trees as the short keys of
//! their entries, so findings can be attributed afterwards to the first commit, in topological
//! order, whose tree holds their blob, without decoding the trees again; blobs that
//! no commit holds are reported at their path in the index when it holds them (staged), and
//! marked unreachable otherwise.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use gix::ObjectId;
use gix::objs::Kind;

use crate::stream::{self, Located, Scanned, Window};
use crate::tokens::Match;
use crate::{Error, Finding, Origin, RepeatLimiter, ScanOutcome, Scanner, Warning};

/// The largest object decoded in memory. Larger blobs are inflated as a stream; a pack that
/// declares a larger object of another kind, or a larger delta result, gets a warning instead
/// of the allocation it asks for.
pub(crate) const MAX_OBJECT_BYTES: usize = 256 << 20;

/// What provenance needs to know of a commit.
#[derive(Debug, Clone)]
struct CommitInfo {
    id: ObjectId,
    tree: ObjectId,
    parents: Vec<ObjectId>,
    /// Committer time, to order commits that ancestry does not.
    time: i64,
    author: String,
    date: Option<String>,
}

/// Where a match was found in the object store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Place {
    Blob(ObjectId),
    CommitMessage(ObjectId),
    TagMessage {
        id: ObjectId,
        name: String,
        tagger: String,
        date: Option<String>,
    },
}

impl crate::Repeats for (Place, Located) {
    fn repeats(&mut self) -> &mut u64 {
        &mut self.1.repeats
    }
}

/// State shared by the traversal threads.
#[derive(Default)]
struct Shared {
    /// Blobs, commits and tags already handled: each is scanned once however many packs and
    /// passes meet it.
    seen: Mutex<HashSet<ObjectId>>,
    /// Every tree met, by key: its id and the keys of its entries, so that findings are placed
    /// afterwards without decoding any tree a second time.
    trees: Mutex<TreeMap>,
    found: Mutex<Vec<(Place, Located)>>,
    commits: Mutex<Vec<CommitInfo>>,
    outcome: Mutex<ScanOutcome>,
}

impl Shared {
    fn warn(&self, warning: Warning) {
        self.lock_outcome().warnings.push(warning);
    }

    fn lock_outcome(&self) -> std::sync::MutexGuard<'_, ScanOutcome> {
        self.outcome
            .lock()
            .expect("no thread panics while holding the lock")
    }

    /// Whether `id` is met for the first time.
    fn first_time(&self, id: ObjectId) -> bool {
        self.seen
            .lock()
            .expect("no panics under the lock")
            .insert(id)
    }

    fn was_seen(&self, id: &ObjectId) -> bool {
        self.seen
            .lock()
            .expect("no panics under the lock")
            .contains(id)
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
        if kind == Kind::Tree {
            return self.keep_tree(data, id);
        }
        if !self.shared.first_time(id) {
            return;
        }
        match kind {
            Kind::Blob => self.scan_blob(data, id),
            Kind::Commit => self.keep_commit(data, id),
            Kind::Tag => self.scan_tag(data, id),
            Kind::Tree => {}
        }
    }

    /// Scans `data` and records its matches at `place`, at most
    /// [`MAX_IDENTICAL_FINDINGS`](crate::MAX_IDENTICAL_FINDINGS) of each.
    fn scan_text(&mut self, data: &[u8], place: &Place) -> Scanned {
        let mut found: Vec<(Place, Located)> = Vec::new();
        let mut limiter = RepeatLimiter::default();
        let scanned = stream::scan_slice(
            &self.scanner.matcher,
            data,
            &mut self.matches,
            self.scanner.options.scan_binary,
            |m| limiter.record(&mut found, m, |m| (place.clone(), m)),
        );
        self.keep(found);
        scanned
    }

    fn keep(&self, found: Vec<(Place, Located)>) {
        if !found.is_empty() {
            self.shared
                .found
                .lock()
                .expect("no panics under the lock")
                .extend(found);
        }
    }

    fn scan_blob(&mut self, data: &[u8], id: ObjectId) {
        let scanned = self.scan_text(data, &Place::Blob(id));
        self.scanner.count(&mut self.shared.lock_outcome(), scanned);
    }

    /// Scans a blob too large to hold, from a stream of its content.
    fn scan_blob_stream(&mut self, reader: impl Read, id: ObjectId, declared: u64) {
        if !self.shared.first_time(id) {
            return;
        }
        let mut found: Vec<(Place, Located)> = Vec::new();
        let mut limiter = RepeatLimiter::default();
        let place = Place::Blob(id);
        let mut counted = CountingReader {
            inner: reader,
            count: 0,
        };
        let scanned = stream::scan_reader(
            &self.scanner.matcher,
            &mut counted,
            &mut Window::new(),
            self.scanner.options.scan_binary,
            |m| limiter.record(&mut found, m, |m| (place.clone(), m)),
        );
        self.keep(found);
        match scanned {
            Ok(scanned) => {
                self.scanner.count(&mut self.shared.lock_outcome(), scanned);
                if scanned != Scanned::Binary && counted.count != declared {
                    self.shared.warn(Warning::unread(
                        id.to_string(),
                        format!(
                            "holds {} bytes where its header declares {declared}: the object is corrupt",
                            counted.count
                        ),
                    ));
                }
            }
            Err(e) => self
                .shared
                .warn(Warning::unread(id.to_string(), "could not be inflated").because(e)),
        }
    }

    /// Keeps the keys of a tree's entries (a few bytes each), for placing findings later.
    fn keep_tree(&mut self, data: &[u8], id: ObjectId) {
        let entries: Box<[u64]> = gix::objs::TreeRefIter::from_bytes(data, self.hash_kind)
            .filter_map(Result::ok)
            .filter(|entry| entry.mode.is_tree() || entry.mode.is_blob())
            .map(|entry| entry_key(entry.oid, entry.mode.is_tree()))
            .collect();
        self.shared
            .trees
            .lock()
            .expect("no panics under the lock")
            .insert(key(&id), (id, entries));
    }

    fn keep_commit(&mut self, data: &[u8], id: ObjectId) {
        let commit = match gix::objs::CommitRef::from_bytes(data, self.hash_kind) {
            Ok(commit) => commit,
            Err(e) => {
                return self.shared.warn(
                    Warning::unread(id.to_string(), "commit could not be parsed").because(e),
                );
            }
        };
        let (author, date) = match commit.author() {
            Ok(signature) => signature_text(signature),
            Err(_) => (String::new(), None),
        };
        let time = commit.time().map_or(0, |t| t.seconds);
        let info = CommitInfo {
            id,
            tree: commit.tree(),
            parents: commit.parents().collect(),
            time,
            author,
            date,
        };
        self.scan_text(commit.message, &Place::CommitMessage(id));
        self.shared
            .commits
            .lock()
            .expect("no panics under the lock")
            .push(info);
    }

    fn scan_tag(&mut self, data: &[u8], id: ObjectId) {
        let tag = match gix::objs::TagRef::from_bytes(data, self.hash_kind) {
            Ok(tag) => tag,
            Err(e) => {
                return self
                    .shared
                    .warn(Warning::unread(id.to_string(), "tag could not be parsed").because(e));
            }
        };
        let (tagger, date) = match tag.tagger() {
            Ok(Some(signature)) => signature_text(signature),
            _ => (String::new(), None),
        };
        let place = Place::TagMessage {
            id,
            name: tag.name.to_string(),
            tagger,
            date,
        };
        self.scan_text(tag.message, &place);
    }
}

/// `Name <email>` and the RFC 3339 date of a signature.
fn signature_text(signature: gix::actor::SignatureRef<'_>) -> (String, Option<String>) {
    let name = signature.name.to_string();
    let email = signature.email.to_string();
    let date = signature.time().ok().map(|t| rfc3339(t.seconds, t.offset));
    (format!("{} <{}>", name.trim(), email.trim()), date)
}

/// Counts the bytes read through it.
struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Inflates a zlib stream as it is read.
struct Inflater<R> {
    input: R,
    state: gix::zlib::Decompress,
}

impl<R: std::io::BufRead> Read for Inflater<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        gix::zlib::stream::inflate::read(&mut self.input, &mut self.state, buf)
    }
}

pub(crate) fn scan(scanner: &Scanner, path: &Path) -> Result<ScanOutcome, Error> {
    let repo = gix::discover(path).map_err(|source| Error::NotARepository {
        path: path.to_owned(),
        source: Box::new(source),
    })?;
    let objects = repo.common_dir().join("objects");
    let hash_kind = repo.object_hash();
    let shared = Shared::default();
    let handler = ObjectHandler {
        scanner,
        shared: &shared,
        hash_kind,
        matches: Vec::new(),
    };

    for directory in object_directories(&objects, &shared) {
        for index_path in pack_indexes(&directory, &shared) {
            if scanner.progress.interrupted.load(Ordering::Relaxed) {
                break;
            }
            scan_pack(&index_path, handler.clone());
        }
        scan_loose(&directory, handler.clone());
    }

    let Shared {
        found,
        commits,
        outcome,
        trees,
        ..
    } = shared;
    let mut outcome = outcome.into_inner().expect("no thread panicked");
    let found = found.into_inner().expect("no thread panicked");
    if found.is_empty() {
        return Ok(outcome);
    }
    let commits = topological(commits.into_inner().expect("no thread panicked"));
    let targets: HashSet<ObjectId> = found
        .iter()
        .filter_map(|(place, _)| match place {
            Place::Blob(id) => Some(*id),
            _ => None,
        })
        .collect();
    let trees = trees.into_inner().expect("no thread panicked");
    let introduced = first_introductions(&repo, &commits, &targets, &trees, &mut outcome.warnings);
    let staged = staged_paths(&repo, &targets, &introduced);
    outcome.findings = attribute(scanner, found, &commits, &introduced, &staged);
    Ok(outcome)
}

/// The object directory and those of its alternates, transitively; an alternates file that
/// cannot be followed costs a warning.
fn object_directories(objects: &Path, shared: &Shared) -> Vec<PathBuf> {
    let mut directories = vec![objects.to_owned()];
    let current = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    match gix::odb::alternate::resolve(objects.to_owned(), &current) {
        Ok(alternates) => directories.extend(alternates),
        Err(e) => shared.warn(
            Warning::unread(
                objects.join("info/alternates").display().to_string(),
                "alternates could not be followed",
            )
            .because(e),
        ),
    }
    directories
}

/// Reads one pack: by delta-tree traversal, then, if that stopped early, object by object.
fn scan_pack(index_path: &Path, handler: ObjectHandler<'_>) {
    let shared = handler.shared;
    let scanner = handler.scanner;
    let shown = index_path.with_extension("pack").display().to_string();
    let bundle = match gix::odb::pack::Bundle::at(index_path, handler.hash_kind) {
        Ok(bundle) => bundle,
        Err(e) => {
            return shared.warn(Warning::unread(shown, "pack could not be opened").because(e));
        }
    };
    let traversed = traverse_pack(&bundle, &handler);
    if !traversed && !scanner.progress.interrupted.load(Ordering::Relaxed) {
        scan_pack_by_object(bundle, handler);
    }
}

/// Objects this large, and the delta trees that hold one, are decoded by a traversal of their
/// own with one thread. A traversal thread holds a decoded base and the object decoded from it
/// at once (and keeps the larger buffer for the next), so two threads in the delta trees of
/// multi-megabyte files would hold twice that; beside them, the other objects still use every
/// core.
const LARGE_OBJECT_BYTES: u64 = 1 << 20;

/// Decodes every object of a pack in pack order, each delta base once, and hands each to
/// `handler`. The delta trees that hold a large object are traversed apart, by one thread,
/// while the rest uses all of them. False when a traversal stopped early (a corrupt object, an
/// interruption).
fn traverse_pack(bundle: &gix::odb::pack::Bundle, handler: &ObjectHandler<'_>) -> bool {
    let mut indexed: Vec<_> = bundle
        .index
        .iter()
        .map(|e| (e.pack_offset, e.oid, e.crc32))
        .collect();
    indexed.sort_unstable_by_key(|&(offset, ..)| offset);
    let crcs = EntryCrcs {
        entries: indexed
            .iter()
            .map(|&(offset, _, crc)| (offset, crc))
            .collect(),
        end: bundle.pack.pack_end() as u64,
    };
    let entries: Vec<(u64, ObjectId)> = indexed
        .into_iter()
        .map(|(offset, id, _)| (offset, id))
        .collect();
    let Some(large) = large_delta_trees(bundle, &entries) else {
        return false;
    };
    let (large, rest): (Vec<u32>, Vec<u32>) =
        (0..u32::try_from(entries.len()).unwrap_or(u32::MAX)).partition(|&i| large[i as usize]);
    let threads = handler.scanner.threads();
    let traverse = |subset: Vec<u32>, threads: usize| {
        subset.is_empty()
            || traverse_subset(bundle, handler.clone(), &entries, &crcs, subset, threads)
    };
    if threads == 1 {
        return traverse(rest, 1) && traverse(large, 1);
    }
    std::thread::scope(|scope| {
        let large = scope.spawn(|| traverse(large, 1));
        let rest = traverse(rest, threads);
        large.join().unwrap_or(false) && rest
    })
}

/// For each entry (by pack offset), whether its delta tree holds an object of at least
/// [`LARGE_OBJECT_BYTES`]; `None` if a header cannot be read or a delta has no base here.
fn large_delta_trees(
    bundle: &gix::odb::pack::Bundle,
    entries: &[(u64, ObjectId)],
) -> Option<Vec<bool>> {
    let position = |offset: u64| entries.binary_search_by_key(&offset, |&(o, _)| o).ok();
    // The entry each entry is decoded from (itself for whole objects).
    let mut base = Vec::with_capacity(entries.len());
    let mut sizes = Vec::with_capacity(entries.len());
    for (i, &(offset, _)) in entries.iter().enumerate() {
        let entry = bundle.pack.entry(offset).ok()?;
        base.push(
            match base_offset(&entry.header, offset, &bundle.index).ok()? {
                Some(base_offset) => position(base_offset)?,
                None => i,
            },
        );
        sizes.push(entry.decompressed_size);
    }
    // Each entry's root, following bases; a chain longer than the pack is a cycle.
    let root = |mut i: usize| {
        for _ in 0..=entries.len() {
            if base[i] == i {
                return Some(i);
            }
            i = base[i];
        }
        None
    };
    let mut roots = Vec::with_capacity(entries.len());
    let mut large_roots = vec![false; entries.len()];
    for (i, &size) in sizes.iter().enumerate() {
        let r = root(i)?;
        roots.push(r);
        large_roots[r] |= size >= LARGE_OBJECT_BYTES;
    }
    Some(roots.into_iter().map(|r| large_roots[r]).collect())
}

/// Traverses the delta trees of the entries `subset` (positions in `entries`, which is sorted
/// by pack offset, as `crcs` is) with `threads` threads. It stops at an entry whose bytes fail
/// their CRC-32 (a base is checked before the objects decoded from it).
fn traverse_subset(
    bundle: &gix::odb::pack::Bundle,
    handler: ObjectHandler<'_>,
    entries: &[(u64, ObjectId)],
    crcs: &EntryCrcs,
    subset: Vec<u32>,
    threads: usize,
) -> bool {
    use gix::odb::pack::cache::delta::{Tree, traverse};
    let index = &bundle.index;
    let interrupted = &handler.scanner.progress.interrupted;
    let tree = Tree::from_offsets_in_pack(
        bundle.pack.path(),
        subset.into_iter(),
        &|&i| entries[i as usize].0,
        &|id| Ok(index.lookup(id).map(|at| index.pack_offset_at_index(at))),
        &mut gix::progress::Discard,
        interrupted,
        handler.hash_kind,
    );
    let Ok(tree) = tree else {
        return false;
    };
    let mut handler = handler;
    tree.traverse(
        |range, pack: &gix::odb::pack::data::File| pack.entry_slice(range),
        &bundle.pack,
        bundle.pack.pack_end() as u64,
        move |&mut i, _progress, object: traverse::Context<'_>| {
            if !crcs.is_intact(&bundle.pack, i as usize) {
                return Err(gix::error::message("a packed entry fails its CRC-32").into());
            }
            // A delta carries the header of its base: every object has a kind here.
            if let Some(kind) = object.entry.header.as_kind() {
                handler.handle(kind, object.decompressed, entries[i as usize].1);
            }
            Ok(())
        },
        traverse::Options {
            object_progress: Box::new(gix::progress::Discard),
            size_progress: &mut gix::progress::Discard,
            thread_limit: Some(threads),
            should_interrupt: interrupted,
            object_hash: bundle.index.object_hash(),
            alloc_limit_bytes: Some(MAX_OBJECT_BYTES),
        },
    )
    .is_ok()
}

/// Reads every object of a pack that the traversal did not reach, one by one, so that each
/// object that cannot be read costs one warning and nothing else is lost.
fn scan_pack_by_object(bundle: gix::odb::pack::Bundle, mut handler: ObjectHandler<'_>) {
    use gix::odb::pack::data::decode::entry::ResolvedBase;
    use gix::odb::pack::data::decode::header::ResolvedBase as HeaderBase;
    let shared = handler.shared;
    let gix::odb::pack::Bundle { pack, index } = bundle;
    let pack = pack.with_alloc_limit_bytes(Some(MAX_OBJECT_BYTES));
    let index = &index;
    let mut inflate = gix::zlib::Inflate::default();
    let mut cache = gix::odb::pack::cache::lru::MemoryCappedHashmap::new(64 << 20);
    let mut buffer = Vec::new();
    let base_entry = |id: &gix::oid| {
        index
            .lookup(id)
            .map(|i| pack.entry(index.pack_offset_at_index(i)))
            .transpose()
    };
    let find_base = |id: &gix::oid| base_entry(id).map(|e| e.map(ResolvedBase::InPack));
    let find_base_header = |id: &gix::oid| base_entry(id).map(|e| e.map(HeaderBase::InPack));
    let crcs = EntryCrcs::of_parts(&pack, index);
    let mut chains = ChainChecks::default();
    for entry in index.iter() {
        if handler.scanner.progress.interrupted.load(Ordering::Relaxed) {
            return;
        }
        if shared.was_seen(&entry.oid) {
            continue;
        }
        let unread = |message: &str| Warning::unread(entry.oid.to_string(), message);
        let pack_entry = match pack.entry(entry.pack_offset) {
            Ok(pack_entry) => pack_entry,
            Err(e) => {
                shared.warn(unread("packed object header is corrupt").because(e));
                continue;
            }
        };
        if let Err(problem) = chains.check(&crcs, &pack, index, entry.pack_offset) {
            shared.warn(unread(problem));
            continue;
        }
        let header = match pack.decode_header(pack_entry.clone(), &mut inflate, &find_base_header) {
            Ok(header) => header,
            Err(e) => {
                shared.warn(unread("packed object could not be decoded").because(e));
                continue;
            }
        };
        if header.object_size > MAX_OBJECT_BYTES as u64 {
            if header.kind == Kind::Blob && header.num_deltas == 0 {
                let data = pack
                    .entry_slice(pack_entry.data_offset..pack.data_len() as u64)
                    .unwrap_or_default();
                let reader = Inflater {
                    input: data,
                    state: gix::zlib::Decompress::new(),
                };
                handler.scan_blob_stream(reader, entry.oid, header.object_size);
            } else if header.kind != Kind::Tree {
                shared.warn(unread(&format!(
                    "{} of {} bytes is larger than the {} bytes read into memory, and was not read",
                    header.kind, header.object_size, MAX_OBJECT_BYTES
                )));
            }
            continue;
        }
        match pack.decode_entry(
            pack_entry,
            &mut buffer,
            &mut inflate,
            &|id, _| find_base(id),
            &mut cache,
        ) {
            Ok(outcome) => handler.handle(outcome.kind, &buffer, entry.oid),
            Err(e) => shared.warn(unread("packed object could not be decoded").because(e)),
        }
    }
}

/// The pack offset of the base that the entry at `offset` with `header` is decoded from:
/// `Ok(None)` for a whole object or a base outside this pack, `Err(())` for a distance that
/// points before the pack's start.
fn base_offset(
    header: &gix::odb::pack::data::entry::Header,
    offset: u64,
    index: &gix::odb::pack::index::File,
) -> Result<Option<u64>, ()> {
    use gix::odb::pack::data::entry::Header;
    match *header {
        Header::OfsDelta { base_distance } => {
            Header::verified_base_pack_offset(offset, base_distance)
                .map(Some)
                .ok_or(())
        }
        Header::RefDelta { base_id } => Ok(index
            .lookup(base_id)
            .map(|at| index.pack_offset_at_index(at))),
        _ => Ok(None),
    }
}

/// The CRC-32 that a pack's index records for each entry's bytes (header and compressed
/// data), by pack offset. Inflating cannot be trusted to notice damage: a changed deflate
/// stream may still inflate, to other bytes of the same length, and a secret in them would be
/// missed without a word.
struct EntryCrcs {
    /// Entry offsets in increasing order, and their CRC-32 (`None` in a version 1 index).
    entries: Vec<(u64, Option<u32>)>,
    /// Where the last entry ends: the pack's trailing checksum.
    end: u64,
}

impl EntryCrcs {
    fn of_parts(
        pack: &gix::odb::pack::data::File,
        index: &gix::odb::pack::index::File,
    ) -> EntryCrcs {
        let mut entries: Vec<_> = index.iter().map(|e| (e.pack_offset, e.crc32)).collect();
        entries.sort_unstable_by_key(|&(offset, _)| offset);
        EntryCrcs {
            entries,
            end: pack.pack_end() as u64,
        }
    }

    /// The position of the entry at `offset`.
    fn position(&self, offset: u64) -> Option<usize> {
        self.entries.binary_search_by_key(&offset, |&(o, _)| o).ok()
    }

    /// Whether the entry at `position` has the bytes its CRC-32 says (true without one).
    fn is_intact(&self, pack: &gix::odb::pack::data::File, position: usize) -> bool {
        let Some(&(start, crc)) = self.entries.get(position) else {
            return false;
        };
        let Some(expected) = crc else {
            return true;
        };
        let end = self
            .entries
            .get(position + 1)
            .map_or(self.end, |&(next, _)| next);
        pack.entry_slice(start..end)
            .is_some_and(|bytes| crc32fast::hash(bytes) == expected)
    }
}

/// Which entries' delta chains were found intact or damaged, so that a base shared by many
/// deltas is checked once.
#[derive(Default)]
struct ChainChecks {
    known: HashMap<u64, bool>,
}

impl ChainChecks {
    /// Checks the entry at `offset` and every base it is decoded from; says which failed.
    fn check(
        &mut self,
        crcs: &EntryCrcs,
        pack: &gix::odb::pack::data::File,
        index: &gix::odb::pack::index::File,
        offset: u64,
    ) -> Result<(), &'static str> {
        let mut chain = Vec::new();
        let mut at = offset;
        let intact = loop {
            if let Some(&known) = self.known.get(&at) {
                break known;
            }
            // A chain longer than the pack is a cycle: the decoder reports it.
            if chain.len() > crcs.entries.len() {
                break true;
            }
            chain.push(at);
            let Some(position) = crcs.position(at) else {
                break true;
            };
            if !crcs.is_intact(pack, position) {
                break false;
            }
            let base = pack
                .entry(at)
                .ok()
                .and_then(|entry| base_offset(&entry.header, at, index).ok().flatten());
            match base {
                Some(base) => at = base,
                None => break true,
            }
        };
        for link in chain {
            self.known.insert(link, intact);
        }
        match intact {
            true => Ok(()),
            false => Err(
                "packed object or a delta base it is built from fails its CRC-32 check: the pack is damaged",
            ),
        }
    }
}

/// The `.idx` files of the object directory's packs, in a stable order.
fn pack_indexes(objects: &Path, shared: &Shared) -> Vec<PathBuf> {
    let pack_dir = objects.join("pack");
    let entries = match std::fs::read_dir(&pack_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            shared.warn(
                Warning::unread(pack_dir.display().to_string(), "cannot be listed").because(e),
            );
            return Vec::new();
        }
    };
    let mut indexes: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "idx"))
        .collect();
    indexes.sort();
    indexes
}

/// Loose objects, read one by one; a corrupt one costs a warning.
fn scan_loose(objects: &Path, mut handler: ObjectHandler<'_>) {
    let shared = handler.shared;
    let store = gix::odb::loose::Store::at(objects, handler.hash_kind);
    let mut buffer = Vec::new();
    for id in store.iter() {
        if handler.scanner.progress.interrupted.load(Ordering::Relaxed) {
            return;
        }
        let id = match id {
            Ok(id) => id,
            Err(e) => {
                shared.warn(
                    Warning::unread(
                        objects.display().to_string(),
                        "loose objects cannot be listed",
                    )
                    .because(e),
                );
                continue;
            }
        };
        if shared.was_seen(&id) {
            continue;
        }
        match store.try_header(&id) {
            Ok(Some((size, kind))) if size > MAX_OBJECT_BYTES as u64 => {
                scan_large_loose(objects, &mut handler, id, kind, size);
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                shared.warn(Warning::unread(id.to_string(), "corrupt loose object").because(e));
                continue;
            }
        }
        match store.try_find(&id, &mut buffer) {
            // Git names a loose object by its content's hash and keeps no other checksum:
            // a changed file may still inflate, to other text.
            Ok(Some(object))
                if gix::objs::compute_hash(handler.hash_kind, object.kind, object.data)
                    .is_ok_and(|actual| actual == id) =>
            {
                let kind = object.kind;
                handler.handle(kind, object.data, id);
            }
            Ok(Some(_)) => shared.warn(Warning::unread(
                id.to_string(),
                "loose object's content does not hash to its id: the object is corrupt",
            )),
            Ok(None) => {}
            Err(e) => {
                shared.warn(Warning::unread(id.to_string(), "corrupt loose object").because(e))
            }
        }
    }
}

/// A loose object larger than [`MAX_OBJECT_BYTES`]: a blob is inflated as a stream past its
/// `blob <size>\0` header; anything else is skipped with a warning.
fn scan_large_loose(
    objects: &Path,
    handler: &mut ObjectHandler<'_>,
    id: ObjectId,
    kind: Kind,
    size: u64,
) {
    let shared = handler.shared;
    if kind != Kind::Blob {
        return shared.warn(Warning::unread(
            id.to_string(),
            format!("{kind} of {size} bytes is larger than the {MAX_OBJECT_BYTES} bytes read into memory, and was not read"),
        ));
    }
    let hex = id.to_string();
    let path = objects.join(&hex[..2]).join(&hex[2..]);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) => return shared.warn(Warning::unread(hex, "cannot be opened").because(e)),
    };
    let mut inflater = Inflater {
        input: std::io::BufReader::new(file),
        state: gix::zlib::Decompress::new(),
    };
    // Skip the header, at most a few dozen bytes.
    let mut byte = [0u8; 1];
    for _ in 0..64 {
        match inflater.read(&mut byte) {
            Ok(1) if byte[0] == 0 => return handler.scan_blob_stream(inflater, id, size),
            Ok(1) => {}
            Ok(_) => break,
            Err(e) => {
                return shared.warn(Warning::unread(hex, "corrupt loose object").because(e));
            }
        }
    }
    shared.warn(Warning::unread(hex, "corrupt loose object: no header"));
}

/// Commits in topological order (every commit after its parents), unrelated commits by
/// committer time, then id; duplicates dropped.
fn topological(mut commits: Vec<CommitInfo>) -> Vec<CommitInfo> {
    commits.sort_by_key(|c| c.id);
    commits.dedup_by_key(|c| c.id);
    let position: HashMap<ObjectId, usize> =
        commits.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
    let mut waiting_on = vec![0usize; commits.len()];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); commits.len()];
    for (i, commit) in commits.iter().enumerate() {
        let mut parents: Vec<usize> = commit
            .parents
            .iter()
            .filter_map(|p| position.get(p).copied())
            .collect();
        parents.sort_unstable();
        parents.dedup();
        waiting_on[i] = parents.len();
        for parent in parents {
            children[parent].push(i);
        }
    }
    let key = |i: usize| std::cmp::Reverse((commits[i].time, commits[i].id, i));
    let mut ready: BinaryHeap<_> = (0..commits.len())
        .filter(|&i| waiting_on[i] == 0)
        .map(key)
        .collect();
    let mut order = Vec::with_capacity(commits.len());
    while let Some(std::cmp::Reverse((_, _, i))) = ready.pop() {
        order.push(i);
        for &child in &children[i] {
            waiting_on[child] -= 1;
            if waiting_on[child] == 0 {
                ready.push(key(child));
            }
        }
    }
    let mut slots: Vec<Option<CommitInfo>> = commits.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i].take().expect("each commit is ordered once"))
        .collect()
}

/// Trees by [`key`]: the full id and the [`entry_key`]s of the entries.
type TreeMap = HashMap<u64, (ObjectId, Box<[u64]>)>;

/// The top bit of an [`entry_key`], set for trees.
const TREE_BIT: u64 = 1 << 63;

/// 63 bits of an object id: enough to tell apart the objects of one store (a collision is
/// caught when the path is read from the real trees).
fn key(id: &gix::oid) -> u64 {
    let bytes = id.as_bytes();
    u64::from_be_bytes(
        bytes[..8]
            .try_into()
            .expect("ids are longer than eight bytes"),
    ) >> 1
}

/// The key of a tree entry, with [`TREE_BIT`] set for trees.
fn entry_key(id: &gix::oid, is_tree: bool) -> u64 {
    key(id) | if is_tree { TREE_BIT } else { 0 }
}

/// Where a blob first appeared: the index of the commit in topological order and the path.
type Introductions = HashMap<ObjectId, (usize, String)>;

/// For each target blob, the first commit in topological order whose tree holds it and its
/// path there. Trees come from the map the traversal filled, each visited once: a tree seen
/// in an earlier commit has already given its blobs their first commit. Only the trees on
/// the path to a found blob are decoded again, for the names.
fn first_introductions(
    repo: &gix::Repository,
    commits: &[CommitInfo],
    targets: &HashSet<ObjectId>,
    trees: &TreeMap,
    warnings: &mut Vec<Warning>,
) -> Introductions {
    let mut introduced = Introductions::new();
    if targets.is_empty() {
        return introduced;
    }
    let mut wanted: HashMap<u64, Vec<ObjectId>> = HashMap::new();
    for target in targets {
        wanted
            .entry(entry_key(target, false))
            .or_default()
            .push(*target);
    }
    // The tree through which each tree was first reached, for the path back to its root.
    let mut parent: HashMap<u64, Option<u64>> = HashMap::new();
    'commits: for (index, commit) in commits.iter().enumerate() {
        let root = key(&commit.tree);
        if parent.contains_key(&root) {
            continue;
        }
        parent.insert(root, None);
        let mut stack = vec![root];
        while let Some(tree) = stack.pop() {
            let Some((tree_id, entries)) = trees.get(&tree) else {
                // The first 63 bits of its id, shown as the id's first hex digits.
                warnings.push(Warning::note(
                    format!("{:016x}", tree << 1),
                    "tree could not be read",
                ));
                continue;
            };
            for &entry in entries.iter() {
                if entry & TREE_BIT != 0 {
                    let child = entry & !TREE_BIT;
                    if let std::collections::hash_map::Entry::Vacant(slot) = parent.entry(child) {
                        slot.insert(Some(tree));
                        stack.push(child);
                    }
                } else if let Some(blobs) = wanted.get(&entry) {
                    for blob in blobs {
                        if introduced.contains_key(blob) {
                            continue;
                        }
                        if let Some(path) = path_to(repo, *tree_id, *blob, tree, &parent, trees) {
                            introduced.insert(*blob, (index, path));
                        }
                    }
                }
            }
            if introduced.len() == targets.len() {
                break 'commits;
            }
        }
    }
    introduced
}

/// The path of `blob` in the tree `holder` (keyed `holder_key`), through the trees that first
/// reached it, read from the object store; `None` if the trees do not hold it after all.
fn path_to(
    repo: &gix::Repository,
    holder: ObjectId,
    blob: ObjectId,
    holder_key: u64,
    parent: &HashMap<u64, Option<u64>>,
    trees: &TreeMap,
) -> Option<String> {
    let mut chain = vec![(holder_key, holder)];
    let mut at = holder_key;
    while let Some(Some(up)) = parent.get(&at) {
        chain.push((*up, trees.get(up)?.0));
        at = *up;
    }
    chain.reverse();
    let hash_kind = repo.object_hash();
    let mut names = Vec::new();
    for (depth, (_, tree_id)) in chain.iter().enumerate() {
        let tree = repo.find_object(*tree_id).ok()?;
        let next = chain.get(depth + 1).map(|(_, id)| *id);
        let entry = gix::objs::TreeRefIter::from_bytes(&tree.data, hash_kind)
            .filter_map(Result::ok)
            .find(|entry| match next {
                Some(subtree) => entry.mode.is_tree() && entry.oid == subtree.as_ref(),
                None => entry.mode.is_blob() && entry.oid == blob.as_ref(),
            })?;
        names.push(entry.filename.to_string());
    }
    Some(names.join("/"))
}

/// The index path of each target blob that no commit holds but the index does.
fn staged_paths(
    repo: &gix::Repository,
    targets: &HashSet<ObjectId>,
    introduced: &Introductions,
) -> HashMap<ObjectId, String> {
    if targets.len() == introduced.len() {
        return HashMap::new();
    }
    let Ok(index) = repo.index_or_empty() else {
        return HashMap::new();
    };
    let mut staged = HashMap::new();
    for entry in index.entries() {
        if targets.contains(&entry.id) && !introduced.contains_key(&entry.id) {
            staged
                .entry(entry.id)
                .or_insert_with(|| entry.path(&index).to_string());
        }
    }
    staged
}

/// Turns located matches into findings with provenance, one per rule, secret and path: a secret
/// that stayed in a file through many commits is reported once, at the commit that added it.
fn attribute(
    scanner: &Scanner,
    found: Vec<(Place, Located)>,
    commits: &[CommitInfo],
    introduced: &Introductions,
    staged: &HashMap<ObjectId, String>,
) -> Vec<Finding> {
    let commit_position: HashMap<ObjectId, usize> =
        commits.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
    // The first finding wins: sort by introduction (staged, then unreachable, last), then keep
    // the first.
    let mut placed: Vec<(Option<usize>, Finding)> = found
        .into_iter()
        .map(|(place, located)| {
            place_finding(
                scanner,
                place,
                located,
                commits,
                &commit_position,
                introduced,
                staged,
            )
        })
        .collect();
    placed.sort_by(|(a, fa), (b, fb)| {
        (a.is_none(), a, fa.unreachable, fa.line, fa.column).cmp(&(
            b.is_none(),
            b,
            fb.unreachable,
            fb.line,
            fb.column,
        ))
    });
    let mut reported = HashSet::new();
    placed
        .into_iter()
        .filter(|(_, f)| reported.insert((f.rule.clone(), f.fingerprint.clone(), f.path.clone())))
        .map(|(_, f)| f)
        .collect()
}

/// One finding with its provenance, and the position of its commit in topological order.
fn place_finding(
    scanner: &Scanner,
    place: Place,
    located: Located,
    commits: &[CommitInfo],
    commit_position: &HashMap<ObjectId, usize>,
    introduced: &Introductions,
    staged: &HashMap<ObjectId, String>,
) -> (Option<usize>, Finding) {
    let with_commit = |finding: &mut Finding, index: usize| {
        let commit = &commits[index];
        finding.commit = Some(commit.id.to_string());
        finding.author = Some(commit.author.clone());
        finding.date = commit.date.clone();
    };
    match place {
        Place::Blob(blob) => {
            let introduction = introduced.get(&blob);
            let staged_path = staged.get(&blob);
            let path = match (introduction, staged_path) {
                (Some((_, path)), _) | (None, Some(path)) => path.clone(),
                (None, None) => blob.to_string(),
            };
            let origin = Origin {
                path,
                blob: Some(blob.to_string()),
            };
            let mut finding = scanner.finding(&origin, located);
            match introduction {
                Some(&(index, _)) => with_commit(&mut finding, index),
                None if staged_path.is_some() => finding.staged = true,
                None => finding.unreachable = true,
            }
            (introduction.map(|(index, _)| *index), finding)
        }
        Place::CommitMessage(id) => {
            let origin = Origin {
                path: "(commit message)".to_owned(),
                blob: None,
            };
            let mut finding = scanner.finding(&origin, located);
            let index = commit_position.get(&id).copied();
            if let Some(index) = index {
                with_commit(&mut finding, index);
            }
            (index, finding)
        }
        Place::TagMessage {
            id,
            name,
            tagger,
            date,
        } => {
            let origin = Origin {
                path: format!("(message of tag {name})"),
                blob: Some(id.to_string()),
            };
            let mut finding = scanner.finding(&origin, located);
            finding.author = (!tagger.is_empty()).then_some(tagger);
            finding.date = date;
            (None, finding)
        }
    }
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
