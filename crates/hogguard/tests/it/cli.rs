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
