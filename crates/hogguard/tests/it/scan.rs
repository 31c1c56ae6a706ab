//! `hogguard scan` end to end: exit codes, formats, baselines, configuration, inputs that must
//! not pass unread, and that no raw secret ever reaches its output (the harness checks every
//! run's output and the files it writes).

use std::path::Path;

use crate::support::TestEnv;
use hogguard_testkit::keys::Prefix;

/// A work tree with a personal key in `app.py` and a public project key in `web.js`.
fn project() -> (TestEnv, String, String) {
    let env = TestEnv::new();
    let personal = env.key(Prefix::Personal);
    let public = env.key(Prefix::Project);
    env.write("app.py", format!("import os\nKEY = \"{personal}\"\n"));
    env.write("web.js", format!("posthog.init('{public}')\n"));
    (env, personal, public)
}

#[test]
fn secrets_exit_1_and_are_shown_masked_in_every_format() {
    let (env, personal, _) = project();
    for format in ["human", "json", "sarif"] {
        let run = env
            .hogguard(["scan", "--format", format, "--color", "always"])
            .output();
        run.assert_code(1);
        assert!(
            run.stdout.contains(&hogguard_secret::mask(&personal)),
            "{format}"
        );
    }
}

#[test]
fn human_output_names_each_finding_and_sums_up() {
    let (env, _, _) = project();
    let run = env.hogguard(["scan", "--color", "never"]).output();
    insta::assert_snapshot!(run.snapshot(), @r"
    exit code: 1
    ----- stdout -----
    app.py:2:8: critical posthog-personal-api-key phx_...[MASK]
    web.js:1:15: info posthog-project-api-key phc_...[MASK]
    1 secret found, 1 public project key listed (2 inputs, [SIZE] in [DURATION])
    ----- stderr -----
    ");
}

#[test]
fn json_report_has_the_documented_shape() {
    let (env, personal, _) = project();
    let run = env.hogguard(["scan", "--format", "json"]).output();
    let report = run.json();
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
    let (env, personal, _) = project();
    let log = env.hogguard(["scan", "--format", "sarif"]).output().json();
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
    let env = TestEnv::new();
    let public = env.key(Prefix::Project);
    env.write(
        "index.html",
        format!("<script>posthog.init('{public}')</script>\n"),
    );
    let run = env.hogguard(["scan", "--color", "never"]).output();
    run.assert_code(0);
    assert!(run.stdout.contains("info posthog-project-api-key"));
    assert!(
        run.stdout
            .contains("no secrets found, 1 public project key listed")
    );
    let quiet = env.hogguard(["scan", "-q"]).output();
    assert_eq!((quiet.code, quiet.stdout.as_str()), (0, ""));
}

#[test]
fn baselines_suppress_by_content_even_after_the_line_moves() {
    let (env, personal, _) = project();
    env.hogguard(["scan", "--write-baseline", "baseline.json"])
        .output()
        .assert_code(0);
    assert!(
        env.read("baseline.json")
            .contains(&hogguard_secret::fingerprint(&personal))
    );

    // The key moves to another line and file: still suppressed.
    std::fs::remove_file(env.path().join("app.py")).unwrap();
    env.write("moved.py", format!("\n\n\nX = '{personal}'\n"));
    let run = env
        .hogguard(["scan", "--baseline", "baseline.json", "--color", "never"])
        .output();
    run.assert_code(0);
    assert!(
        run.stdout.contains("1 suppressed by the baseline"),
        "{}",
        run.snapshot()
    );

    // A new secret is not.
    let other = env.key(Prefix::Secret);
    env.write("new.env", format!("{other}\n"));
    env.hogguard(["scan", "--baseline", "baseline.json"])
        .output()
        .assert_code(1);
}

#[test]
fn bad_baseline_and_bad_config_exit_2() {
    let (env, _, _) = project();
    env.write("bad.json", "{ not json");
    let run = env.hogguard(["scan", "--baseline", "bad.json"]).output();
    run.assert_code(2);
    assert!(
        run.stderr.contains("baseline bad.json is not valid"),
        "{}",
        run.snapshot()
    );

    env.write("hogguard.toml", "[[scan.rules]]\nid = 'x'\nregex = '('\n");
    let run = env.hogguard(["scan"]).output();
    run.assert_code(2);
    assert!(
        run.stderr.contains("rule `x` is invalid"),
        "{}",
        run.snapshot()
    );

    let run = env.hogguard(["scan", "--config", "missing.toml"]).output();
    run.assert_code(2);
    assert!(run.stderr.contains("missing.toml"), "{}", run.snapshot());

    env.hogguard(["scan", "--format", "xml"])
        .output()
        .assert_code(2);
}

#[test]
fn nothing_scannable_exits_2() {
    let env = TestEnv::new();
    let run = env.hogguard(["scan", "does-not-exist"]).output();
    run.assert_code(2);
    assert!(
        run.stderr.contains("nothing could be scanned"),
        "{}",
        run.snapshot()
    );
}

#[test]
fn custom_rules_come_from_the_config() {
    let env = TestEnv::new();
    env.write(
        "hogguard.toml",
        "[[scan.rules]]\nid = 'internal-token'\nregex = 'itk_([a-z0-9]{24})'\nkeywords = ['itk_']\nseverity = 'critical'\n",
    );
    env.write("a.txt", "t = itk_k3j5h7g9f2d4s6a8q1w2e3r4\n");
    let run = env.hogguard(["scan", "--format", "json"]).output();
    run.assert_code(1);
    let report = run.json();
    assert_eq!(report["findings"][0]["rule"], "internal-token");
    assert_eq!(report["findings"][0]["kind"], "custom");
    assert_eq!(report["findings"][0]["masked"], "k3j5...e3r4");
}

#[test]
fn standard_input_is_scanned_with_a_dash() {
    let env = TestEnv::new();
    let key = env.key(Prefix::OAuthRefresh);
    let run = env
        .hogguard(["scan", "-", "--format", "json"])
        .stdin(format!("log line\ntoken={key}\n"))
        .output();
    run.assert_code(1);
    let report = run.json();
    assert_eq!(report["findings"][0]["path"], "-");
    assert_eq!(report["findings"][0]["line"], 2);
}

#[test]
fn staged_and_git_modes_work_from_the_repository() {
    let env = TestEnv::new();
    let key = env.key(Prefix::Personal);
    env.write("a.txt", "clean\n");
    env.repo().commit_all("base", "2024-01-01T00:00:00+00:00");
    env.hogguard(["scan", "--staged"]).output().assert_code(0);
    env.write("a.txt", format!("{key}\n"));
    env.repo().git(&["add", "a.txt"]);
    let run = env
        .hogguard(["scan", "--staged", "--color", "never"])
        .output();
    run.assert_code(1);
    assert!(
        run.stdout
            .starts_with("a.txt:1:1: critical posthog-personal-api-key"),
        "{}",
        run.snapshot()
    );
    // Staged, not yet committed: the history scan names its index path.
    let run = env.hogguard(["scan", "--git", "--color", "never"]).output();
    run.assert_code(1);
    assert!(
        run.stdout.starts_with("a.txt:1:1:") && run.stdout.contains("staged in the index"),
        "{}",
        run.snapshot()
    );
    let commit = env.repo().commit_all("oops", "2024-02-03T04:05:06+00:00");
    let run = env.hogguard(["scan", "--git", "--color", "never"]).output();
    run.assert_code(1);
    assert!(
        run.stdout.contains(&format!(
            "commit {} by Ada Tester <ada@example.test> on 2024-02-03T04:05:06+00:00",
            &commit[..12]
        )),
        "{}",
        run.snapshot()
    );
}

#[test]
fn colour_follows_the_flag_and_untrusted_paths_are_escaped() {
    let env = TestEnv::new();
    let key = env.key(Prefix::Secret);
    env.write("evil\u{1b}[2J.env", format!("{key}\n"));
    let plain = env.hogguard(["scan", "--color", "never"]).output();
    assert!(!plain.stdout.contains('\u{1b}'), "{:?}", plain.stdout);
    assert!(
        plain.stdout.contains("evil\\u{1b}[2J.env"),
        "{:?}",
        plain.stdout
    );
    let coloured = env.hogguard(["scan", "--color", "always"]).output();
    assert!(
        coloured.stdout.contains("\u{1b}[1;31m"),
        "{:?}",
        coloured.stdout
    );
    assert!(!coloured.stdout.contains("\u{1b}[2J"));
}

#[test]
fn reports_can_go_to_a_file() {
    let (env, _, _) = project();
    let run = env
        .hogguard(["scan", "--format", "sarif", "-o", "out.sarif"])
        .output();
    assert_eq!((run.code, run.stdout.as_str()), (1, ""));
    assert!(env.read("out.sarif").contains("\"2.1.0\""));
    // The verdict still reaches the terminal (issue 12 point 8).
    insta::assert_snapshot!(run.snapshot(), @"
    exit code: 1
    ----- stdout -----
    ----- stderr -----
    1 secret found, 1 public project key listed (2 inputs, [SIZE] in [DURATION]); report written to out.sarif
    ");
}

#[test]
fn help_teaches_by_example() {
    let env = TestEnv::new();
    let run = env.hogguard(["scan", "--help"]).output();
    run.assert_code(0);
    assert!(run.stdout.contains("hogguard scan --staged"));
    assert!(run.stdout.contains("hogguard:allow"));
}

#[test]
fn secrets_in_file_names_are_masked_in_every_output_and_in_baselines() {
    let env = TestEnv::new();
    let in_name = env.key(Prefix::Personal);
    let in_content = env.key(Prefix::Secret);
    env.write(&format!("config/{in_name}.env"), format!("{in_content}\n"));
    // The harness fails the test if either key reaches stdout, stderr or a written file.
    for format in ["human", "json", "sarif"] {
        let run = env
            .hogguard(["scan", "config", "--format", format])
            .output();
        run.assert_code(1);
        assert!(
            run.stdout.contains(&hogguard_secret::mask(&in_name)),
            "{format}: {}",
            run.snapshot()
        );
    }
    env.hogguard(["scan", "config", "--write-baseline", "b.json"])
        .output()
        .assert_code(0);
    assert!(
        env.read("b.json")
            .contains(&hogguard_secret::mask(&in_name))
    );
}

#[test]
fn tracked_files_that_gitignore_matches_are_scanned() {
    let env = TestEnv::new();
    let key = env.key(Prefix::Personal);
    env.write(".gitignore", ".env\n");
    env.write(".env", format!("POSTHOG_PERSONAL_API_KEY={key}\n"));
    env.repo().git(&["add", "-f", ".env", ".gitignore"]);
    env.repo().commit_all("oops", "2024-01-01T00:00:00+00:00");
    let run = env.hogguard(["scan", "--color", "never"]).output();
    run.assert_code(1);
    assert!(
        run.stdout.starts_with(".env:1:26: critical"),
        "{}",
        run.snapshot()
    );
}

#[test]
fn an_incomplete_history_scan_never_exits_0() {
    let env = TestEnv::new();
    env.write("a.txt", "clean\n");
    env.repo().commit_all("a", "2024-01-01T00:00:00+00:00");
    let victim = env.write("b.txt", "unread content\n");
    let (id, object) = env.repo().write_loose_blob(&victim, &[]);
    hogguard_testkit::git::overwrite(&object, b"this is not zlib data");

    let run = env.hogguard(["scan", "--git", "--color", "never"]).output();
    run.assert_code(2);
    assert!(
        run.stderr.contains(&id) && run.stderr.contains("the scan is incomplete"),
        "{}",
        run.snapshot()
    );

    // With a secret found, the secret decides: exit 1.
    let key = env.key(Prefix::Personal);
    env.write("c.txt", format!("{key}\n"));
    env.repo().commit_all("c", "2024-01-02T00:00:00+00:00");
    let run = env.hogguard(["scan", "--git"]).output();
    run.assert_code(1);
    assert!(run.stderr.contains(&id), "{}", run.snapshot());
}

#[test]
fn a_key_in_a_commit_message_fails_a_history_scan() {
    let env = TestEnv::new();
    let key = env.key(Prefix::Personal);
    env.write("a.txt", "clean\n");
    let commit = env
        .repo()
        .commit_all(&format!("use {key} for now"), "2024-01-01T00:00:00+00:00");
    let run = env.hogguard(["scan", "--git", "--color", "never"]).output();
    run.assert_code(1);
    assert!(
        run.stdout
            .starts_with("(commit message):1:5: critical posthog-personal-api-key"),
        "{}",
        run.snapshot()
    );
    assert!(run.stdout.contains(&commit[..12]));
}

/// Runs `script` with bash in the work tree (for process substitution and resource limits),
/// with the `hogguard` binary as `$0`, and checks its output for leaks.
fn through_bash(env: &TestEnv, script: &str) -> (Option<i32>, String, String) {
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_hogguard"))
        .current_dir(env.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    env.assert_no_leak("stdout", &stdout);
    env.assert_no_leak("stderr", &stderr);
    (output.status.code(), stdout, stderr)
}

#[test]
fn pipes_fifos_and_dev_stdin_are_read_not_skipped() {
    let env = TestEnv::new();
    let key = env.key(Prefix::Secret);
    let (code, stdout, stderr) = through_bash(
        &env,
        &format!("\"$0\" scan --format json <(printf 'x\\n{key}\\n')"),
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["findings"][0]["line"], 2);

    env.hogguard(["scan", "/dev/stdin"])
        .stdin(format!("{key}\n"))
        .output()
        .assert_code(1);

    let fifo = env.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let writer = {
        let (fifo, text) = (fifo.clone(), format!("{key}\n"));
        // Opening a FIFO for writing waits for its reader: the scan below.
        std::thread::spawn(move || std::fs::write(fifo, text).unwrap())
    };
    let run = env.hogguard(["scan", "fifo"]).output();
    writer.join().unwrap();
    run.assert_code(1);

    // An empty stream is read, and clean.
    let (code, stdout, stderr) = through_bash(&env, "\"$0\" scan <(true)");
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}

#[test]
fn a_named_file_that_cannot_be_scanned_exits_2() {
    let env = TestEnv::new();
    env.write("app.bin", b"\0\0\x01\x02 not text");
    let run = env.hogguard(["scan", "app.bin"]).output();
    run.assert_code(2);
    assert!(
        run.stderr.contains("app.bin: looks binary"),
        "{}",
        run.snapshot()
    );
    env.hogguard(["scan", "app.bin", "--binary"])
        .output()
        .assert_code(0);
}

#[test]
fn utf16_env_files_are_scanned() {
    let env = TestEnv::new();
    let key = env.key(Prefix::Personal);
    let mut bytes = vec![0xff, 0xfe];
    for unit in format!("POSTHOG_PERSONAL_API_KEY={key}\r\n").encode_utf16() {
        bytes.extend(unit.to_le_bytes());
    }
    env.write(".env", bytes);
    let run = env.hogguard(["scan", "--color", "never"]).output();
    run.assert_code(1);
    assert!(
        run.stdout.starts_with(".env:1:26: critical"),
        "{}",
        run.snapshot()
    );
}

#[test]
fn a_baseline_that_is_a_device_is_refused() {
    let env = TestEnv::new();
    env.write("a.txt", "clean\n");
    let run = env.hogguard(["scan", "--baseline", "/dev/zero"]).output();
    run.assert_code(2);
    assert!(
        run.stderr.contains("/dev/zero is not a regular file"),
        "{}",
        run.snapshot()
    );
}

#[test]
fn an_absurd_thread_count_is_a_usage_error() {
    let env = TestEnv::new();
    let run = env
        .hogguard(["scan", "--threads", "18446744073709551615"])
        .output();
    run.assert_code(2);
    assert!(
        run.stderr.contains("--threads") && !run.stderr.contains("panicked"),
        "{}",
        run.snapshot()
    );
}

#[test]
fn warnings_name_their_path_once() {
    let env = TestEnv::new();
    // The harness also fails on a line that says one thing twice.
    let run = env.hogguard(["scan", "nonexistent/"]).output();
    run.assert_code(2);
    assert_eq!(
        run.stderr.matches("nonexistent/").count(),
        1,
        "{}",
        run.snapshot()
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
    let env = TestEnv::new();
    env.write("a.txt", "clean\n");
    env.repo().commit_all("a", "2024-01-01T00:00:00+00:00");
    write_lying_pack(&env.path().join(".git/objects"), b"small text\n", 8 << 30);
    // Two GiB of address space: allocating the declared 8 GiB fails (and aborts).
    let (code, stdout, stderr) = through_bash(
        &env,
        "ulimit -v 2097152; exec \"$0\" scan --git --color never",
    );
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains(&"ab".repeat(20)), "{stderr}");
}

#[test]
fn keys_inside_base64_are_reported_at_the_blob_and_marked_decoded() {
    let env = TestEnv::new();
    let key = env.key(Prefix::Personal);
    let script = format!(
        "blob=$(printf 'POSTHOG_PERSONAL_API_KEY={key}\\n' | base64 -w0) && \
         printf 'kind: Secret\\ndata:\\n  env: %s\\n' \"$blob\" > secret.yaml && \
         \"$0\" scan --color never secret.yaml"
    );
    let (code, stdout, stderr) = through_bash(&env, &script);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let masked = hogguard_secret::mask(&key);
    assert!(
        stdout.starts_with(&format!(
            "secret.yaml:3:8: critical posthog-personal-api-key {masked}\n    \
             decoded from the base64 text that starts here\n"
        )),
        "{stdout}"
    );
    let report = env
        .hogguard(["scan", "-q", "--format", "json", "secret.yaml"])
        .output()
        .json();
    let finding = &report["findings"][0];
    assert_eq!(finding["decoded_from"], "base64");
    assert_eq!(finding["fingerprint"], hogguard_secret::fingerprint(&key));
}
