use super::*;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

use hogguard_testkit::child::{self, ChildTest};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn replace_keeps_the_mode_of_the_file_it_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".gitignore");
    fs::write(&path, "old\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    replace(&path, b"new\n", PRIVATE_FILE_MODE).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"new\n");
    assert_eq!(mode(&path), 0o644);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    replace(&path, b"newer\n", DEFAULT_FILE_MODE).unwrap();
    assert_eq!(mode(&path), 0o640);
    assert_eq!(names_in(dir.path()), [".gitignore"]);
}

#[test]
fn replace_keeps_owner_and_group_or_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    fs::write(&path, "A=1\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let nobody = 65534;
    let chowned = std::os::unix::fs::chown(&path, Some(nobody), Some(nobody)).is_ok();
    let result = replace(&path, b"A=2\n", PRIVATE_FILE_MODE);
    let metadata = fs::metadata(&path).unwrap();
    if chowned {
        // Root: the file stays nobody's.
        result.unwrap();
        assert_eq!((metadata.uid(), metadata.gid()), (nobody, nobody));
        assert_eq!(fs::read(&path).unwrap(), b"A=2\n");
    } else {
        // Not root: our own file, and our own group, so nothing to change.
        result.unwrap();
        assert_eq!(metadata.uid(), fs::metadata(dir.path()).unwrap().uid());
    }
    assert_eq!(metadata.mode() & 0o7777, 0o640);
}

#[test]
fn a_new_file_gets_the_mode_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.env");
    replace(&path, b"K=v\n", PRIVATE_FILE_MODE).unwrap();
    assert_eq!(mode(&path), PRIVATE_FILE_MODE);
}

#[test]
fn replace_follows_a_symbolic_link() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("real.env");
    let link = dir.path().join("link.env");
    fs::write(&target, "A=1\n").unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    replace(&link, b"A=2\n", PRIVATE_FILE_MODE).unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(&target).unwrap(), b"A=2\n");
}

#[test]
fn replace_refuses_what_is_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let error = replace(dir.path(), b"x", DEFAULT_FILE_MODE).unwrap_err();
    assert!(matches!(error, Error::NotRegularFile { .. }), "{error}");
    let error = replace(Path::new("/dev/null"), b"x", DEFAULT_FILE_MODE).unwrap_err();
    assert!(matches!(error, Error::NotRegularFile { .. }), "{error}");
}

#[test]
fn a_failing_hook_leaves_the_target_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.env");
    fs::write(&path, "old").unwrap();
    let result = replace_with_hook(&path, b"new", PRIVATE_FILE_MODE, || {
        Err(Error::Locked {
            path: PathBuf::from("x"),
            waited: Duration::ZERO,
        })
    });
    assert!(matches!(result, Err(Error::Locked { .. })));
    assert_eq!(fs::read(&path).unwrap(), b"old");
    assert_eq!(names_in(dir.path()), ["a.env"]);
}

#[test]
fn concurrent_replacements_never_share_a_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.env");
    fs::write(&path, "start").unwrap();
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let path = path.clone();
            std::thread::spawn(move || {
                for round in 0..50 {
                    replace(&path, format!("{writer}-{round}").as_bytes(), 0o600).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let last = fs::read_to_string(&path).unwrap();
    assert!(last.ends_with("-49"), "{last}");
    assert_eq!(names_in(dir.path()), ["shared.env"]);
}

#[test]
fn read_regular_refuses_devices_fifos_and_large_files() {
    let dir = tempfile::tempdir().unwrap();
    let error = read_regular(Path::new("/dev/zero"), 1 << 20).unwrap_err();
    assert!(matches!(error, Error::NotRegularFile { .. }), "{error}");
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Refused without opening, so without waiting for a writer.
    let error = read_regular(&fifo, 1 << 20).unwrap_err();
    assert!(matches!(error, Error::NotRegularFile { .. }), "{error}");
    let big = dir.path().join("big");
    fs::write(&big, vec![b'a'; 101]).unwrap();
    let error = read_regular(&big, 100).unwrap_err();
    assert!(
        matches!(error, Error::TooLarge { limit: 100, .. }),
        "{error}"
    );
    assert_eq!(read_regular(&big, 101).unwrap().len(), 101);
    let error = read_regular(&dir.path().join("missing"), 10).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::NotFound);
    assert_eq!(
        error.to_string(),
        format!("cannot read {}", dir.path().join("missing").display())
    );
}

#[test]
fn a_held_lock_is_busy_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.lock");
    let held = Lock::acquire(&path, Duration::ZERO).unwrap();
    let busy = Lock::acquire(&path, Duration::from_millis(30)).unwrap_err();
    assert!(matches!(busy, Error::Locked { .. }), "{busy}");
    assert_eq!(busy.kind(), io::ErrorKind::WouldBlock);
    drop(held);
    Lock::acquire(&path, Duration::ZERO).unwrap();
    assert_eq!(mode(&path), PRIVATE_FILE_MODE);
}

#[test]
fn private_state_is_private_under_umask_000() {
    let dir = tempfile::tempdir().unwrap();
    ChildTest::new("tests::create_private_state_in_child")
        .under("umask 000")
        .dir(dir.path())
        .run();
    let state = dir.path().join("state");
    assert_eq!(mode(&state), PRIVATE_DIR_MODE);
    assert_eq!(mode(&state.join("nested")), PRIVATE_DIR_MODE);
    assert_eq!(mode(&state.join("nested/store")), PRIVATE_FILE_MODE);
    assert_eq!(mode(&state.join("replaced")), PRIVATE_FILE_MODE);
    // The control: an ordinary file made in the same child follows the umask.
    assert_eq!(mode(&state.join("ordinary")), 0o666);
}

/// Runs only as the child of [`private_state_is_private_under_umask_000`].
#[test]
fn create_private_state_in_child() {
    let Some(dir) = child::dir() else {
        return;
    };
    let state = dir.join("state");
    create_private_dir_all(&state.join("nested")).unwrap();
    private_file()
        .write(true)
        .create(true)
        .truncate(true)
        .open(state.join("nested/store"))
        .unwrap();
    replace(&state.join("replaced"), b"x", PRIVATE_FILE_MODE).unwrap();
    replace(&state.join("ordinary"), b"x", DEFAULT_FILE_MODE).unwrap();
}

#[test]
fn sidecars_sit_beside_their_file() {
    assert_eq!(
        sidecar(Path::new("/var/log/audit.jsonl"), ".lock"),
        Path::new("/var/log/audit.jsonl.lock")
    );
    assert_eq!(parent_dir(Path::new("audit.jsonl")), Path::new("."));
}

#[test]
fn leftover_temporaries_are_removed_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join(".env");
    fs::write(&target, "A=1\n").unwrap();
    // The name replace gives its temporary file for `.env`.
    fs::write(dir.path().join("..env.0123456789abcdef.tmp"), "half").unwrap();
    fs::write(dir.path().join(".env.local"), "B=2\n").unwrap();
    fs::write(dir.path().join(".env.notatemp.tmp"), "keep").unwrap();
    assert_eq!(remove_leftover_temporaries(&target).unwrap(), 1);
    assert_eq!(
        names_in(dir.path()),
        [".env", ".env.local", ".env.notatemp.tmp"]
    );
}

#[test]
fn open_regular_refuses_what_read_regular_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let mut read = OpenOptions::new();
    read.read(true);
    let error = open_regular(Path::new("/dev/zero"), &read).unwrap_err();
    assert!(matches!(error, Error::NotRegularFile { .. }), "{error}");
    let file = dir.path().join("log");
    fs::write(&file, "x").unwrap();
    open_regular(&file, &read).unwrap();
}
