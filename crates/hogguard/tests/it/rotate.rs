//! `hogguard rotate` end to end: a webhook secret with its grace period, and a project secret
//! key against the PostHog stand-in, with the env file, the journal and the audit log checked;
//! rotations side by side, and what a rotation leaves on disk (owners, modes, private state).

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::Child;
use std::sync::LazyLock;

use hogguard_testkit::child::{self, ChildTest};
use hogguard_testkit::keys;
use hogguard_testkit::posthog::{MembershipLevel, PersonalKeySpec, ProjectSecretKeySpec, UserSpec};

use crate::support::{Output, TestEnv};

/// A rotation id (12 hex digits), which differs on every run.
static ROTATION_ID: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"\b[0-9a-f]{12}\b").unwrap());

/// [`Output::snapshot`] with rotation ids written `[ROTATION]`.
fn snapshot(output: &Output<'_>) -> String {
    ROTATION_ID
        .replace_all(&output.snapshot(), "[ROTATION]")
        .into_owned()
}

/// Two webhook secrets of one environment, kept in one env file; no audit log.
const TWO_SECRETS: &str = "[environments.production]\nenv_file = '.env.production'\n\
     [environments.production.credentials]\nwebhook_secret = 'WEBHOOK_SECRET'\n\
     other_webhook_secret = 'OTHER_WEBHOOK_SECRET'\n";

/// A scratch repository configured by `config`, whose `.env.production` holds a seeded
/// `WEBHOOK_SECRET`.
fn webhook_env(config: &str) -> TestEnv {
    let env = TestEnv::new();
    let old = keys::webhook_secret();
    env.seed(&old);
    env.write("hogguard.toml", config);
    env.write(".env.production", format!("WEBHOOK_SECRET={old}\n"));
    env
}

/// Watches the `WEBHOOK_SECRET` a rotation just stored for leaks in later runs.
fn seed_new_secret(env: &TestEnv) {
    env.seed(&env_value(env, ".env.production", "WEBHOOK_SECRET").unwrap());
}

/// The value of `variable` in the env file at `relative`.
fn env_value(env: &TestEnv, relative: &str, variable: &str) -> Option<String> {
    hogguard_dotenv::parse(&env.read(relative))
        .unwrap()
        .get(variable)
        .map(str::to_owned)
}

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

/// Waits for `child` to end and returns its exit code and standard error, after checking that
/// neither output holds a seeded secret.
fn finish(env: &TestEnv, child: Child) -> (i32, String) {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    env.assert_no_leak("stdout", &stdout);
    env.assert_no_leak("stderr", &stderr);
    (output.status.code().expect("exited, not killed"), stderr)
}

#[test]
fn a_webhook_secret_rotates_with_a_grace_period() {
    let env = TestEnv::new();
    let old = keys::webhook_secret();
    env.seed(&old);
    env.write(
        "hogguard.toml",
        "[environments.production]\nenv_file = '.env.production'\nverify_command = 'true'\n\
         [environments.production.credentials]\nwebhook_secret = 'POSTHOG_WEBHOOK_SECRET'\n[audit]\npath = 'audit.jsonl'\n",
    );
    let original = format!("# signing\nPOSTHOG_WEBHOOK_SECRET='{old}'\nOTHER=1\n");
    env.write(".env.production", &original);

    let plan = env
        .hogguard(["rotate", "production", "webhook_secret", "--dry-run"])
        .output();
    plan.assert_code(0);
    assert_eq!(env.read(".env.production"), original);

    let started = env
        .hogguard(["rotate", "production", "webhook_secret"])
        .output();
    started.assert_code(0);
    let new = env_value(&env, ".env.production", "POSTHOG_WEBHOOK_SECRET").unwrap();
    assert!(new.starts_with("whsec_") && new != old);
    // From here on every run, and what the earlier ones printed, is checked for it too.
    env.seed(&new);
    for output in [&plan.stdout, &plan.stderr, &started.stdout, &started.stderr] {
        env.assert_no_leak("an earlier run", output);
    }
    assert_eq!(
        env_value(&env, ".env.production", "POSTHOG_WEBHOOK_SECRET_PREVIOUS"),
        Some(old.clone()),
        "the old secret stays accepted"
    );
    assert_eq!(
        env_value(&env, ".env.production", "OTHER").as_deref(),
        Some("1")
    );

    let again = env
        .hogguard(["rotate", "production", "webhook_secret"])
        .output();
    assert_eq!(
        again.code, 2,
        "a second rotation is refused while one is open: {}",
        again.stderr
    );

    env.hogguard(["rotate", "production", "webhook_secret", "--finish"])
        .output()
        .assert_code(0);
    let after = env.read(".env.production");
    assert!(after.starts_with("# signing\n"), "{after}");
    assert_eq!(
        env_value(&env, ".env.production", "POSTHOG_WEBHOOK_SECRET"),
        Some(new)
    );
    assert_eq!(
        env_value(&env, ".env.production", "POSTHOG_WEBHOOK_SECRET_PREVIOUS").unwrap_or_default(),
        ""
    );
    assert!(env.read("audit.jsonl").contains("key.rotate"));
}

#[test]
fn a_project_secret_key_is_replaced_without_a_gap() {
    let env = TestEnv::new();
    let hog = env.posthog();
    let organization = hog.add_organization("Acme");
    let project = hog.add_project(&organization, "Web");
    let admin = hog
        .add_user(UserSpec::new("ops@acme.test").member_of(&organization, MembershipLevel::Admin));
    let admin_key = hog.add_personal_key(
        admin.id,
        PersonalKeySpec::new("rotator").scopes(["project:write"]),
    );
    let old = hog.add_project_secret_key(
        project.id,
        ProjectSecretKeySpec::new("flags", ["feature_flag:read"]),
    );
    env.seed(&admin_key.value);
    env.seed(&old.value);
    env.set_var("POSTHOG_ADMIN_KEY", &admin_key.value);
    env.write(
        "hogguard.toml",
        format!(
            "[posthog]\nproject_id = {}\nadmin_key = 'POSTHOG_ADMIN_KEY'\n\
             [environments.production]\nenv_file = '.env.production'\n\
             verify_command = 'grep -q POSTHOG_SECRET_API_KEY=phs_ .env.production'\n\
             [environments.production.credentials]\nproject_secret_api_key = 'POSTHOG_SECRET_API_KEY'\n",
            project.id
        ),
    );
    env.write(
        ".env.production",
        format!("POSTHOG_SECRET_API_KEY={}\n", old.value),
    );

    let done = env
        .hogguard(["rotate", "production", "project_secret_api_key"])
        .output();
    done.assert_code(0);
    let new = env_value(&env, ".env.production", "POSTHOG_SECRET_API_KEY").unwrap();
    assert_ne!(new, old.value);
    assert!(hog.is_live(&new), "the new key works");
    assert!(!hog.is_live(&old.value), "the old key is gone");
    env.seed(&new);
    env.assert_no_leak("stdout", &done.stdout);
    env.assert_no_leak("stderr", &done.stderr);

    env.hogguard([
        "rotate",
        "production",
        "project_secret_api_key",
        "--if-older-than",
        "30d",
    ])
    .output()
    .assert_code(0);
    assert_eq!(
        env_value(&env, ".env.production", "POSTHOG_SECRET_API_KEY"),
        Some(new),
        "a fresh key is not due"
    );
}

/// Issue 11 point 14: two rotations of different credentials kept in one env file, run side
/// by side, raced on one fixed temporary file and lost each other's writes (20 to 80 % of
/// them failed). Each round starts both processes at once; both must succeed and both
/// changes must be in the file.
#[test]
fn rotations_of_two_credentials_of_one_env_file_run_side_by_side() {
    for round in 0..16 {
        let env = TestEnv::new();
        let (first, second) = (keys::webhook_secret(), keys::webhook_secret());
        env.seed(&first);
        env.seed(&second);
        env.write("hogguard.toml", TWO_SECRETS);
        env.write(
            ".env.production",
            format!("WEBHOOK_SECRET={first}\nOTHER_WEBHOOK_SECRET={second}\n"),
        );
        let children = [
            env.hogguard(["rotate", "production", "webhook_secret"])
                .spawn(),
            env.hogguard(["rotate", "production", "other_webhook_secret"])
                .spawn(),
        ];
        for child in children {
            let (code, stderr) = finish(&env, child);
            assert_eq!(code, 0, "round {round}: {stderr}");
        }
        for (variable, old) in [
            ("WEBHOOK_SECRET", &first),
            ("OTHER_WEBHOOK_SECRET", &second),
        ] {
            let previous = format!("{variable}_PREVIOUS");
            assert_eq!(
                env_value(&env, ".env.production", &previous).as_ref(),
                Some(old),
                "round {round}: {variable}"
            );
            let new = env_value(&env, ".env.production", variable).unwrap();
            assert!(new.starts_with("whsec_") && &new != old, "round {round}");
        }
    }
}

/// Issue 11 point 14: with an audit log configured, a second rotation of a credential waited
/// for the first one's audit log instead of being refused, and then rotated again (both
/// exited 0). It must be refused at once, with exit 2, while the first runs.
#[test]
fn a_second_rotation_of_a_credential_is_refused_at_once_while_the_first_runs() {
    let env = TestEnv::new();
    let old = keys::webhook_secret();
    env.seed(&old);
    // The first rotation's verify command says it runs, then waits for the test.
    let status = std::process::Command::new("mkfifo")
        .arg(env.path().join("go.fifo"))
        .status()
        .unwrap();
    assert!(status.success());
    env.write(
        "hogguard.toml",
        "[environments.production]\nenv_file = '.env.production'\n\
         verify_command = 'echo verifying && read line < go.fifo'\n\
         [environments.production.credentials]\nwebhook_secret = 'WEBHOOK_SECRET'\n\
         [audit]\npath = '.hogguard/audit.jsonl'\n",
    );
    env.write(".env.production", format!("WEBHOOK_SECRET={old}\n"));

    let mut first = env
        .hogguard(["rotate", "production", "webhook_secret"])
        .spawn();
    let mut first_stderr = BufReader::new(first.stderr.take().unwrap());
    let mut line = String::new();
    while line.trim() != "verifying" {
        line.clear();
        let read = first_stderr.read_line(&mut line).unwrap();
        assert!(
            read > 0,
            "the first rotation ended before its verify command"
        );
    }

    let second = env
        .hogguard(["rotate", "production", "webhook_secret"])
        .output();
    second.assert_code(2);
    assert_eq!(
        second.stderr,
        "error: another hogguard process is rotating production/webhook_secret right now \
             (it holds .hogguard/rotations/production.webhook_secret.lock); wait for it to end\n",
    );

    std::fs::write(env.path().join("go.fifo"), "go\n").unwrap();
    let (code, stderr) = finish(&env, first);
    assert_eq!(code, 0, "{stderr}");
    let log = env.read(".hogguard/audit.jsonl");
    assert_eq!(log.matches("\"key.rotate.start\"").count(), 1, "{log}");
}

/// Issue 11 point 13: a rotation into an env file owned by `nobody:nogroup`, mode 640, left it
/// `root:root`. Owner, group and mode stay (the tests run as root; elsewhere the file stays
/// the test's own).
#[test]
fn a_rotation_keeps_the_env_files_owner_group_and_mode() {
    let env = TestEnv::new();
    let old = keys::webhook_secret();
    env.seed(&old);
    env.write(
        "hogguard.toml",
        "[environments.production]\nenv_file = '.env.production'\n\
         [environments.production.credentials]\nwebhook_secret = 'WEBHOOK_SECRET'\n",
    );
    let env_file = env.write(".env.production", format!("WEBHOOK_SECRET={old}"));
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let nobody = 65534;
    let _ = std::os::unix::fs::chown(&env_file, Some(nobody), Some(nobody));
    let before = std::fs::metadata(&env_file).unwrap();

    env.hogguard(["rotate", "production", "webhook_secret"])
        .output()
        .assert_code(0);
    let after = std::fs::metadata(&env_file).unwrap();
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_eq!(mode(&env_file), 0o640);
    // The file had no final line break and no line ending of its own: LF is added.
    let text = env.read(".env.production");
    assert!(
        !text.contains('\r') && text.ends_with('\n') && text.lines().count() == 2,
        "{text:?}"
    );
}

/// Issue 11 point 15: under `umask 000`, `.hogguard/` was created 0777. The rotation journal,
/// its lock, the audit log and its files, and the env file's lock are private whatever the
/// umask.
#[test]
fn a_rotation_under_umask_000_keeps_its_state_private() {
    ChildTest::new("rotate::rotate_under_umask_000_in_child")
        .under("umask 000")
        .run();
}

/// Runs only as the child of [`a_rotation_under_umask_000_keeps_its_state_private`].
#[test]
fn rotate_under_umask_000_in_child() {
    if !child::is_child() {
        return;
    }
    let env = TestEnv::new();
    let old = keys::webhook_secret();
    env.seed(&old);
    env.write(
        "hogguard.toml",
        "[environments.production]\nenv_file = '.env.production'\n\
         [environments.production.credentials]\nwebhook_secret = 'WEBHOOK_SECRET'\n\
         [audit]\npath = '.hogguard/audit.jsonl'\n",
    );
    env.write(".env.production", format!("WEBHOOK_SECRET={old}\n"));
    env.hogguard(["rotate", "production", "webhook_secret"])
        .output()
        .assert_code(0);
    let state = env.path().join(".hogguard");
    let mut checked = Vec::new();
    for entry in walk(&state) {
        let expected = if entry.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&entry), expected, "{}", entry.display());
        checked.push(entry);
    }
    assert_eq!(checked.len(), 6, "{checked:?}");
    assert_eq!(mode(&state), 0o700);
    assert_eq!(
        mode(&env.path().join("..env.production.hogguard-lock")),
        0o600
    );
}

/// Every file and directory below `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

/// Issue 12 point 5: a rotation that needs a person, run without a terminal, printed its one
/// cause three times. Each part of the error is said once.
#[test]
fn a_rotation_without_a_terminal_says_why_once() {
    let env = TestEnv::new();
    let hog = env.posthog();
    let organization = hog.add_organization("Acme");
    let user = hog
        .add_user(UserSpec::new("dev@acme.test").member_of(&organization, MembershipLevel::Member));
    let old = hog.add_personal_key(
        user.id,
        PersonalKeySpec::new("app").scopes(["feature_flag:read"]),
    );
    env.seed(&old.value);
    env.write(
        "hogguard.toml",
        "[environments.production]\nenv_file = '.env.production'\n\
         [environments.production.credentials]\npersonal_api_key = 'POSTHOG_PERSONAL_API_KEY'\n",
    );
    env.write(
        ".env.production",
        format!("POSTHOG_PERSONAL_API_KEY={}\n", old.value),
    );

    let run = env
        .hogguard(["rotate", "production", "personal_api_key"])
        .output();
    run.assert_code(2);
    let error = run.stderr.lines().last().unwrap();
    assert_eq!(
        error,
        "error: no answer at the prompt; the rotation stays open: continue it with --resume, or \
         drop it with --abort: cannot read the answer: no terminal to read the new key from: pass \
         it on standard input with --stdin",
        "{}",
        run.snapshot()
    );
}

/// A project API key kept in a secret manager (a write and a read command): the person pastes
/// the reset token on standard input, and only the store's files hold it afterwards.
#[test]
fn a_project_api_key_in_a_command_store_is_replaced_from_standard_input() {
    let env = TestEnv::new();
    env.posthog();
    let old = env.key(keys::Prefix::Project);
    let new = env.key(keys::Prefix::Project);
    env.write("vault/POSTHOG_PROJECT_API_KEY", &old);
    env.secret_store("vault/POSTHOG_PROJECT_API_KEY");
    env.write(
        "hogguard.toml",
        "[environments.production.store]\n\
         write = 'if [ \"$HOGGUARD_ACTION\" = remove ]; then rm -f \"vault/$HOGGUARD_VARIABLE\"; else cat > \"vault/$HOGGUARD_VARIABLE\"; fi'\n\
         read = 'cat \"vault/$HOGGUARD_VARIABLE\" 2>/dev/null || true'\n\
         [environments.production.credentials]\nproject_api_key = 'POSTHOG_PROJECT_API_KEY'\n",
    );

    let run = env
        .hogguard([
            "rotate",
            "production",
            "project_api_key",
            "--stdin",
            "--yes",
        ])
        .stdin(format!("{new}\n"))
        .output();
    run.assert_code(0);
    assert_eq!(env.read("vault/POSTHOG_PROJECT_API_KEY"), new);
    assert!(
        !env.path()
            .join("vault/POSTHOG_PROJECT_API_KEY_PREVIOUS")
            .exists()
    );
}

#[test]
fn a_rotation_started_in_a_subdirectory_keeps_its_journal_at_the_project_root() {
    let env = webhook_env(TWO_SECRETS);
    env.write("app/src/main.rs", "fn main() {}\n");
    let run = env
        .hogguard(["rotate", "production", "webhook_secret"])
        .current_dir("app/src")
        .output();
    run.assert_code(0);
    assert!(env.path().join(".hogguard/rotations").is_dir());
    assert!(!env.path().join("app/src/.hogguard").exists());
    // The rotation is open (in its grace period) and found again from the root.
    let again = env
        .hogguard(["rotate", "production", "webhook_secret", "--finish"])
        .output();
    again.assert_code(0);
}

/// Issue 12 point 5: `rotate` printed its "rotated" line on standard output and again on
/// standard error. The outcome goes to standard output once; standard error has only the
/// progress that led to it.
#[test]
fn a_rotation_says_rotated_once() {
    let env = webhook_env(TWO_SECRETS);
    let started = env
        .hogguard(["rotate", "production", "webhook_secret"])
        .output();
    insta::assert_snapshot!(snapshot(&started), @"
    exit code: 0
    ----- stdout -----
    rotated ([ROTATION]): whse...[MASK] is the primary secret; the old one is accepted until [TIME], then the next run (or --finish) drops it
    ----- stderr -----
    WEBHOOK_SECRET now holds the new secret whse...[MASK] and WEBHOOK_SECRET_PREVIOUS the old one; receivers that read both accept either until [TIME]. Give the sender (e.g. the PostHog destination's signing secret) the new secret before then.
    ");
    seed_new_secret(&env);
    let finished = env
        .hogguard(["rotate", "production", "webhook_secret", "--finish"])
        .output();
    insta::assert_snapshot!(snapshot(&finished), @"
    exit code: 0
    ----- stdout -----
    rotated ([ROTATION]): whse...[MASK] replaces whse...[MASK], which is retired
    ----- stderr -----
    ");
}

/// A project secret key of production, kept in `.env.production`, with `posthog` as the
/// configuration's `[posthog]` table.
fn secret_key_project(env: &TestEnv, posthog: &str) {
    let key = env.key(keys::Prefix::Secret);
    env.write(
        "hogguard.toml",
        format!(
            "[posthog]\n{posthog}\n[environments.production]\nenv_file = '.env.production'\n\
             [environments.production.credentials]\nproject_secret_api_key = 'POSTHOG_SECRET_API_KEY'\n"
        ),
    );
    env.write(".env.production", format!("POSTHOG_SECRET_API_KEY={key}\n"));
}

/// Issue 12 point 7: `rotate --dry-run` of a project secret key failed when `[posthog]
/// admin_key` or `project_id` was missing. It plans all the same, lists what a real run
/// lacks under the plan, and exits 1: the rotation it plans cannot run yet.
#[test]
fn a_dry_run_plans_without_the_admin_key_and_the_project_id() {
    let env = TestEnv::new();
    secret_key_project(&env, "");
    let unconfigured = env
        .hogguard([
            "rotate",
            "production",
            "project_secret_api_key",
            "--dry-run",
        ])
        .output();
    insta::assert_snapshot!(snapshot(&unconfigured), @"
    exit code: 1
    ----- stdout -----
    1. Lock production/project_secret_api_key and check that no earlier rotation of it is open
    2. Read POSTHOG_SECRET_API_KEY from [REPO]/.env.production and find its project secret API key in the project (by its mask)
    3. Create a new project secret API key with the same scopes, labelled after the old one plus the rotation id
    4. Check at PostHog that the new key works
    5. Write the new key to POSTHOG_SECRET_API_KEY and keep the old one in POSTHOG_SECRET_API_KEY_PREVIOUS
    6. Delete the old project secret API key
    7. Remove POSTHOG_SECRET_API_KEY_PREVIOUS

    It cannot run yet:
    - rotating a phs_ key needs [posthog] admin_key: the variable holding a personal API key with project:write
    - rotating a phs_ key needs [posthog] project_id
    ----- stderr -----
    ");

    secret_key_project(&env, "project_id = 42\nadmin_key = 'POSTHOG_ADMIN_API_KEY'");
    let unset = env
        .hogguard([
            "rotate",
            "production",
            "project_secret_api_key",
            "--dry-run",
        ])
        .output();
    insta::assert_snapshot!(snapshot(&unset), @"
    exit code: 1
    ----- stdout -----
    1. Lock production/project_secret_api_key and check that no earlier rotation of it is open
    2. Read POSTHOG_SECRET_API_KEY from [REPO]/.env.production and find its project secret API key in project 42 (by its mask)
    3. Create a new project secret API key with the same scopes, labelled after the old one plus the rotation id
    4. Check at PostHog that the new key works
    5. Write the new key to POSTHOG_SECRET_API_KEY and keep the old one in POSTHOG_SECRET_API_KEY_PREVIOUS
    6. Delete the old project secret API key
    7. Remove POSTHOG_SECRET_API_KEY_PREVIOUS

    It cannot run yet:
    - POSTHOG_ADMIN_API_KEY is not set ([posthog] admin_key names it): looked in the process environment and .env.production
    ----- stderr -----
    ");
    assert!(
        !env.path().join(".hogguard").exists(),
        "a dry run changes nothing"
    );
    // A real run stops on the first of them, before it touches anything.
    let real = env
        .hogguard(["rotate", "production", "project_secret_api_key"])
        .output();
    insta::assert_snapshot!(snapshot(&real), @"
    exit code: 2
    ----- stdout -----
    ----- stderr -----
    error: POSTHOG_ADMIN_API_KEY is not set ([posthog] admin_key names it): looked in the process environment and .env.production
    ");
    assert!(!env.path().join(".hogguard").exists());
}

/// Issue 12 point 7: the plan of a personal key rotation said "@current", ignored `[posthog]
/// project_id` and did not say that a real run without a terminal stops at the first prompt.
#[test]
fn a_dry_run_of_a_personal_key_names_its_project_and_the_terminal_it_needs() {
    let env = TestEnv::new();
    let key = env.key(keys::Prefix::Personal);
    env.write(
        "hogguard.toml",
        "[posthog]\nproject_id = 12345\n[environments.production]\nenv_file = '.env.production'\n\
         allowed_scopes = ['feature_flag:read']\n\
         [environments.production.credentials]\npersonal_api_key = 'POSTHOG_PERSONAL_API_KEY'\n",
    );
    env.write(
        ".env.production",
        format!("POSTHOG_PERSONAL_API_KEY={key}\n"),
    );
    let no_terminal = env
        .hogguard(["rotate", "production", "personal_api_key", "--dry-run"])
        .output();
    insta::assert_snapshot!(snapshot(&no_terminal), @"
    exit code: 1
    ----- stdout -----
    1. Lock production/personal_api_key and check that no earlier rotation of it is open
    2. Read POSTHOG_PERSONAL_API_KEY from [REPO]/.env.production and ask PostHog which key this is (its id, scopes and projects)
    3. Ask you to create a personal API key at https://us.posthog.com/settings/user-api-keys with the scopes feature_flag:read, restricted to project 12345
    4. Ask PostHog whether the new key works, is not the old key and holds no broader scope
    5. Write the new key to POSTHOG_PERSONAL_API_KEY and keep the old one in POSTHOG_PERSONAL_API_KEY_PREVIOUS
    6. Ask you to delete the old key in PostHog
    7. Check PostHog until the old key no longer works (at most 12 times)
    8. Remove POSTHOG_PERSONAL_API_KEY_PREVIOUS

    It cannot run yet:
    - no terminal to read the new key from: pass it on standard input with --stdin
    - no terminal to confirm on: pass --yes
    ----- stderr -----
    ");
    let piped = env
        .hogguard([
            "rotate",
            "production",
            "personal_api_key",
            "--dry-run",
            "--stdin",
            "--yes",
        ])
        .output();
    insta::assert_snapshot!(snapshot(&piped), @"
    exit code: 0
    ----- stdout -----
    1. Lock production/personal_api_key and check that no earlier rotation of it is open
    2. Read POSTHOG_PERSONAL_API_KEY from [REPO]/.env.production and ask PostHog which key this is (its id, scopes and projects)
    3. Ask you to create a personal API key at https://us.posthog.com/settings/user-api-keys with the scopes feature_flag:read, restricted to project 12345
    4. Ask PostHog whether the new key works, is not the old key and holds no broader scope
    5. Write the new key to POSTHOG_PERSONAL_API_KEY and keep the old one in POSTHOG_PERSONAL_API_KEY_PREVIOUS
    6. Ask you to delete the old key in PostHog
    7. Check PostHog until the old key no longer works (at most 12 times)
    8. Remove POSTHOG_PERSONAL_API_KEY_PREVIOUS
    ----- stderr -----
    ");
}

/// Issue 12 point 7: a dry run said it would read a variable the env file does not set.
#[test]
fn a_dry_run_lists_a_missing_value() {
    let env = TestEnv::new();
    env.write("hogguard.toml", TWO_SECRETS);
    env.write(".env.production", "OTHER=1\n");
    let run = env
        .hogguard(["rotate", "production", "webhook_secret", "--dry-run"])
        .output();
    insta::assert_snapshot!(snapshot(&run), @"
    exit code: 1
    ----- stdout -----
    1. Lock production/webhook_secret and check that no earlier rotation of it is open
    2. Read WEBHOOK_SECRET from [REPO]/.env.production
    3. Generate a new whsec_ secret
    4. Write it to WEBHOOK_SECRET and keep the old one in WEBHOOK_SECRET_PREVIOUS
    5. Accept both secrets for 24 hours; give the sender the new one
    6. After that, on the next run or with --finish, remove WEBHOOK_SECRET_PREVIOUS

    It cannot run yet:
    - WEBHOOK_SECRET is not set in [REPO]/.env.production: there is no current key to rotate
    ----- stderr -----
    ");
}

/// Issue 12 point 7: a dry run planned a new rotation while an earlier one was open, which a
/// real run refuses; it names the open rotation and what to do with it.
#[test]
fn a_dry_run_names_an_open_rotation() {
    let env = webhook_env(
        "[environments.production]\nenv_file = '.env.production'\nverify_command = 'false'\n\
         [environments.production.credentials]\nwebhook_secret = 'WEBHOOK_SECRET'\n",
    );
    env.hogguard(["rotate", "production", "webhook_secret"])
        .output()
        .assert_code(1);
    seed_new_secret(&env);
    let run = env
        .hogguard(["rotate", "production", "webhook_secret", "--dry-run"])
        .output();
    insta::assert_snapshot!(snapshot(&run), @"
    exit code: 1
    ----- stdout -----
    1. Lock production/webhook_secret and check that no earlier rotation of it is open
    2. Read WEBHOOK_SECRET from [REPO]/.env.production
    3. Generate a new whsec_ secret
    4. Write it to WEBHOOK_SECRET and keep the old one in WEBHOOK_SECRET_PREVIOUS
    5. Run the verify command `false`; if it fails, stop with the old key still working and kept in WEBHOOK_SECRET_PREVIOUS
    6. Accept both secrets for 24 hours; give the sender the new one
    7. After that, on the next run or with --finish, remove WEBHOOK_SECRET_PREVIOUS

    It cannot run yet:
    - a rotation of production/webhook_secret is already open ([ROTATION]: stopped during run_verify_command); continue it with --resume, or go back to the old key with --abort
    ----- stderr -----
    ");
}

/// A dry run during a webhook secret's grace period says that a run would be refused until
/// the rotation is finished (the plan after the grace period is tested in hogguard-rotate,
/// whose clock tests can move).
#[test]
fn a_dry_run_during_the_grace_period_names_it() {
    let env = webhook_env(TWO_SECRETS);
    env.hogguard(["rotate", "production", "webhook_secret"])
        .output()
        .assert_code(0);
    seed_new_secret(&env);
    let run = env
        .hogguard(["rotate", "production", "webhook_secret", "--dry-run"])
        .output();
    insta::assert_snapshot!(snapshot(&run), @"
    exit code: 1
    ----- stdout -----
    1. Lock production/webhook_secret and check that no earlier rotation of it is open
    2. Read WEBHOOK_SECRET from [REPO]/.env.production
    3. Generate a new whsec_ secret
    4. Write it to WEBHOOK_SECRET and keep the old one in WEBHOOK_SECRET_PREVIOUS
    5. Accept both secrets for 24 hours; give the sender the new one
    6. After that, on the next run or with --finish, remove WEBHOOK_SECRET_PREVIOUS

    It cannot run yet:
    - a rotation of production/webhook_secret is already open ([ROTATION]: both webhook secrets are accepted until [TIME]; --finish drops the old one); continue it with --resume, or go back to the old key with --abort
    ----- stderr -----
    ");
}

/// A dry run that can go ahead exits 0 and lists nothing missing.
#[test]
fn a_dry_run_that_can_run_exits_0() {
    let env = webhook_env(TWO_SECRETS);
    let run = env
        .hogguard(["rotate", "production", "webhook_secret", "--dry-run"])
        .output();
    insta::assert_snapshot!(snapshot(&run), @"
    exit code: 0
    ----- stdout -----
    1. Lock production/webhook_secret and check that no earlier rotation of it is open
    2. Read WEBHOOK_SECRET from [REPO]/.env.production
    3. Generate a new whsec_ secret
    4. Write it to WEBHOOK_SECRET and keep the old one in WEBHOOK_SECRET_PREVIOUS
    5. Accept both secrets for 24 hours; give the sender the new one
    6. After that, on the next run or with --finish, remove WEBHOOK_SECRET_PREVIOUS
    ----- stderr -----
    ");
}
