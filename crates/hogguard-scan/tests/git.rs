//! History and index scans over real repositories built with the `git` binary.

use std::collections::HashMap;

use hogguard_scan::{ScanOptions, Scanner};
use hogguard_testkit::git::{TempRepo, overwrite};
use hogguard_testkit::keys::{self, Prefix};

fn scanner() -> Scanner {
    Scanner::new(&[], ScanOptions::default()).unwrap()
}

#[test]
fn history_covers_every_blob_once_with_its_first_commit() {
    let repo = TempRepo::new();
    let personal = keys::current(Prefix::Personal);
    let secret = keys::current(Prefix::Secret);
    let stashed = keys::current(Prefix::OAuthAccess);
    let dangling = keys::current(Prefix::OAuthRefresh);

    repo.write("README.md", "hello\n");
    repo.commit_all("start", "2024-01-01T10:00:00+00:00");
    repo.write(
        "config/app.py",
        format!("import os\nKEY = \"{personal}\"\n"),
    );
    let added = repo.commit_all("add key", "2024-02-01T10:00:00+01:00");
    // The key stays through later edits of the file: still one finding, at its first commit.
    repo.write(
        "config/app.py",
        format!("import os\nimport sys\nKEY = \"{personal}\"\n"),
    );
    repo.commit_all("edit", "2024-02-02T10:00:00+00:00");
    repo.write("config/app.py", "import os\nKEY = os.environ['KEY']\n");
    repo.commit_all("remove key", "2024-03-01T10:00:00+00:00");
    // A side branch, deleted afterwards: only the reflog-free object store still has it.
    repo.git(&["checkout", "-q", "-b", "side"]);
    repo.write("side.env", format!("POSTHOG_SECRET_API_KEY={secret}\n"));
    let side = repo.commit_all("side", "2024-04-01T10:00:00+00:00");
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["branch", "-q", "-D", "side"]);
    repo.git(&["reflog", "expire", "--expire=now", "--all"]);
    // A stash and a blob that no commit holds.
    repo.write("README.md", format!("token {stashed}\n"));
    repo.git(&["stash", "-q"]);
    let blob_path = repo.write("loose.txt", format!("refresh {dangling}\n"));
    let dangling_blob = repo
        .git(&["hash-object", "-w", blob_path.to_str().unwrap()])
        .trim()
        .to_owned();
    std::fs::remove_file(blob_path).unwrap();
    // Pack what is there, then add a loose object on top: both stores must be read.
    repo.git(&["gc", "-q", "--prune=never"]);
    let late = keys::current(Prefix::Personal);
    repo.write("late.txt", format!("{late}\n"));
    let late_commit = repo.commit_all("late", "2024-05-01T10:00:00+00:00");

    let outcome = scanner().scan_git(repo.path()).unwrap();
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    let by_mask: HashMap<String, _> = outcome
        .findings
        .iter()
        .map(|f| (f.masked.clone(), f))
        .collect();
    assert_eq!(outcome.findings.len(), 5, "{:#?}", outcome.findings);

    let f = by_mask[&hogguard_secret::mask(&personal)];
    assert_eq!(f.commit.as_deref(), Some(added.as_str()));
    assert_eq!(f.path, "config/app.py");
    assert_eq!((f.line, f.column), (2, 8));
    assert_eq!(f.author.as_deref(), Some("Ada Tester <ada@example.test>"));
    assert_eq!(f.date.as_deref(), Some("2024-02-01T10:00:00+01:00"));
    assert!(!f.unreachable);

    let f = by_mask[&hogguard_secret::mask(&secret)];
    assert_eq!(f.commit.as_deref(), Some(side.as_str()));
    assert_eq!(f.path, "side.env");

    let f = by_mask[&hogguard_secret::mask(&stashed)];
    assert!(f.commit.is_some(), "stash commits hold their blobs");
    assert_eq!(f.path, "README.md");

    let f = by_mask[&hogguard_secret::mask(&dangling)];
    assert!(f.unreachable);
    assert_eq!(f.commit, None);
    assert_eq!(f.blob.as_deref(), Some(dangling_blob.as_str()));

    let f = by_mask[&hogguard_secret::mask(&late)];
    assert_eq!(f.commit.as_deref(), Some(late_commit.as_str()));
}

#[test]
fn corrupt_loose_objects_cost_a_warning_not_the_scan() {
    let repo = TempRepo::new();
    let key = keys::current(Prefix::Personal);
    repo.write("a.txt", format!("{key}\n"));
    repo.commit_all("a", "2024-01-01T00:00:00+00:00");
    let victim = repo.write("b.txt", "some other content\n");
    let (id, object) = repo.write_loose_blob(&victim, &[]);
    overwrite(&object, b"this is not zlib data");

    let outcome = scanner().scan_git(repo.path()).unwrap();
    assert_eq!(outcome.findings.len(), 1);
    assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    assert!(
        outcome.warnings[0].path.contains(&id),
        "{:?}",
        outcome.warnings
    );
}

#[test]
fn a_loose_object_changed_on_disk_is_reported_even_when_it_still_inflates() {
    let repo = TempRepo::new();
    let key = keys::current(Prefix::Personal);
    repo.write("a.txt", format!("{key}\n"));
    repo.commit_all("a", "2024-01-01T00:00:00+00:00");
    let victim = repo.write("b.env", "PORT=150\n");
    // Stored (uncompressed) deflate blocks: the text is in the object file as it is.
    let (id, object) = repo.write_loose_blob(&victim, &["core.looseCompression=0"]);
    let mut bytes = std::fs::read(&object).unwrap();
    let at = bytes.windows(9).position(|w| w == b"PORT=150\n").unwrap() + 5;
    keep_adler32_change(&mut bytes, at);
    overwrite(&object, &bytes);

    let outcome = scanner().scan_git(repo.path()).unwrap();
    assert!(!outcome.is_complete());
    assert!(
        outcome.warnings.iter().any(|w| w.path.contains(&id)),
        "{:?}",
        outcome.warnings
    );
    assert_eq!(outcome.findings.len(), 1);
}

#[test]
fn not_a_repository_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let error = scanner().scan_git(dir.path()).unwrap_err();
    assert!(
        error.to_string().contains("not a git repository"),
        "{error}"
    );
}

#[test]
fn staged_scans_the_index_not_the_working_tree() {
    let repo = TempRepo::new();
    let committed = keys::current(Prefix::Secret);
    let staged = keys::current(Prefix::Personal);
    let unstaged = keys::current(Prefix::OAuthAccess);
    repo.write("old.env", format!("{committed}\n"));
    repo.write("app.py", "print('hi')\n");
    repo.commit_all("base", "2024-01-01T00:00:00+00:00");

    // Staged with a key, then the key is removed from the working tree only.
    repo.write("app.py", format!("print('hi')\nKEY = '{staged}'\n"));
    repo.git(&["add", "app.py"]);
    repo.write("app.py", "print('hi')\n");
    // A key in the working tree that is not staged.
    repo.write("notes.txt", format!("{unstaged}\n"));

    let outcome = scanner().scan_staged(repo.path()).unwrap();
    let masks: Vec<_> = outcome.findings.iter().map(|f| f.masked.as_str()).collect();
    assert_eq!(masks, vec![hogguard_secret::mask(&staged)]);
    assert_eq!(outcome.findings[0].path, "app.py");
    assert_eq!(outcome.findings[0].line, 2);
    // Only the changed entry was read, not the committed file that still holds a key.
    assert_eq!(outcome.inputs, 1);
}

#[test]
fn staged_before_the_first_commit_scans_everything_staged() {
    let repo = TempRepo::new();
    let key = keys::current(Prefix::Personal);
    repo.write("nested/dir/a.env", format!("{key}\n"));
    repo.write("b.txt", "nothing\n");
    repo.git(&["add", "-A"]);
    let outcome = scanner().scan_staged(repo.path()).unwrap();
    assert_eq!(outcome.inputs, 2);
    assert_eq!(outcome.findings.len(), 1);
    assert_eq!(outcome.findings[0].path, "nested/dir/a.env");
}

#[test]
fn tracked_scans_every_indexed_file_and_nothing_else() {
    let repo = TempRepo::new();
    let committed = keys::current(Prefix::Secret);
    let ignored = keys::current(Prefix::Personal);
    repo.write(".gitignore", ".env\n");
    repo.write("config/settings.py", format!("KEY = '{committed}'\n"));
    repo.write("README.md", "hello\n");
    repo.commit_all("base", "2024-01-01T00:00:00+00:00");
    repo.write(".env", format!("POSTHOG_PERSONAL_API_KEY={ignored}\n"));
    let outcome = scanner().scan_tracked(repo.path()).unwrap();
    assert_eq!(outcome.inputs, 3);
    let masks: Vec<_> = outcome.findings.iter().map(|f| f.masked.as_str()).collect();
    assert_eq!(masks, vec![hogguard_secret::mask(&committed)]);
    assert_eq!(outcome.findings[0].path, "config/settings.py");
}

/// The offset in the pack of each object, from `git show-index`.
fn pack_offsets(repo: &TempRepo) -> (std::path::PathBuf, Vec<(String, u64)>) {
    let pack_dir = repo.path().join(".git/objects/pack");
    let idx = std::fs::read_dir(&pack_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "idx"))
        .expect("one pack");
    let output = repo
        .command()
        .arg("show-index")
        .stdin(std::fs::File::open(&idx).unwrap())
        .output()
        .unwrap();
    let offsets = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let mut fields = line.split_whitespace();
            let offset = fields.next().unwrap().parse().unwrap();
            (fields.next().unwrap().to_owned(), offset)
        })
        .collect();
    (idx.with_extension("pack"), offsets)
}

#[test]
fn a_packed_object_changed_on_disk_is_reported_even_when_it_still_inflates() {
    let repo = TempRepo::new();
    let key = keys::current(Prefix::Secret);
    let other = keys::current(Prefix::Secret);
    repo.write("a.env", format!("PORT=150\nA={key}\n"));
    repo.write("b.env", format!("B={other}\n"));
    repo.commit_all("keys", "2024-01-01T00:00:00+00:00");
    // Stored (uncompressed) deflate blocks: the blob's text is in the pack as it is.
    repo.git(&["-c", "pack.compression=0", "gc", "-q"]);
    let victim = repo.git(&["rev-parse", "HEAD:a.env"]).trim().to_owned();
    let (pack, _) = pack_offsets(&repo);
    let mut bytes = std::fs::read(&pack).unwrap();
    // "150" becomes "231", and the blob still inflates.
    let at = bytes.windows(9).position(|w| w == b"PORT=150\n").unwrap() + 5;
    keep_adler32_change(&mut bytes, at);
    overwrite(&pack, &bytes);

    let outcome = scanner().scan_git(repo.path()).unwrap();
    assert!(!outcome.is_complete(), "{:?}", outcome.findings);
    assert!(
        outcome.warnings.iter().any(|w| w.path.contains(&victim)),
        "{:?}",
        outcome.warnings
    );
    let masks: Vec<_> = outcome.findings.iter().map(|f| f.masked.clone()).collect();
    assert!(masks.contains(&hogguard_secret::mask(&other)), "{masks:?}");
}

/// Changes three bytes in a row by +1, -2 and +1, which keeps the Adler-32 of a zlib stream
/// that stores them as they are: it still inflates without an error, to other text.
fn keep_adler32_change(bytes: &mut [u8], at: usize) {
    bytes[at] += 1;
    bytes[at + 1] -= 2;
    bytes[at + 2] += 1;
}

/// A key drawn from `seed` by a fixed generator: the same pack bytes on every run.
fn seeded_key(seed: u64) -> String {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let bytes: Vec<u8> = (0..Prefix::Secret.current_bytes())
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    format!(
        "{}{}",
        Prefix::Secret.as_str(),
        keys::body_from_bytes(keys::Era::Current, &bytes)
    )
}

#[test]
fn objects_built_from_a_damaged_delta_base_are_reported_with_it() {
    let repo = TempRepo::new();
    let text = |changed: &str| {
        let mut text: String = (0..300)
            .map(|i| format!("setting {i} = value {}\n", i * 7))
            .collect();
        text.push_str(&format!("KEY={}\n{changed}\n", seeded_key(7)));
        text
    };
    repo.write("config.env", text("first"));
    repo.commit_all("first", "2024-01-01T00:00:00+00:00");
    repo.write("config.env", text("second"));
    repo.commit_all("second", "2024-01-02T00:00:00+00:00");
    // Stored (uncompressed) deflate blocks: the base's text is in the pack as it is.
    repo.git(&["-c", "pack.compression=0", "gc", "-q"]);
    let (pack, _) = pack_offsets(&repo);
    // `verify-pack -v`: "<id> blob <size> <size in pack> <offset> <depth> <base id>" for deltas.
    let listing = repo.git(&[
        "verify-pack",
        "-v",
        pack.with_extension("idx").to_str().unwrap(),
    ]);
    let (delta, base) = listing
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.len() == 7 && fields[1] == "blob")
        .map(|fields| (fields[0].to_owned(), fields[6].to_owned()))
        .expect("one version is stored as a delta of the other");
    let mut bytes = std::fs::read(&pack).unwrap();
    // "150" becomes "231" in the base, which the delta copies: both still inflate. Only the
    // index's CRC-32 of the base tells.
    let needle = b"setting 150 = ";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
        + 8;
    keep_adler32_change(&mut bytes, at);
    overwrite(&pack, &bytes);

    let outcome = scanner().scan_git(repo.path()).unwrap();
    assert!(!outcome.is_complete());
    for id in [&base, &delta] {
        assert!(
            outcome
                .warnings
                .iter()
                .any(|w| w.path.contains(id.as_str())),
            "{id} is read as if intact: {:?}",
            outcome.warnings
        );
    }
}

#[test]
fn a_corrupt_packed_object_does_not_hide_the_rest_of_the_pack() {
    let repo = TempRepo::new();
    let keys: Vec<String> = (0..24).map(seeded_key).collect();
    for (i, key) in keys.iter().enumerate() {
        repo.write(&format!("f{i}.env"), format!("K{i}={key}\n"));
    }
    repo.commit_all("keys", "2024-01-01T00:00:00+00:00");
    repo.git(&["gc", "-q"]);
    let (pack, offsets) = pack_offsets(&repo);
    let mut bytes = std::fs::read(&pack).unwrap();
    // Every other blob gets 8 bytes overwritten past its entry and zlib headers, inside the
    // deflate stream. Most such streams fail to inflate; some inflate to other bytes of the
    // right length, which only the index's CRC-32 of the entry tells from the real ones.
    let victims: Vec<String> = (0..keys.len())
        .step_by(2)
        .map(|i| {
            repo.git(&["rev-parse", &format!("HEAD:f{i}.env")])
                .trim()
                .to_owned()
        })
        .collect();
    for victim in &victims {
        let offset = offsets.iter().find(|(id, _)| id == victim).unwrap().1 as usize;
        bytes[offset + 6..offset + 14].copy_from_slice(b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8");
    }
    overwrite(&pack, &bytes);

    let outcome = scanner().scan_git(repo.path()).unwrap();
    let masks: std::collections::HashSet<_> =
        outcome.findings.iter().map(|f| f.masked.clone()).collect();
    for key in keys.iter().skip(1).step_by(2) {
        assert!(
            masks.contains(&hogguard_secret::mask(key)),
            "{:?}",
            outcome.warnings
        );
    }
    assert!(!outcome.is_complete());
    let unwarned: Vec<_> = victims
        .iter()
        .filter(|victim| !outcome.warnings.iter().any(|w| w.path.contains(*victim)))
        .collect();
    assert!(unwarned.is_empty(), "read as if intact: {unwarned:?}");
}

#[test]
fn objects_of_alternates_are_read() {
    let origin = TempRepo::new();
    let key = keys::current(Prefix::Personal);
    origin.write("app.env", format!("POSTHOG_PERSONAL_API_KEY={key}\n"));
    origin.commit_all("key", "2024-01-01T00:00:00+00:00");
    origin.git(&["gc", "-q"]);
    let parent = tempfile::tempdir().unwrap();
    let shared = parent.path().join("shared");
    origin.git(&["clone", "-q", "--shared", ".", shared.to_str().unwrap()]);
    assert!(shared.join(".git/objects/info/alternates").exists());

    let outcome = scanner().scan_git(&shared).unwrap();
    assert_eq!(outcome.findings.len(), 1, "{:?}", outcome.warnings);
    assert_eq!(outcome.findings[0].path, "app.env");
    assert!(outcome.is_complete());
}

#[test]
fn commit_and_tag_messages_are_scanned() {
    let repo = TempRepo::new();
    let in_commit = keys::current(Prefix::Personal);
    let in_tag = keys::current(Prefix::Secret);
    repo.write("a.txt", "clean\n");
    let commit = repo.commit_all(
        &format!("rotate the key\n\nold one was {in_commit}\n"),
        "2024-01-01T00:00:00+00:00",
    );
    repo.git(&["tag", "-a", "v1", "-m", &format!("release, key {in_tag}")]);

    let outcome = scanner().scan_git(repo.path()).unwrap();
    let by_mask: HashMap<String, _> = outcome
        .findings
        .iter()
        .map(|f| (f.masked.clone(), f))
        .collect();
    assert_eq!(outcome.findings.len(), 2, "{:#?}", outcome.findings);
    let f = by_mask[&hogguard_secret::mask(&in_commit)];
    assert_eq!(f.commit.as_deref(), Some(commit.as_str()));
    assert_eq!(f.path, "(commit message)");
    assert_eq!((f.line, f.column), (3, 13));
    assert_eq!(f.author.as_deref(), Some("Ada Tester <ada@example.test>"));
    let f = by_mask[&hogguard_secret::mask(&in_tag)];
    assert_eq!(f.path, "(message of tag v1)");
    assert!(!f.unreachable);
}

#[test]
fn a_blob_belongs_to_the_first_commit_in_ancestry_not_the_oldest_date() {
    let repo = TempRepo::new();
    let key = keys::current(Prefix::Personal);
    repo.write("README.md", "hello\n");
    repo.commit_all("start", "2024-01-01T00:00:00+00:00");
    repo.write("app.env", format!("{key}\n"));
    let introduced = repo.commit_all("add key", "2024-03-01T00:00:00+00:00");
    repo.write("README.md", "hello again\n");
    // A child commit dated years before its parent.
    repo.commit_all("backdated", "2019-06-01T00:00:00+00:00");

    let outcome = scanner().scan_git(repo.path()).unwrap();
    assert_eq!(outcome.findings.len(), 1);
    assert_eq!(
        outcome.findings[0].commit.as_deref(),
        Some(introduced.as_str())
    );
    assert_eq!(
        outcome.findings[0].date.as_deref(),
        Some("2024-03-01T00:00:00+00:00")
    );
}

#[test]
fn a_staged_blob_is_reported_at_its_index_path() {
    let repo = TempRepo::new();
    let key = keys::current(Prefix::Personal);
    repo.write("README.md", "hello\n");
    repo.commit_all("start", "2024-01-01T00:00:00+00:00");
    repo.write("config/app.env", format!("{key}\n"));
    repo.git(&["add", "config/app.env"]);

    let outcome = scanner().scan_git(repo.path()).unwrap();
    assert_eq!(outcome.findings.len(), 1);
    let f = &outcome.findings[0];
    assert_eq!(f.path, "config/app.env");
    assert!(f.staged && !f.unreachable, "{f:?}");
    assert_eq!(f.commit, None);
}

#[test]
fn large_files_and_their_deltas_are_read_beside_the_rest() {
    let repo = TempRepo::new();
    // Two versions of a file of over a megabyte, which the pack stores as a base and a delta
    // (decoded by a traversal of their own), beside small files (decoded by the other).
    let lines: String = (0..45_000u32)
        .map(|i| format!("{i:06} {:08x} event row\n", i.wrapping_mul(2_654_435_761)))
        .collect();
    let first = keys::current(Prefix::Personal);
    let second = keys::current(Prefix::Secret);
    let small = keys::current(Prefix::OAuthAccess);
    repo.write("fixtures/events.log", format!("{lines}K={first}\n"));
    repo.write("small.env", format!("TOKEN={small}\n"));
    let added = repo.commit_all("fixture", "2024-01-01T00:00:00+00:00");
    repo.write(
        "fixtures/events.log",
        format!("{lines}K={first}\nNEXT={second}\n"),
    );
    let appended = repo.commit_all("append", "2024-02-01T00:00:00+00:00");
    repo.git(&["gc", "-q"]);
    let (pack, _) = pack_offsets(&repo);
    let listing = repo.git(&["verify-pack", "-v", pack.to_str().unwrap()]);
    // id, type, size, size in pack, offset[, depth, base]: a delta against a large blob.
    let rows: Vec<Vec<&str>> = listing
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    let large_delta = rows.iter().any(|delta| {
        delta.len() == 7
            && rows.iter().any(|base| {
                base.len() >= 5
                    && base[0] == delta[6]
                    && base[1] == "blob"
                    && base[2].parse::<u64>().unwrap() > 1 << 20
            })
    });
    assert!(large_delta, "{listing}");

    let outcome = scanner().scan_git(repo.path()).unwrap();
    assert!(outcome.is_complete(), "{:?}", outcome.warnings);
    let by_mask: HashMap<String, _> = outcome
        .findings
        .iter()
        .map(|f| (f.masked.clone(), f))
        .collect();
    assert_eq!(outcome.findings.len(), 3, "{:#?}", outcome.findings);
    let f = by_mask[&hogguard_secret::mask(&first)];
    assert_eq!((f.path.as_str(), f.line), ("fixtures/events.log", 45_001));
    assert_eq!(f.commit.as_deref(), Some(added.as_str()));
    let f = by_mask[&hogguard_secret::mask(&second)];
    assert_eq!(f.commit.as_deref(), Some(appended.as_str()));
    assert_eq!(f.line, 45_002);
    let f = by_mask[&hogguard_secret::mask(&small)];
    assert_eq!(f.path, "small.env");
}
