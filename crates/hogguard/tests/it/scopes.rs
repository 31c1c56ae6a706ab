//! `hogguard scopes`: the scopes each key and proxy client holds against those its calls used
//! (from an audit log with known calls), `check least-privilege`'s evidence, and `scopes import`.

use hogguard_audit::{AuditLog, AuditOptions, EntryInput, Outcome};
use hogguard_testkit::posthog::{MembershipLevel, PersonalKeySpec, UserSpec};
use serde_json::json;

use crate::support::TestEnv;

const CONFIG: &str = r#"
[environments.production]
env_file = ".env.production"
[environments.production.credentials]
personal_api_key = "POSTHOG_PERSONAL_API_KEY"

[audit]

[proxy]
environment = "production"
[proxy.clients.reader]
token = "READER_TOKEN"
scopes = ["feature_flag:read", "insight:read"]
[proxy.clients.writer]
token = "WRITER_TOKEN"
scopes = ["feature_flag:write", "annotation:write"]
"#;

/// The entry the proxy writes for a call.
fn call(client: &str, path: &str, required: &str, key: &str, forwarded: bool) -> EntryInput {
    EntryInput::new(
        "posthog.api.call",
        client,
        path,
        if forwarded {
            Outcome::Success
        } else {
            Outcome::Failure
        },
    )
    .with_metadata("method", "GET")
    .with_metadata("status", if forwarded { 200 } else { 403 })
    .with_metadata("required_scope", required)
    .with_metadata("duration_ms", 1.5)
    .with_metadata("environment", "production")
    .with_metadata(
        "credential",
        if forwarded {
            json!(hogguard_secret::mask(key))
        } else {
            json!(null)
        },
    )
    .with_metadata("forwarded", forwarded)
}

/// A key with three scopes, of which the logged calls used one (and a read of another).
fn setup(env: &TestEnv) -> String {
    let hog = env.posthog();
    let org = hog.add_organization("Acme");
    let user = hog.add_user(UserSpec::new("ops@acme.test").member_of(&org, MembershipLevel::Admin));
    let key = hog.add_personal_key(
        user.id,
        PersonalKeySpec::new("services")
            .scopes(["feature_flag:write", "insight:read", "annotation:write"])
            .scoped_teams([1]),
    );
    env.seed(&key.value);
    env.write("hogguard.toml", CONFIG);
    env.write(
        ".env.production",
        format!("POSTHOG_PERSONAL_API_KEY={}\n", key.value),
    );
    let dir = env.path().join(".hogguard");
    std::fs::create_dir_all(&dir).unwrap();
    let log = AuditLog::open(dir.join("audit.jsonl"), &AuditOptions::default()).unwrap();
    for entry in [
        call(
            "reader",
            "/api/projects/1/feature_flags/",
            "feature_flag:read",
            &key.value,
            true,
        ),
        call(
            "writer",
            "/api/projects/1/annotations/",
            "annotation:write",
            &key.value,
            true,
        ),
        // Refused by the proxy: it used nothing.
        call(
            "reader",
            "/api/projects/1/insights/",
            "insight:read",
            &key.value,
            false,
        ),
        // Another kind of entry is no evidence.
        EntryInput::new(
            "key.checked",
            "ada",
            "production.personal_api_key",
            Outcome::Success,
        )
        .with_metadata("required_scope", "insight:read"),
    ] {
        log.append(entry).unwrap();
    }
    log.close().unwrap();
    key.value
}

#[test]
fn the_report_names_exactly_the_unused_scopes() {
    let env = TestEnv::new();
    let key = setup(&env);
    let output = env.hogguard(["scopes", "--format", "json"]).output();
    output.assert_code(1);
    assert_eq!(
        output.json(),
        json!({
            "version": 1,
            "keys": [{
                "environment": "production",
                "credential": "personal_api_key",
                "masked": hogguard_secret::mask(&key),
                "granted": ["feature_flag:write", "insight:read", "annotation:write"],
                "used": ["annotation:write", "feature_flag:read"],
                "unused": ["feature_flag:write", "insight:read"],
                "suggested": ["annotation:write", "feature_flag:read"],
            }],
            "clients": [
                {"name": "reader", "allowed": ["feature_flag:read", "insight:read"], "used": ["feature_flag:read"], "unused": ["insight:read"]},
                {"name": "writer", "allowed": ["feature_flag:write", "annotation:write"], "used": ["annotation:write"], "unused": ["feature_flag:write"]},
            ],
        })
    );
    let human = env.hogguard(["scopes", "--color", "never"]).output();
    human.assert_code(1);
    assert!(
        human
            .stdout
            .contains("unused     feature_flag:write insight:read"),
        "{}",
        human.stdout
    );
    // Outside the window, nothing was used.
    let old = env
        .hogguard(["scopes", "--since", "0d", "--format", "json"])
        .output();
    assert_eq!(
        old.json()["keys"][0]["unused"],
        json!(["feature_flag:write", "insight:read", "annotation:write"])
    );
}

#[test]
fn check_least_privilege_warns_with_the_suggested_list() {
    let env = TestEnv::new();
    setup(&env);
    let output = env
        .hogguard(["check", "--format", "json", "--env", "production"])
        .output();
    let items = output.json()["items"].clone();
    let item = items
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["id"] == "least-privilege")
        .unwrap()
        .clone();
    assert_eq!(item["status"], "warn", "{item:#}");
    assert_eq!(
        item["reason"],
        "1 key holds scopes no call through the proxy used in the last 30d"
    );
    assert_eq!(
        item["details"],
        json!([
            "production.personal_api_key: unused for 30d: feature_flag:write insight:read; suggested: annotation:write feature_flag:read"
        ])
    );
}

#[test]
fn import_reads_every_operations_scope_from_the_schema() {
    let env = TestEnv::new();
    let schema = json!({
        "openapi": "3.0.3",
        "info": {"title": "PostHog API", "version": "1.0.0"},
        "paths": {
            "/api/projects/{project_id}/feature_flags/": {
                "get": {"security": [{"PersonalAPIKeyAuth": ["feature_flag:read"]}]},
                "post": {"security": [{"PersonalAPIKeyAuth": ["feature_flag:write"]}]},
            },
            "/api/projects/{project_id}/search/": {"get": {"security": [{"cookieAuth": []}]}},
        }
    });
    env.write("schema.json", schema.to_string());
    let output = env.hogguard(["scopes", "import", "schema.json"]).output();
    output.assert_code(0);
    assert_eq!(
        output.stdout,
        "wrote 3 operations on 2 endpoints (2 take personal API keys) to .hogguard/posthog-scopes.toml\n"
    );
    let table = env.read(".hogguard/posthog-scopes.toml");
    assert!(
        table.contains("source = \"PostHog API 1.0.0, schema.json\""),
        "{table}"
    );
    assert!(
        table.contains("scopes = [\"feature_flag:write\"]"),
        "{table}"
    );
    env.write("broken.json", "{\"openapi\":\"3.0.3\"}");
    let output = env.hogguard(["scopes", "import", "broken.json"]).output();
    output.assert_code(2);
    assert!(
        output.stderr.contains("no `paths` object"),
        "{}",
        output.stderr
    );
}
