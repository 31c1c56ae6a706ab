//! Directory scans: ignore rules, binaries, symlinks and unreadable files.

use hogguard_scan::{ScanOptions, Scanner};
use hogguard_testkit::keys::{self, Prefix};

fn scan(dir: &std::path::Path, options: ScanOptions) -> hogguard_scan::ScanOutcome {
    Scanner::new(&[], options)
        .unwrap()
        .scan_paths(&[dir.to_path_buf()])
        .unwrap()
}

#[test]
fn gitignore_is_honoured_unless_no_ignore() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let key = keys::current(Prefix::Personal);
    std::fs::write(root.join(".gitignore"), "build/\n*.log\n").unwrap();
    std::fs::create_dir_all(root.join("build")).unwrap();
    std::fs::write(root.join("build/out.js"), format!("{key}\n")).unwrap();
    std::fs::write(root.join("debug.log"), format!("{key}\n")).unwrap();
    std::fs::write(
        root.join(".env"),
        format!("POSTHOG_PERSONAL_API_KEY={key}\n"),
    )
    .unwrap();

    let honoured = scan(root, ScanOptions::default());
    let paths: Vec<_> = honoured.findings.iter().map(|f| f.path.clone()).collect();
    assert_eq!(
        paths,
        vec![root.join(".env").display().to_string()],
        "hidden files are scanned"
    );

    let all = scan(
        root,
        ScanOptions {
            no_ignore: true,
            ..Default::default()
        },
    );
    assert_eq!(all.findings.len(), 3);
}

#[test]
fn binaries_are_skipped_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let key = keys::current(Prefix::Secret);
    std::fs::write(dir.path().join("blob.bin"), format!("\0\u{1}\u{2}{key}\n")).unwrap();
    let skipped = scan(dir.path(), ScanOptions::default());
    assert_eq!((skipped.findings.len(), skipped.binary_skipped), (0, 1));
    let scanned = scan(
        dir.path(),
        ScanOptions {
            scan_binary: true,
            ..Default::default()
        },
    );
    assert_eq!(scanned.findings.len(), 1);
}

#[test]
fn symlinks_are_not_followed_and_broken_ones_warn() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let key = keys::current(Prefix::Personal);
    std::fs::write(outside.path().join("secret.env"), format!("{key}\n")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.env"),
        dir.path().join("link.env"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linkdir")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("missing"), dir.path().join("broken")).unwrap();
    std::fs::write(dir.path().join("ok.txt"), "fine\n").unwrap();

    let outcome = scan(dir.path(), ScanOptions::default());
    assert_eq!(
        outcome.findings.len(),
        0,
        "nothing outside the root is read"
    );
    assert_eq!(outcome.inputs, 1);
    assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    assert!(outcome.warnings[0].message.contains("broken symbolic link"));
}

#[test]
fn unreadable_inputs_warn_and_the_scan_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let key = keys::current(Prefix::Personal);
    std::fs::write(dir.path().join("ok.txt"), format!("{key}\n")).unwrap();
    let missing = dir.path().join("missing.env");
    let outcome = Scanner::new(&[], ScanOptions::default())
        .unwrap()
        .scan_paths(&[missing.clone(), dir.path().to_path_buf()])
        .unwrap();
    assert_eq!((outcome.inputs, outcome.findings.len()), (1, 1));
    assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    assert!(
        outcome.warnings[0].path.contains("missing.env"),
        "{:?}",
        outcome.warnings
    );
}

#[test]
fn invalid_utf8_around_a_key_does_not_hide_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = keys::current(Prefix::Personal);
    let mut content = vec![0xff, 0xfe, b' '];
    content.extend_from_slice(key.as_bytes());
    content.extend_from_slice(b" \xc3\x28\n");
    std::fs::write(dir.path().join("latin1.txt"), content).unwrap();
    let outcome = scan(dir.path(), ScanOptions::default());
    assert_eq!(outcome.findings.len(), 1);
    assert_eq!(outcome.findings[0].masked, hogguard_secret::mask(&key));
}

fn scan_named(paths: &[std::path::PathBuf]) -> hogguard_scan::ScanOutcome {
    Scanner::new(&[], ScanOptions::default())
        .unwrap()
        .scan_paths(paths)
        .unwrap()
}

#[test]
fn tracked_files_are_scanned_even_when_ignore_rules_match_them() {
    let repo = hogguard_testkit::git::TempRepo::new();
    let forced = keys::current(Prefix::Personal);
    let in_ignored_dir = keys::current(Prefix::Secret);
    let untracked = keys::current(Prefix::OAuthAccess);
    repo.write(".gitignore", ".env\nbuild/\n");
    repo.write(".ignore", "vendor.txt\n");
    repo.write(".env", format!("POSTHOG_PERSONAL_API_KEY={forced}\n"));
    repo.write("build/keys.js", format!("k = '{in_ignored_dir}'\n"));
    repo.write("vendor.txt", format!("{forced}\n"));
    repo.git(&[
        "add",
        "-f",
        ".gitignore",
        ".ignore",
        ".env",
        "build/keys.js",
        "vendor.txt",
    ]);
    repo.commit_all("force-add", "2024-01-01T00:00:00+00:00");
    // Ignored and untracked: still skipped.
    repo.write("build/local.js", format!("k = '{untracked}'\n"));

    let outcome = scan_named(&[repo.path().to_path_buf()]);
    let root = repo.path().display().to_string();
    let mut found: Vec<_> = outcome
        .findings
        .iter()
        .map(|f| {
            (
                f.path.strip_prefix(&root).unwrap().to_owned(),
                f.masked.clone(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("/.env".to_owned(), hogguard_secret::mask(&forced)),
            (
                "/build/keys.js".to_owned(),
                hogguard_secret::mask(&in_ignored_dir)
            ),
            ("/vendor.txt".to_owned(), hogguard_secret::mask(&forced)),
        ]
    );
}

#[test]
fn a_named_fifo_is_read_as_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let key = keys::current(Prefix::Personal);
    let writer = {
        let (fifo, text) = (fifo.clone(), format!("log\n{key}\n"));
        // Opening a FIFO for writing waits for its reader: the scan below.
        std::thread::spawn(move || std::fs::write(fifo, text).unwrap())
    };
    let outcome = scan_named(std::slice::from_ref(&fifo));
    writer.join().unwrap();
    assert_eq!(outcome.inputs, 1, "{:?}", outcome.warnings);
    assert_eq!(outcome.findings.len(), 1);
    assert_eq!(outcome.findings[0].path, fifo.display().to_string());
    assert_eq!(outcome.findings[0].line, 2);
    assert!(outcome.is_complete());
}

#[test]
fn a_named_file_that_cannot_be_scanned_leaves_the_scan_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("blob.bin");
    std::fs::write(&binary, b"\0\0\0\x01binary").unwrap();
    let named = scan_named(std::slice::from_ref(&binary));
    assert!(!named.is_complete(), "{:?}", named.warnings);
    assert_eq!(named.warnings.len(), 1);
    assert!(
        named.warnings[0].to_string().contains("looks binary"),
        "{}",
        named.warnings[0]
    );
    // Met on a walk, a binary file is skipped by design: the scan is still complete.
    let walked = scan_named(&[dir.path().to_path_buf()]);
    assert!(walked.is_complete(), "{:?}", walked.warnings);
    assert_eq!(walked.binary_skipped, 1);
}

#[test]
fn a_named_symbolic_link_to_a_file_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let key = keys::current(Prefix::Secret);
    std::fs::write(dir.path().join("real.env"), format!("{key}\n")).unwrap();
    let link = dir.path().join("link.env");
    std::os::unix::fs::symlink("real.env", &link).unwrap();
    let outcome = scan_named(&[link]);
    assert_eq!(outcome.findings.len(), 1, "{:?}", outcome.warnings);
}

/// `text` as UTF-16, little- or big-endian, with or without a byte-order mark.
fn utf16(text: &str, little: bool, bom: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    let units = bom.then_some(0xfeff).into_iter().chain(text.encode_utf16());
    for unit in units {
        let pair = if little {
            unit.to_le_bytes()
        } else {
            unit.to_be_bytes()
        };
        bytes.extend(pair);
    }
    bytes
}

#[test]
fn utf16_text_is_decoded_and_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let key = keys::current(Prefix::Personal);
    let text = format!("# written by PowerShell\r\nPOSTHOG_PERSONAL_API_KEY={key}\r\n");
    for (name, little, bom) in [
        ("le-bom.env", true, true),
        ("be-bom.env", false, true),
        ("le.env", true, false),
        ("be.env", false, false),
    ] {
        std::fs::write(dir.path().join(name), utf16(&text, little, bom)).unwrap();
    }
    let outcome = scan_named(&[dir.path().to_path_buf()]);
    assert_eq!(outcome.binary_skipped, 0);
    let mut found: Vec<_> = outcome
        .findings
        .iter()
        .map(|f| {
            (
                f.path.rsplit('/').next().unwrap().to_owned(),
                f.masked.clone(),
                f.line,
            )
        })
        .collect();
    found.sort();
    let mask = hogguard_secret::mask(&key);
    assert_eq!(
        found,
        ["be-bom.env", "be.env", "le-bom.env", "le.env"]
            .map(|n| (n.to_owned(), mask.clone(), 2))
            .to_vec()
    );
}

#[test]
fn secrets_in_file_names_are_masked() {
    let dir = tempfile::tempdir().unwrap();
    let in_name = keys::current(Prefix::Personal);
    let in_content = keys::current(Prefix::Secret);
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join(format!("config/{in_name}.env")),
        format!("{in_content}\n"),
    )
    .unwrap();
    std::os::unix::fs::symlink("nowhere", dir.path().join(format!("{in_name}.link"))).unwrap();
    let outcome = scan_named(&[dir.path().to_path_buf()]);
    assert_eq!(outcome.findings.len(), 1);
    let path = &outcome.findings[0].path;
    assert!(!path.contains(&in_name), "{path}");
    assert!(
        path.ends_with(&format!("config/{}.env", hogguard_secret::mask(&in_name))),
        "{path}"
    );
    assert_eq!(outcome.warnings.len(), 1);
    assert!(!outcome.warnings[0].to_string().contains(&in_name));
}

#[test]
fn a_walk_error_names_its_path_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nonexistent/");
    let outcome = scan_named(std::slice::from_ref(&missing));
    assert_eq!(outcome.warnings.len(), 1);
    let shown = outcome.warnings[0].to_string();
    assert_eq!(shown.matches("nonexistent").count(), 1, "{shown}");
    hogguard_testkit::errors::assert_no_repeated_segment(&outcome.warnings[0]);
}

#[test]
fn identical_findings_beyond_a_limit_are_counted_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let key = keys::current(Prefix::Personal);
    let line = format!("{key}\n");
    std::fs::write(dir.path().join("repeated.log"), line.repeat(20_000)).unwrap();
    let outcome = scan_named(&[dir.path().to_path_buf()]);
    let stored = outcome.findings.len() as u64;
    assert!(stored <= 100, "{stored} findings stored");
    let counted: u64 = outcome.findings.iter().map(|f| 1 + f.repeats).sum();
    assert_eq!(counted, 20_000);
}

#[test]
fn an_absurd_thread_count_is_bounded_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "nothing\n").unwrap();
    let outcome = scan(
        dir.path(),
        ScanOptions {
            threads: Some(usize::MAX),
            ..Default::default()
        },
    );
    assert_eq!(outcome.inputs, 1);
}
