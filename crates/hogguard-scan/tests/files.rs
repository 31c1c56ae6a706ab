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
