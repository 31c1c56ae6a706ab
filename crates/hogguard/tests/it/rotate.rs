//! `hogguard rotate` end to end: a webhook secret with its grace period, and a project secret
//! key against the PostHog stand-in, with the env file, the journal and the audit log checked.

use hogguard_testkit::keys;
use hogguard_testkit::posthog::{
    FakeHog, MembershipLevel, PersonalKeySpec, ProjectSecretKeySpec, UserSpec,
};

use crate::support::{self, Run, run};

fn rotate(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    run(
        support::hogguard(dir)
            .arg("rotate")
            .args(args)
            .envs(env.iter().copied()),
        b"",
    )
}

#[test]
fn a_webhook_secret_rotates_with_a_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let old = keys::webhook_secret();
    std::fs::write(
        dir.path().join("hogguard.toml"),
        "[environments.production]\nenv_file = '.env.production'\nverify_command = 'true'\n\
         [environments.production.credentials]\nwebhook_secret = 'POSTHOG_WEBHOOK_SECRET'\n[audit]\npath = 'audit.jsonl'\n",
    )
    .unwrap();
    let env_file = dir.path().join(".env.production");
    std::fs::write(
        &env_file,
        format!("# signing\nPOSTHOG_WEBHOOK_SECRET='{old}'\nOTHER=1\n"),
    )
    .unwrap();

    let plan = rotate(
        dir.path(),
        &["production", "webhook_secret", "--dry-run"],
        &[],
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        format!("# signing\nPOSTHOG_WEBHOOK_SECRET='{old}'\nOTHER=1\n")
    );

    let started = rotate(dir.path(), &["production", "webhook_secret"], &[]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let during = hogguard_dotenv::parse(&std::fs::read_to_string(&env_file).unwrap()).unwrap();
    let new = during.get("POSTHOG_WEBHOOK_SECRET").unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    assert_eq!(
        during.get("POSTHOG_WEBHOOK_SECRET_PREVIOUS"),
        Some(old.as_str()),
        "the old secret stays accepted"
    );
    assert_eq!(during.get("OTHER"), Some("1"));

    let again = rotate(dir.path(), &["production", "webhook_secret"], &[]);
    assert_eq!(
        again.code, 2,
        "a second rotation is refused while one is open: {}",
        again.stderr
    );

    let finished = rotate(
        dir.path(),
        &["production", "webhook_secret", "--finish"],
        &[],
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let after = std::fs::read_to_string(&env_file).unwrap();
    assert!(after.starts_with("# signing\n"), "{after}");
    let after = hogguard_dotenv::parse(&after).unwrap();
    assert_eq!(after.get("POSTHOG_WEBHOOK_SECRET"), Some(new.as_str()));
    assert_eq!(
        after
            .get("POSTHOG_WEBHOOK_SECRET_PREVIOUS")
            .unwrap_or_default(),
        ""
    );

    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(log.contains("key.rotate"), "{log}");
    for secret in [&old, &new] {
        assert!(!log.contains(secret.as_str()));
        for output in [&plan, &started, &finished] {
            assert!(
                !output.stdout.contains(secret.as_str())
                    && !output.stderr.contains(secret.as_str())
            );
        }
    }
}

#[test]
fn a_project_secret_key_is_replaced_without_a_gap() {
    let hog = FakeHog::start();
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
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hogguard.toml"),
        format!(
            "[posthog]\nproject_id = {}\nadmin_key = 'POSTHOG_ADMIN_KEY'\n\
             [environments.production]\nenv_file = '.env.production'\n\
             verify_command = 'grep -q POSTHOG_SECRET_API_KEY=phs_ .env.production'\n\
             [environments.production.credentials]\nproject_secret_api_key = 'POSTHOG_SECRET_API_KEY'\n",
            project.id
        ),
    )
    .unwrap();
    let env_file = dir.path().join(".env.production");
    std::fs::write(&env_file, format!("POSTHOG_SECRET_API_KEY={}\n", old.value)).unwrap();
    let env = [
        ("POSTHOG_HOST", hog.base_url()),
        ("POSTHOG_ADMIN_KEY", admin_key.value.as_str()),
    ];

    let done = rotate(dir.path(), &["production", "project_secret_api_key"], &env);
    assert_eq!(done.code, 0, "{}", done.stderr);
    let stored = hogguard_dotenv::parse(&std::fs::read_to_string(&env_file).unwrap()).unwrap();
    let new = stored.get("POSTHOG_SECRET_API_KEY").unwrap().to_owned();
    assert_ne!(new, old.value);
    assert!(hog.is_live(&new), "the new key works");
    assert!(!hog.is_live(&old.value), "the old key is gone");
    for secret in [&new, &old.value, &admin_key.value] {
        assert!(!done.stdout.contains(secret.as_str()) && !done.stderr.contains(secret.as_str()));
    }
    let due = rotate(
        dir.path(),
        &[
            "production",
            "project_secret_api_key",
            "--if-older-than",
            "30d",
        ],
        &env,
    );
    assert_eq!(due.code, 0, "{}", due.stderr);
    assert_eq!(
        hogguard_dotenv::parse(&std::fs::read_to_string(&env_file).unwrap())
            .unwrap()
            .get("POSTHOG_SECRET_API_KEY"),
        Some(new.as_str()),
        "a fresh key is not due"
    );
}
