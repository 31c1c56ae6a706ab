//! No command prints a secret, whatever input it chokes on: parser errors that quote their
//! input (env files, hogguard.toml) show masks, and untrusted text cannot forge lines.

use hogguard_testkit::keys::Prefix;

use crate::support::TestEnv;

const PRODUCTION: &str = "[environments.production]\nenv_file = '.env.production'\n\
     [environments.production.credentials]\npersonal_api_key = 'POSTHOG_PERSONAL_API_KEY'\n";

#[test]
fn a_key_alone_on_an_env_file_line_is_masked_in_every_error() {
    let env = TestEnv::new();
    let key = env.key(Prefix::Personal);
    env.write("hogguard.toml", PRODUCTION);
    env.write(".env.production", format!("A=1\n{key}\n"));
    env.posthog();
    for args in [&["keys"][..], &["check", "--offline"], &["init", "--force"]] {
        // The harness fails the test if the key reaches stdout, stderr or a written file.
        let run = env.hogguard(args).output();
        assert!(
            run.stderr.contains("phx_...") || run.stdout.contains("phx_..."),
            "{args:?} names the line by its mask:\n{}",
            run.snapshot()
        );
    }
}

#[test]
fn an_unquoted_key_in_the_configuration_is_masked_in_every_command() {
    let env = TestEnv::new();
    let key = env.key(Prefix::Personal);
    env.write(
        "hogguard.toml",
        format!("[environments.production.credentials]\npersonal_api_key = {key}\n"),
    );
    for args in [
        &["scan", "."][..],
        &["check", "--offline"],
        &["keys"],
        &["rotate", "production", "personal_api_key", "--dry-run"],
        &["audit", "verify"],
    ] {
        let run = env.hogguard(args).output();
        run.assert_code(2);
        assert!(
            run.stderr.contains("hogguard.toml") && run.stderr.contains("phx_..."),
            "{args:?}:\n{}",
            run.snapshot()
        );
    }
}

#[test]
fn an_action_with_a_line_break_cannot_forge_an_audit_line() {
    let env = TestEnv::new();
    env.write("hogguard.toml", "[audit]\n");
    env.hogguard([
        "audit",
        "log",
        "--action",
        "key.read\n    9 2024-01-01T00:00:00Z mallory key.revoke all success",
        "--resource",
        "phx_...abcd",
        "--result",
        "success",
    ])
    .output()
    .assert_code(0);
    let shown = env.hogguard(["audit", "show"]).output();
    shown.assert_code(0);
    assert_eq!(shown.stdout.lines().count(), 1, "{}", shown.stdout);
    assert!(
        shown.stdout.contains("key.read\\n    9 2024"),
        "{}",
        shown.stdout
    );
}

#[test]
fn a_closed_output_pipe_keeps_the_exit_code_the_results_call_for() {
    let env = TestEnv::new();
    let key = env.key(Prefix::Personal);
    env.write("app.py", format!("KEY = '{key}'\n"));
    let scan = env.hogguard(["scan", "."]).closed_stdout().output();
    assert_eq!(scan.code, 1, "findings: {}", scan.stderr);
    assert_eq!(scan.stderr, "", "stops writing quietly");
    // `check` with a failing item (a secret in a tracked file).
    env.repo().commit_all("leak", "2024-01-01T00:00:00+00:00");
    let check = env
        .hogguard(["check", "--offline"])
        .closed_stdout()
        .output();
    assert_eq!(check.code, 1, "a failing item: {}", check.stderr);
    std::fs::remove_file(env.path().join("app.py")).unwrap();
    let clean = env.hogguard(["scan", "."]).closed_stdout().output();
    assert_eq!(clean.code, 0, "{}", clean.stderr);
}

#[test]
fn private_state_is_private_under_umask_000() {
    let env = TestEnv::new();
    env.write("hogguard.toml", "[audit]\n");
    env.audit_log("a").umask(0o000).output().assert_code(0);
    let mode = |relative: &str| {
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(env.path().join(relative))
                .unwrap()
                .permissions(),
        ) & 0o777
    };
    assert_eq!(mode(".hogguard"), 0o700);
    assert_eq!(mode(".hogguard/audit.jsonl"), 0o600);
}
