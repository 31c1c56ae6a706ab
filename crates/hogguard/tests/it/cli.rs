//! The `hogguard` binary end to end: exit codes, formats, baselines, configuration, and that
//! no raw secret ever reaches its output.

use std::path::Path;

use crate::support::{self, Run, run};
use hogguard_testkit::git::TempRepo;
use hogguard_testkit::keys::{self, Prefix};

fn hogguard(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    run(
        support::hogguard(dir).args(args),
        stdin.unwrap_or_default().as_bytes(),
    )
}

/// Asserts that no output of `run` holds any of `secrets`.
fn assert_no_leak(run: &Run, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !run.stdout.contains(secret),
            "stdout leaks a secret:\n{}",
            run.stdout
        );
        assert!(
            !run.stderr.contains(secret),
            "stderr leaks a secret:\n{}",
            run.stderr
        );
        // A distinctive middle part must not appear either (no partial leaks).
        let middle = &secret[8..secret.len() - 8];
        assert!(!run.stdout.contains(middle) && !run.stderr.contains(middle));
    }
}

fn project() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let personal = keys::current(Prefix::Personal);
    let public = keys::current(Prefix::Project);
    std::fs::write(
        dir.path().join("app.py"),
        format!("import os\nKEY = \"{personal}\"\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("web.js"),
        format!("posthog.init('{public}')\n"),
    )
    .unwrap();
    (dir, personal, public)
}

#[test]
fn secrets_exit_1_and_are_shown_masked_in_every_format() {
    let (dir, personal, public) = project();
    for format in ["human", "json", "sarif"] {
        let run = hogguard(
            dir.path(),
            &["scan", "--format", format, "--color", "always"],
            None,
        );
        assert_eq!(run.code, 1, "{format}: {}", run.stderr);
        assert!(
            run.stdout.contains(&hogguard_secret::mask(&personal)),
            "{format}"
        );
        assert_no_leak(&run, &[&personal, &public]);
    }
}

#[test]
fn json_report_has_the_documented_shape() {
    let (dir, personal, _) = project();
    let run = hogguard(dir.path(), &["scan", "--format", "json"], None);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["version"], 1);
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2);
    let secret = &findings[0];
    for field in [
        "rule",
        "kind",
        "secret",
        "severity",
        "path",
        "line",
        "column",
        "commit",
        "author",
        "date",
        "masked",
        "fingerprint",
    ] {
        assert!(secret.get(field).is_some(), "missing {field}");
    }
    assert_eq!(secret["rule"], "posthog-personal-api-key");
    assert_eq!(secret["kind"], "personal_api_key");
    assert_eq!(secret["secret"], true);
    assert_eq!(secret["severity"], "critical");
    assert_eq!(
        (
            secret["path"].as_str(),
            secret["line"].as_u64(),
            secret["column"].as_u64()
        ),
        (Some("app.py"), Some(2), Some(8))
    );
    assert_eq!(
        secret["fingerprint"],
        hogguard_secret::fingerprint(&personal)
    );
    assert_eq!(findings[1]["kind"], "project_api_key");
    assert_eq!(findings[1]["secret"], false);
    assert_eq!(findings[1]["severity"], "info");
    assert_eq!(report["summary"]["secrets"], 1);
    assert_eq!(report["summary"]["findings"], 2);
    assert_eq!(report["summary"]["inputs"], 2);
}

#[test]
fn sarif_is_2_1_0_with_content_fingerprints() {
    let (dir, personal, _) = project();
    let run = hogguard(dir.path(), &["scan", "--format", "sarif"], None);
    let log: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    let run0 = &log["runs"][0];
    assert_eq!(run0["tool"]["driver"]["name"], "hogguard");
    let results = run0["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["ruleId"], "posthog-personal-api-key");
    assert_eq!(results[0]["level"], "error");
    assert_eq!(
        results[0]["partialFingerprints"]["hogguardFingerprint/v1"],
        hogguard_secret::fingerprint(&personal)
    );
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "app.py"
    );
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["region"]["startLine"],
        2
    );
    let rule_index = results[0]["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(
        run0["tool"]["driver"]["rules"][rule_index]["id"],
        "posthog-personal-api-key"
    );
    assert_eq!(results[1]["level"], "note");
}

#[test]
fn public_project_keys_never_fail_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let public = keys::current(Prefix::Project);
    std::fs::write(
        dir.path().join("index.html"),
        format!("<script>posthog.init('{public}')</script>\n"),
    )
    .unwrap();
    let run = hogguard(dir.path(), &["scan", "--color", "never"], None);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("info posthog-project-api-key"));
    assert!(
        run.stdout
            .contains("no secrets found, 1 public project key listed")
    );
    let quiet = hogguard(dir.path(), &["scan", "-q"], None);
    assert_eq!((quiet.code, quiet.stdout.as_str()), (0, ""));
}

#[test]
fn baselines_suppress_by_content_even_after_the_line_moves() {
    let (dir, personal, _) = project();
    let run = hogguard(
        dir.path(),
        &["scan", "--write-baseline", "baseline.json"],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let baseline = std::fs::read_to_string(dir.path().join("baseline.json")).unwrap();
    assert!(baseline.contains(&hogguard_secret::fingerprint(&personal)));
    assert!(!baseline.contains(&personal));

    // The key moves to another line and file: still suppressed.
    std::fs::remove_file(dir.path().join("app.py")).unwrap();
    std::fs::write(
        dir.path().join("moved.py"),
        format!("\n\n\nX = '{personal}'\n"),
    )
    .unwrap();
    let run = hogguard(
        dir.path(),
        &["scan", "--baseline", "baseline.json", "--color", "never"],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.contains("1 suppressed by the baseline"),
        "{}",
        run.stdout
    );

    // A new secret is not.
    let other = keys::current(Prefix::Secret);
    std::fs::write(dir.path().join("new.env"), format!("{other}\n")).unwrap();
    let run = hogguard(dir.path(), &["scan", "--baseline", "baseline.json"], None);
    assert_eq!(run.code, 1);
    assert_no_leak(&run, &[&personal, &other]);
}

#[test]
fn bad_baseline_and_bad_config_exit_2() {
    let (dir, _, _) = project();
    std::fs::write(dir.path().join("bad.json"), "{ not json").unwrap();
    let run = hogguard(dir.path(), &["scan", "--baseline", "bad.json"], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("baseline bad.json"), "{}", run.stderr);

    std::fs::write(
        dir.path().join("hogguard.toml"),
        "[[scan.rules]]\nid = 'x'\nregex = '('\n",
    )
    .unwrap();
    let run = hogguard(dir.path(), &["scan"], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("rule `x` is invalid"), "{}", run.stderr);

    let run = hogguard(dir.path(), &["scan", "--config", "missing.toml"], None);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("cannot read missing.toml"),
        "{}",
        run.stderr
    );

    let run = hogguard(dir.path(), &["scan", "--format", "xml"], None);
    assert_eq!(run.code, 2);
}

#[test]
fn nothing_scannable_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let run = hogguard(dir.path(), &["scan", "does-not-exist"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("nothing could be scanned"),
        "{}",
        run.stderr
    );
}

#[test]
fn custom_rules_come_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hogguard.toml"),
        "[[scan.rules]]\nid = 'internal-token'\nregex = 'itk_([a-z0-9]{24})'\nkeywords = ['itk_']\nseverity = 'critical'\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.txt"),
        "t = itk_k3j5h7g9f2d4s6a8q1w2e3r4\n",
    )
    .unwrap();
    let run = hogguard(dir.path(), &["scan", "--format", "json"], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["findings"][0]["rule"], "internal-token");
    assert_eq!(report["findings"][0]["kind"], "custom");
    assert_eq!(
        report["findings"][0]["masked"],
        "k3j5...r4".replace("r4", "e3r4")
    );
}

#[test]
fn standard_input_is_scanned_with_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    let key = keys::current(Prefix::OAuthRefresh);
    let run = hogguard(
        dir.path(),
        &["scan", "-", "--format", "json"],
        Some(&format!("log line\ntoken={key}\n")),
    );
    assert_eq!(run.code, 1);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["findings"][0]["path"], "-");
    assert_eq!(report["findings"][0]["line"], 2);
    assert_no_leak(&run, &[&key]);
}

#[test]
fn staged_and_git_modes_work_from_the_repository() {
    let repo = TempRepo::new();
    let key = keys::current(Prefix::Personal);
    repo.write("a.txt", "clean\n");
    repo.commit_all("base", "2024-01-01T00:00:00+00:00");
    assert_eq!(hogguard(repo.path(), &["scan", "--staged"], None).code, 0);
    repo.write("a.txt", format!("{key}\n"));
    repo.git(&["add", "a.txt"]);
    let run = hogguard(repo.path(), &["scan", "--staged", "--color", "never"], None);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .starts_with("a.txt:1:1: critical posthog-personal-api-key"),
        "{}",
        run.stdout
    );
    let commit = repo.commit_all("oops", "2024-02-03T04:05:06+00:00");
    let run = hogguard(repo.path(), &["scan", "--git", "--color", "never"], None);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains(&format!(
            "commit {} by Ada Tester <ada@example.test> on 2024-02-03T04:05:06+00:00",
            &commit[..12]
        )),
        "{}",
        run.stdout
    );
    assert_no_leak(&run, &[&key]);
}

#[test]
fn colour_follows_the_flag_and_untrusted_paths_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let key = keys::current(Prefix::Secret);
    std::fs::write(dir.path().join("evil\u{1b}[2J.env"), format!("{key}\n")).unwrap();
    let plain = hogguard(dir.path(), &["scan", "--color", "never"], None);
    assert!(!plain.stdout.contains('\u{1b}'), "{:?}", plain.stdout);
    assert!(
        plain.stdout.contains("evil\\u{1b}[2J.env"),
        "{:?}",
        plain.stdout
    );
    let coloured = hogguard(dir.path(), &["scan", "--color", "always"], None);
    assert!(
        coloured.stdout.contains("\u{1b}[1;31m"),
        "{:?}",
        coloured.stdout
    );
    assert!(!coloured.stdout.contains("\u{1b}[2J"));
}

#[test]
fn reports_can_go_to_a_file() {
    let (dir, personal, _) = project();
    let run = hogguard(
        dir.path(),
        &["scan", "--format", "sarif", "-o", "out.sarif"],
        None,
    );
    assert_eq!((run.code, run.stdout.as_str()), (1, ""));
    let written = std::fs::read_to_string(dir.path().join("out.sarif")).unwrap();
    assert!(written.contains("\"2.1.0\""));
    assert!(!written.contains(&personal));
}

#[test]
fn help_teaches_by_example() {
    let dir = tempfile::tempdir().unwrap();
    let run = hogguard(dir.path(), &["scan", "--help"], None);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("hogguard scan --staged"));
    assert!(run.stdout.contains("hogguard:allow"));
}

#[test]
fn secrets_in_file_names_are_masked_in_every_output_and_in_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let in_name = keys::current(Prefix::Personal);
    let in_content = keys::current(Prefix::Secret);
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join(format!("config/{in_name}.env")),
        format!("{in_content}\n"),
    )
    .unwrap();
    for format in ["human", "json", "sarif"] {
        let run = hogguard(dir.path(), &["scan", "config", "--format", format], None);
        assert_eq!(run.code, 1, "{format}: {}", run.stderr);
        assert!(
            run.stdout.contains(&hogguard_secret::mask(&in_name)),
            "{format}: {}",
            run.stdout
        );
        assert_no_leak(&run, &[&in_name, &in_content]);
    }
    let run = hogguard(
        dir.path(),
        &["scan", "config", "--write-baseline", "b.json"],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_no_leak(&run, &[&in_name, &in_content]);
    let written = std::fs::read_to_string(dir.path().join("b.json")).unwrap();
    assert!(
        !written.contains(&in_name[8..in_name.len() - 8]),
        "{written}"
    );
}

#[test]
fn tracked_files_that_gitignore_matches_are_scanned() {
    let repo = TempRepo::new();
    let key = keys::current(Prefix::Personal);
    repo.write(".gitignore", ".env\n");
    repo.write(".env", format!("POSTHOG_PERSONAL_API_KEY={key}\n"));
    repo.git(&["add", "-f", ".env", ".gitignore"]);
    repo.commit_all("oops", "2024-01-01T00:00:00+00:00");
    let run = hogguard(repo.path(), &["scan", "--color", "never"], None);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with(".env:1:26: critical"),
        "{}",
        run.stdout
    );
    assert_no_leak(&run, &[&key]);
}

#[test]
fn an_incomplete_history_scan_never_exits_0() {
    let repo = TempRepo::new();
    repo.write("a.txt", "clean\n");
    repo.commit_all("a", "2024-01-01T00:00:00+00:00");
    let victim = repo.write("b.txt", "unread content\n");
    let id = repo
        .git(&["hash-object", "-w", victim.to_str().unwrap()])
        .trim()
        .to_owned();
    let object = repo
        .path()
        .join(".git/objects")
        .join(&id[..2])
        .join(&id[2..]);
    std::fs::set_permissions(&object, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::write(&object, b"this is not zlib data").unwrap();

    let run = hogguard(repo.path(), &["scan", "--git", "--color", "never"], None);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(&id), "{}", run.stderr);
    assert!(run.stderr.contains("incomplete"), "{}", run.stderr);

    // With a secret found, the secret decides: exit 1.
    let key = keys::current(Prefix::Personal);
    repo.write("c.txt", format!("{key}\n"));
    repo.commit_all("c", "2024-01-02T00:00:00+00:00");
    let run = hogguard(repo.path(), &["scan", "--git"], None);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(&id), "{}", run.stderr);
    assert_no_leak(&run, &[&key]);
}

#[test]
fn a_key_in_a_commit_message_fails_a_history_scan() {
    let repo = TempRepo::new();
    let key = keys::current(Prefix::Personal);
    repo.write("a.txt", "clean\n");
    let commit = repo.commit_all(&format!("use {key} for now"), "2024-01-01T00:00:00+00:00");
    let run = hogguard(repo.path(), &["scan", "--git", "--color", "never"], None);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .starts_with("(commit message):1:5: critical posthog-personal-api-key"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&commit[..12]));
    assert_no_leak(&run, &[&key]);
}

/// Runs `hogguard` through bash, for process substitution and resource limits.
fn through_bash(dir: &Path, script: &str) -> (Option<i32>, String, String) {
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_hogguard"))
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn pipes_fifos_and_dev_stdin_are_read_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let key = keys::current(Prefix::Secret);
    let (code, stdout, stderr) = through_bash(
        dir.path(),
        &format!("\"$0\" scan --format json <(printf 'x\\n{key}\\n')"),
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(!stdout.contains(&key) && !stderr.contains(&key));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["findings"][0]["line"], 2);

    let run = hogguard(
        dir.path(),
        &["scan", "/dev/stdin"],
        Some(&format!("{key}\n")),
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_no_leak(&run, &[&key]);

    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let writer = {
        let (fifo, text) = (fifo.clone(), format!("{key}\n"));
        std::thread::spawn(move || std::fs::write(fifo, text).unwrap())
    };
    let run = hogguard(dir.path(), &["scan", "fifo"], None);
    writer.join().unwrap();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);

    // Nothing read is not clean.
    let (code, stdout, stderr) = through_bash(dir.path(), "\"$0\" scan <(true)");
    assert_eq!(
        code,
        Some(0),
        "an empty stream is read and clean: {stdout}{stderr}"
    );
}

#[test]
fn a_named_file_that_cannot_be_scanned_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.bin"), b"\0\0\x01\x02 not text").unwrap();
    let run = hogguard(dir.path(), &["scan", "app.bin"], None);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("app.bin"), "{}", run.stderr);
    let run = hogguard(dir.path(), &["scan", "app.bin", "--binary"], None);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[test]
fn utf16_env_files_are_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let key = keys::current(Prefix::Personal);
    let mut bytes = vec![0xff, 0xfe];
    for unit in format!("POSTHOG_PERSONAL_API_KEY={key}\r\n").encode_utf16() {
        bytes.extend(unit.to_le_bytes());
    }
    std::fs::write(dir.path().join(".env"), bytes).unwrap();
    let run = hogguard(dir.path(), &["scan", "--color", "never"], None);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with(".env:1:26: critical"),
        "{}",
        run.stdout
    );
    assert_no_leak(&run, &[&key]);
}

#[test]
fn a_baseline_that_is_a_device_is_refused() {
    let (dir, _, _) = project();
    let run = hogguard(dir.path(), &["scan", "--baseline", "/dev/zero"], None);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("not a regular file"), "{}", run.stderr);
}

#[test]
fn an_absurd_thread_count_is_a_usage_error() {
    let (dir, _, _) = project();
    let run = hogguard(
        dir.path(),
        &["scan", "--threads", "18446744073709551615"],
        None,
    );
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("--threads"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn warnings_name_their_path_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = hogguard(dir.path(), &["scan", "nonexistent/"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("nonexistent/").count(),
        1,
        "{}",
        run.stderr
    );
}

/// A pack of one blob whose header declares `declared` bytes while its zlib stream holds
/// `content`, with its version 2 index: what a hostile repository can hold.
fn write_lying_pack(objects: &Path, content: &[u8], declared: u64) {
    let mut pack = b"PACK\0\0\0\x02\0\0\0\x01".to_vec();
    let mut size = declared;
    let mut byte = (3 << 4) | (size & 0x0f) as u8;
    size >>= 4;
    while size != 0 {
        pack.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    pack.push(byte);
    // A zlib stream of one stored block.
    let len = u16::try_from(content.len()).unwrap();
    pack.extend([0x78, 0x01, 0x01]);
    pack.extend(len.to_le_bytes());
    pack.extend((!len).to_le_bytes());
    pack.extend(content);
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in content {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    pack.extend(((b << 16) | a).to_be_bytes());
    let checksum = [7u8; 20];
    pack.extend(checksum);

    let id = [0xab_u8; 20];
    let mut index = b"\xfftOc\0\0\0\x02".to_vec();
    for first in 0..=255u8 {
        index.extend(u32::from(first >= id[0]).to_be_bytes());
    }
    index.extend(id);
    index.extend(0u32.to_be_bytes());
    index.extend(12u32.to_be_bytes());
    index.extend(checksum);
    index.extend([9u8; 20]);
    let dir = objects.join("pack");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pack-lying.pack"), pack).unwrap();
    std::fs::write(dir.join("pack-lying.idx"), index).unwrap();
}

#[test]
fn a_pack_declaring_a_huge_blob_is_never_allocated_whole() {
    let repo = TempRepo::new();
    repo.write("a.txt", "clean\n");
    repo.commit_all("a", "2024-01-01T00:00:00+00:00");
    write_lying_pack(&repo.path().join(".git/objects"), b"small text\n", 8 << 30);
    // Two GiB of address space: allocating the declared 8 GiB fails (and aborts).
    let (code, stdout, stderr) = through_bash(
        repo.path(),
        "ulimit -v 2097152; exec \"$0\" scan --git --color never",
    );
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains(&"ab".repeat(20)), "{stderr}");
}
