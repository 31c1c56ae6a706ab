//! The PostHog stand-in over real HTTP: every answer is compared with the exact status and body
//! `shared/reference/posthog-api.md` documents for PostHog.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hogguard_testkit::posthog::{
    FakeHog, Fault, FeatureFlagSpec, MembershipLevel, OAuthTokenSpec, PersonalKeySpec,
    ProjectSecretKeySpec, RateLimit, SeededKey, SeededProject, SeededUser, Timestamp, UserSpec,
    sha256_hex,
};
use serde_json::{Value, json};
use ureq::http;

const INVALID_KEY: &str = r#"{"type":"authentication_error","code":"authentication_failed","detail":"Personal API key found in request Authorization header is invalid.","attr":null}"#;
const NOT_AUTHENTICATED: &str = r#"{"type":"authentication_error","code":"not_authenticated","detail":"Authentication credentials were not provided.","attr":null}"#;
const PAK_UNSUPPORTED: &str = r#"{"type":"authentication_error","code":"permission_denied","detail":"This action does not support Personal API Key access","attr":null}"#;
const NOT_FOUND: &str =
    r#"{"type":"invalid_request","code":"not_found","detail":"Not found.","attr":null}"#;
const SECRET_INVALID: &str = r#"{"type":"authentication_error","code":"authentication_failed","detail":"Secret API token is invalid.","attr":null}"#;
const EMPTY_LOCAL_EVALUATION: &str = r#"{"flags":[],"group_type_mapping":{},"cohorts":{}}"#;

fn t0() -> Timestamp {
    Timestamp::parse("2025-01-01T00:00:00Z").unwrap()
}

/// The 403 envelope, fields in drf-exceptions-hog's order.
fn permission_denied(detail: &str) -> String {
    format!(
        r#"{{"type":"authentication_error","code":"permission_denied","detail":{},"attr":null}}"#,
        Value::from(detail)
    )
}

/// A response: status, body text and content type.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
    content_type: Option<String>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn assert(&self, status: u16, body: &str) {
        assert_eq!((self.status, self.body.as_str()), (status, body));
    }
}

/// A blocking client that opens a fresh connection per request, so a dropped connection never
/// turns into a silent retry on a pooled one.
struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    fn new(hog: &FakeHog) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(0)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Client {
            agent,
            base: hog.base_url().to_owned(),
        }
    }

    fn try_send(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        json_body: Option<&str>,
    ) -> Result<Answer, ureq::Error> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = match json_body {
            Some(body) => self.agent.run(
                request
                    .header("Content-Type", "application/json")
                    .body(body.to_owned())
                    .unwrap(),
            )?,
            None => self.agent.run(request.body(()).unwrap())?,
        };
        let content_type = response
            .headers()
            .get("content-type")
            .map(|value| value.to_str().unwrap().to_owned());
        Ok(Answer {
            status: response.status().as_u16(),
            body: response.body_mut().read_to_string()?,
            content_type,
        })
    }

    fn send(&self, method: &str, path: &str, bearer: Option<&str>, body: Option<&str>) -> Answer {
        self.try_send(method, path, bearer, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn get(&self, path: &str, bearer: &str) -> Answer {
        self.send("GET", path, Some(bearer), None)
    }

    fn post(&self, path: &str, bearer: Option<&str>, body: &str) -> Answer {
        self.send("POST", path, bearer, Some(body))
    }
}

/// A stand-in with a fixed clock, one organisation and project, and an admin.
struct World {
    hog: FakeHog,
    client: Client,
    org: String,
    project: SeededProject,
    admin: SeededUser,
}

fn world() -> World {
    let hog = FakeHog::builder().clock(t0()).start().unwrap();
    let client = Client::new(&hog);
    let org = hog.add_organization("Acme");
    let project = hog.add_project(&org, "Web");
    let admin = hog.add_user(
        UserSpec::new("ada@acme.test")
            .name("Ada", "Lovelace")
            .member_of(&org, MembershipLevel::Admin),
    );
    World {
        hog,
        client,
        org,
        project,
        admin,
    }
}

impl World {
    fn key(&self, scopes: &[&str]) -> SeededKey {
        self.hog.add_personal_key(
            self.admin.id,
            PersonalKeySpec::new("test").scopes(scopes.iter().copied()),
        )
    }

    fn secret_keys_path(&self) -> String {
        format!("/api/projects/{}/project_secret_api_keys/", self.project.id)
    }
}

fn mask(value: &str) -> String {
    format!("{}...{}", &value[..4], &value[value.len() - 4..])
}

#[test]
fn current_key_returns_its_metadata_in_serializer_order() {
    let w = world();
    let created = Timestamp::parse("2024-06-01T12:00:00Z").unwrap();
    let key = w.hog.add_personal_key(
        w.admin.id,
        PersonalKeySpec::new("ci deploy")
            .scopes(["user:read", "project:write"])
            .created_at(created),
    );
    let expected = format!(
        r#"{{"id":"{}","label":"ci deploy","value":null,"mask_value":"{}","created_at":"2024-06-01T12:00:00Z","last_used_at":"2025-01-01T00:00:00Z","user_id":{},"scopes":["user:read","project:write"],"scoped_teams":null,"scoped_organizations":null,"last_rolled_at":null}}"#,
        key.id,
        mask(&key.value),
        w.admin.id
    );
    w.client
        .get("/api/personal_api_keys/@current/", &key.value)
        .assert(200, &expected);
    // Its own id works too, with or without the trailing slash.
    let own = w
        .client
        .get(&format!("/api/personal_api_keys/{}", key.id), &key.value);
    own.assert(200, &expected);
    assert_eq!(own.content_type.as_deref(), Some("application/json"));
}

#[test]
fn legacy_keys_show_star_scopes_and_unprefixed_values_work() {
    let w = world();
    let legacy = w
        .hog
        .add_personal_key(w.admin.id, PersonalKeySpec::new("old").unprefixed());
    assert_eq!(legacy.value.len(), 43);
    let body = w
        .client
        .get("/api/personal_api_keys/@current", &legacy.value)
        .json();
    assert_eq!(body["scopes"], json!(["*"]));
    assert_eq!(w.client.get("/api/users/@me/", &legacy.value).status, 200);
}

#[test]
fn invalid_and_missing_credentials_are_401_with_posthogs_bodies() {
    let w = world();
    let unknown = hogguard_testkit::keys::current(hogguard_testkit::keys::Prefix::Personal);
    w.client
        .get("/api/personal_api_keys/@current/", &unknown)
        .assert(401, INVALID_KEY);
    w.client
        .send("GET", "/api/users/@me/", None, None)
        .assert(401, NOT_AUTHENTICATED);
    // The other two places PostHog looks for a personal key name themselves in the detail.
    w.client
        .send("GET", &format!("/api/users/@me/?personal_api_key={unknown}"), None, None)
        .assert(
            401,
            r#"{"type":"authentication_error","code":"authentication_failed","detail":"Personal API key found in request query string is invalid.","attr":null}"#,
        );
    // An OAuth token is not a credential of the personal-key viewset at all.
    let oauth = w
        .hog
        .add_oauth_token(w.admin.id, OAuthTokenSpec::access(["user:read"]));
    w.client
        .get("/api/personal_api_keys/@current/", &oauth)
        .assert(401, NOT_AUTHENTICATED);
}

#[test]
fn a_personal_key_may_only_retrieve_itself() {
    let w = world();
    let key = w.key(&["*"]);
    let sibling = w.key(&["*"]);
    let other_user = w.hog.add_user(UserSpec::new("eve@acme.test"));
    let foreign = w
        .hog
        .add_personal_key(other_user.id, PersonalKeySpec::new("eve").scopes(["*"]));
    let create = r#"{"label":"new","scopes":["*"]}"#;
    for (method, path, body) in [
        ("GET", "/api/personal_api_keys/".to_owned(), None),
        ("POST", "/api/personal_api_keys/".to_owned(), Some(create)),
        (
            "PATCH",
            format!("/api/personal_api_keys/{}/", key.id),
            Some(r#"{"label":"x"}"#),
        ),
        (
            "DELETE",
            format!("/api/personal_api_keys/{}/", key.id),
            None,
        ),
        (
            "POST",
            format!("/api/personal_api_keys/{}/roll/", key.id),
            Some("{}"),
        ),
        (
            "GET",
            format!("/api/personal_api_keys/{}/", sibling.id),
            None,
        ),
    ] {
        let answer = w.client.send(method, &path, Some(&key.value), body);
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (403, PAK_UNSUPPORTED),
            "{method} {path}"
        );
    }
    w.client
        .get(
            &format!("/api/personal_api_keys/{}/", foreign.id),
            &key.value,
        )
        .assert(404, NOT_FOUND);
    assert!(w.hog.is_live(&key.value), "a refused roll changes nothing");
}

#[test]
fn users_me_needs_user_read_and_says_which_scope_is_missing() {
    let w = world();
    let narrow = w.key(&["project:read", "insight:write"]);
    w.client.get("/api/users/@me/", &narrow.value).assert(
        403,
        &permission_denied("API key missing required scope 'user:read'"),
    );
    for scopes in [&["user:read"][..], &["user:write"], &["*"]] {
        let key = w.key(scopes);
        let me = w.client.get("/api/users/@me/", &key.value);
        assert_eq!(me.status, 200, "{scopes:?}: {}", me.body);
        let me = me.json();
        assert_eq!(me["email"], "ada@acme.test");
        assert_eq!(me["team"]["id"], w.project.id);
        assert_eq!(me["organization"]["id"], w.org.as_str());
    }
    // `users/@me` is exempt from project scoping.
    let scoped = w.hog.add_personal_key(
        w.admin.id,
        PersonalKeySpec::new("scoped")
            .scopes(["user:read"])
            .scoped_teams([w.project.id]),
    );
    assert_eq!(w.client.get("/api/users/@me/", &scoped.value).status, 200);
}

#[test]
fn oauth_tokens_authenticate_with_their_own_errors() {
    let w = world();
    let token = w
        .hog
        .add_oauth_token(w.admin.id, OAuthTokenSpec::access(["user:read"]));
    assert_eq!(w.client.get("/api/users/@me/", &token).status, 200);
    let unscoped = w
        .hog
        .add_oauth_token(w.admin.id, OAuthTokenSpec::access(Vec::<String>::new()));
    w.client.get("/api/users/@me/", &unscoped).assert(
        403,
        &permission_denied("OAuth token has no scopes and cannot access this resource"),
    );
    w.hog.advance(Duration::from_secs(3600));
    w.client.get("/api/users/@me/", &token).assert(
        401,
        r#"{"type":"authentication_error","code":"authentication_failed","detail":"Access token has expired.","attr":null}"#,
    );
}

#[test]
fn last_used_at_moves_at_most_hourly() {
    let w = world();
    let key = w.key(&["*"]);
    let last_used = || w.hog.personal_key(&key.id).unwrap().last_used_at;
    assert_eq!(last_used(), None);
    w.client.get("/api/personal_api_keys/@current/", &key.value);
    assert_eq!(last_used(), Some(t0()));
    w.hog.advance(Duration::from_secs(3600));
    w.client.get("/api/users/@me/", &key.value);
    assert_eq!(last_used(), Some(t0()), "within the hour: unchanged");
    w.hog.advance(Duration::from_secs(1));
    // Authentication succeeds before the permission check refuses, so even a 403 counts.
    w.client
        .get("/api/personal_api_keys/", &key.value)
        .assert(403, PAK_UNSUPPORTED);
    assert_eq!(last_used(), Some(t0().plus(Duration::from_secs(3601))));
}

#[test]
fn project_scoping_membership_and_admin_checks_use_posthogs_messages() {
    let w = world();
    let other_org = w.hog.add_organization("Other");
    let other_project = w.hog.add_project(&other_org, "Theirs");
    let scoped = w.hog.add_personal_key(
        w.admin.id,
        PersonalKeySpec::new("scoped")
            .scopes(["*"])
            .scoped_teams([w.project.id]),
    );
    let path = format!(
        "/api/projects/{}/project_secret_api_keys/",
        other_project.id
    );
    w.client.get(&path, &scoped.value).assert(
        403,
        &permission_denied(&format!(
            "API key does not have access to the requested project: ID {}.",
            other_project.id
        )),
    );
    let org_scoped = w.hog.add_personal_key(
        w.admin.id,
        PersonalKeySpec::new("org")
            .scopes(["*"])
            .scoped_organizations([w.org.clone()]),
    );
    w.client.get(&path, &org_scoped.value).assert(
        403,
        &permission_denied(&format!(
            "API key does not have access to the requested organization: ID {other_org}."
        )),
    );
    let star = w.key(&["*"]);
    w.client.get(&path, &star.value).assert(
        403,
        &permission_denied("You don't have access to the project."),
    );
    w.client.get("/api/projects/999/project_secret_api_keys/", &star.value).assert(
        404,
        r#"{"type":"invalid_request","code":"not_found","detail":"Project not found.","attr":null}"#,
    );
    let member = w
        .hog
        .add_user(UserSpec::new("max@acme.test").member_of(&w.org, MembershipLevel::Member));
    let member_key = w.hog.add_personal_key(
        member.id,
        PersonalKeySpec::new("m").scopes(["project:write"]),
    );
    assert_eq!(
        w.client
            .get(&w.secret_keys_path(), &member_key.value)
            .status,
        200
    );
    w.client
        .post(
            &w.secret_keys_path(),
            Some(&member_key.value),
            r#"{"label":"x","scopes":["feature_flag:read"]}"#,
        )
        .assert(
            403,
            &permission_denied("You don't have sufficient permissions in the project."),
        );
    let read_only = w.key(&["project:read"]);
    w.client
        .post(
            &w.secret_keys_path(),
            Some(&read_only.value),
            r#"{"label":"x","scopes":["feature_flag:read"]}"#,
        )
        .assert(
            403,
            &permission_denied("API key missing required scope 'project:write'"),
        );
}

#[test]
fn project_secret_keys_are_created_rolled_and_deleted_like_posthog() {
    let w = world();
    let admin_key = w.key(&["project:write"]);
    let path = w.secret_keys_path();
    let created = w.client.post(
        &path,
        Some(&admin_key.value),
        r#"{"label":"flags","scopes":["feature_flag:read"]}"#,
    );
    assert_eq!(created.status, 201, "{}", created.body);
    // `ProjectSecretAPIKeySerializer`'s fields, in its order.
    let positions: Vec<usize> = [
        "id",
        "label",
        "value",
        "mask_value",
        "created_at",
        "created_by",
        "last_used_at",
        "last_rolled_at",
        "scopes",
    ]
    .iter()
    .map(|field| {
        created
            .body
            .find(&format!("\"{field}\":"))
            .unwrap_or_else(|| panic!("{field}"))
    })
    .collect();
    assert!(positions.is_sorted(), "{}", created.body);
    let created = created.json();
    let id = created["id"].as_str().unwrap().to_owned();
    let first_value = created["value"].as_str().unwrap().to_owned();
    assert!(first_value.starts_with("phs_"));
    assert_eq!(created["mask_value"], mask(&first_value));
    assert_eq!(created["created_by"]["email"], "ada@acme.test");
    assert_eq!(created["created_at"], "2025-01-01T00:00:00Z");
    assert_eq!(created["last_rolled_at"], Value::Null);

    // The new value is a working `phs_` secret at the local-evaluation probe.
    w.client
        .get("/api/feature_flag/local_evaluation", &first_value)
        .assert(200, EMPTY_LOCAL_EVALUATION);

    // Labels are unique per project; the scope rules are PostHog's.
    w.client
        .post(&path, Some(&admin_key.value), r#"{"label":"flags","scopes":["feature_flag:read"]}"#)
        .assert(400, r#"{"type":"validation_error","code":"invalid_input","detail":"Project secret API key with label 'flags' already exists.","attr":null}"#);
    w.client
        .post(&path, Some(&admin_key.value), r#"{"label":"all","scopes":["*"]}"#)
        .assert(400, r#"{"type":"validation_error","code":"invalid_input","detail":"Wildcard scope '*' is not allowed for project API keys. Please specify explicit scopes.","attr":"scopes"}"#);
    w.client
        .post(&path, Some(&admin_key.value), r#"{"label":"ins","scopes":["insight:read"]}"#)
        .assert(400, r#"{"type":"validation_error","code":"invalid_input","detail":"Scope 'insight:read' can not be assigned to a project secret API key. Allowed scopes: endpoint:read, feature_flag:read","attr":"scopes"}"#);
    w.client
        .post(&path, Some(&admin_key.value), r#"{"label":"none","scopes":[]}"#)
        .assert(400, r#"{"type":"validation_error","code":"empty","detail":"This list may not be empty.","attr":"scopes"}"#);
    w.client
        .post(&path, Some(&admin_key.value), r#"{"scopes":["endpoint:read"]}"#)
        .assert(400, r#"{"type":"validation_error","code":"required","detail":"This field is required.","attr":"label"}"#);

    // Roll: 200 with the new value; the old value is dead at once.
    w.hog.advance(Duration::from_secs(60));
    let rolled = w
        .client
        .post(&format!("{path}{id}/roll/"), Some(&admin_key.value), "");
    assert_eq!(rolled.status, 200, "{}", rolled.body);
    let rolled = rolled.json();
    let second_value = rolled["value"].as_str().unwrap().to_owned();
    assert_ne!(second_value, first_value);
    assert_eq!(rolled["last_rolled_at"], "2025-01-01T00:01:00Z");
    assert_eq!(rolled["mask_value"], mask(&second_value));
    w.client
        .get("/api/feature_flag/local_evaluation", &first_value)
        .assert(401, SECRET_INVALID);
    w.client
        .get(
            &format!(
                "/api/projects/{}/feature_flags/local_evaluation",
                w.project.id
            ),
            &second_value,
        )
        .assert(200, EMPTY_LOCAL_EVALUATION);

    // Retrieve (through the environments alias) never shows the value.
    let alias = format!(
        "/api/environments/{}/project_secret_api_keys/{id}",
        w.project.id
    );
    let retrieved = w.client.get(&alias, &admin_key.value).json();
    assert_eq!(retrieved["value"], Value::Null);
    assert_eq!(retrieved["mask_value"], mask(&second_value));

    let renamed = w.client.send(
        "PATCH",
        &format!("{path}{id}/"),
        Some(&admin_key.value),
        Some(r#"{"label":"flags (renamed)"}"#),
    );
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(
        (
            renamed.json()["label"].as_str(),
            renamed.json()["value"].is_null()
        ),
        (Some("flags (renamed)"), true)
    );

    let list = w.client.get(&path, &admin_key.value).json();
    assert_eq!(list["count"], 1);
    assert_eq!(list["next"], Value::Null);
    assert_eq!(list["results"][0]["id"], id.as_str());

    w.client
        .send(
            "DELETE",
            &format!("{path}{id}/"),
            Some(&admin_key.value),
            None,
        )
        .assert(204, "");
    w.client
        .get(&alias, &admin_key.value)
        .assert(404, NOT_FOUND);
    w.client
        .get("/api/feature_flag/local_evaluation", &second_value)
        .assert(401, SECRET_INVALID);
}

#[test]
fn project_secret_keys_are_capped_at_fifty_per_project() {
    let w = world();
    for n in 0..50 {
        w.hog.add_project_secret_key(
            w.project.id,
            ProjectSecretKeySpec::new(format!("k{n}"), ["endpoint:read"]),
        );
    }
    let admin_key = w.key(&["*"]);
    w.client
        .post(&w.secret_keys_path(), Some(&admin_key.value), r#"{"label":"one more","scopes":["endpoint:read"]}"#)
        .assert(400, r#"{"type":"validation_error","code":"invalid_input","detail":"You can only have 50 project secret API keys. Remove an existing key before creating a new one.","attr":null}"#);
    let page = w
        .client
        .get(
            &format!("{}?limit=20&offset=20", w.secret_keys_path()),
            &admin_key.value,
        )
        .json();
    assert_eq!(page["count"], 50);
    assert_eq!(page["results"].as_array().unwrap().len(), 20);
    assert_eq!(
        page["next"],
        format!(
            "{}{}?limit=20&offset=40",
            w.hog.base_url(),
            w.secret_keys_path()
        )
    );
    assert_eq!(
        page["previous"],
        format!("{}{}?limit=20", w.hog.base_url(), w.secret_keys_path())
    );
}

#[test]
fn team_secret_tokens_probe_at_local_evaluation_and_rotate_with_a_backup() {
    let w = world();
    let first = w.hog.rotate_team_secret_token(w.project.id);
    let second = w.hog.rotate_team_secret_token(w.project.id);
    for token in [&first, &second] {
        w.client
            .get("/api/feature_flag/local_evaluation", token)
            .assert(200, EMPTY_LOCAL_EVALUATION);
    }
    let other = w.hog.add_project(&w.org, "Other");
    w.client
        .get(
            &format!("/api/projects/{}/feature_flags/local_evaluation", other.id),
            &second,
        )
        .assert(
            403,
            &permission_denied("You do not have permission to perform this action."),
        );
    let third = w.hog.rotate_team_secret_token(w.project.id);
    w.client
        .get("/api/feature_flag/local_evaluation", &first)
        .assert(401, SECRET_INVALID);
    assert!(w.hog.is_live(&second) && w.hog.is_live(&third));
    // A personal key probes there with `feature_flag:read`.
    let key = w.key(&["insight:read"]);
    w.client
        .get("/api/feature_flag/local_evaluation", &key.value)
        .assert(
            403,
            &permission_denied("API key missing required scope 'feature_flag:read'"),
        );
}

#[test]
fn the_ten_key_cap_and_dashboard_validation_give_posthogs_bodies() {
    let w = world();
    let cap = r#"{"type":"validation_error","code":"invalid_input","detail":"You can only have 10 personal API keys. Remove an existing key before creating a new one.","attr":null}"#;
    let invalid_scope = w
        .hog
        .dashboard_create_personal_key(w.admin.id, PersonalKeySpec::new("bad").scopes(["invalid"]))
        .unwrap_err();
    assert_eq!(
        (invalid_scope.status, invalid_scope.body.as_str()),
        (
            400,
            r#"{"type":"validation_error","code":"invalid_input","detail":"Invalid scope: invalid","attr":"scopes"}"#
        )
    );
    for n in 0..9 {
        w.hog
            .add_personal_key(w.admin.id, PersonalKeySpec::new(format!("k{n}")));
    }
    let tenth = w
        .hog
        .dashboard_create_personal_key(
            w.admin.id,
            PersonalKeySpec::new("tenth").scopes(["user:read"]),
        )
        .unwrap();
    assert!(w.hog.is_live(&tenth.value));
    let refused = w
        .hog
        .dashboard_create_personal_key(w.admin.id, PersonalKeySpec::new("eleventh"))
        .unwrap_err();
    assert_eq!((refused.status, refused.body.as_str()), (400, cap));
    // The control endpoint answers the same, for the binary's users.
    w.client
        .post(
            "/_fakehog/dashboard/personal_api_keys",
            None,
            &json!({"user_id": w.admin.id, "label": "eleventh", "scopes": ["*"]}).to_string(),
        )
        .assert(400, cap);
}

#[test]
fn dashboard_roll_kills_the_old_value_at_once() {
    let w = world();
    let key = w.key(&["*"]);
    let new_value = w.hog.dashboard_roll_personal_key(&key.id).unwrap();
    w.client
        .get("/api/personal_api_keys/@current/", &key.value)
        .assert(401, INVALID_KEY);
    let current = w
        .client
        .get("/api/personal_api_keys/@current/", &new_value)
        .json();
    assert_eq!(current["id"], key.id.as_str());
    assert_eq!(current["last_rolled_at"], "2025-01-01T00:00:00Z");
    assert!(w.hog.dashboard_delete_personal_key(&key.id));
    w.client
        .get("/api/personal_api_keys/@current/", &new_value)
        .assert(401, INVALID_KEY);
}

#[test]
fn revoke_leaked_key_rolls_keys_revokes_oauth_and_ignores_team_secrets() {
    let w = world();
    let key = w.key(&["*"]);
    w.client
        .post(
            "/api/revoke_leaked_key",
            None,
            &json!({"token": key.value}).to_string(),
        )
        .assert(200, r#"{"found":true,"type":"personal_api_key"}"#);
    w.client
        .get("/api/personal_api_keys/@current/", &key.value)
        .assert(401, INVALID_KEY);
    let stored = w.hog.personal_key(&key.id).expect("rolled, not deleted");
    assert_eq!(stored.last_rolled_at, Some(t0()));
    assert_ne!(stored.mask_value, mask(&key.value));
    // Reporting it again finds nothing: the value is dead.
    w.client
        .post(
            "/api/revoke_leaked_key",
            None,
            &json!({"token": key.value}).to_string(),
        )
        .assert(200, r#"{"found":false,"type":null}"#);

    let psak = w.hog.add_project_secret_key(
        w.project.id,
        ProjectSecretKeySpec::new("flags", ["feature_flag:read"]),
    );
    w.client
        .post(
            "/api/revoke_leaked_key",
            None,
            &json!({"token": psak.value}).to_string(),
        )
        .assert(200, r#"{"found":true,"type":"project_secret_api_key"}"#);
    assert!(!w.hog.is_live(&psak.value));

    let refresh = w.hog.add_oauth_token(w.admin.id, OAuthTokenSpec::refresh());
    w.client
        .post(
            "/api/revoke_leaked_key",
            None,
            &json!({"token": refresh}).to_string(),
        )
        .assert(200, r#"{"found":true,"type":"oauth_refresh_token"}"#);
    assert!(!w.hog.is_live(&refresh));

    let team_secret = w.hog.rotate_team_secret_token(w.project.id);
    for token in [
        team_secret.as_str(),
        "not-a-posthog-key-at-all",
        &"x".repeat(43),
    ] {
        w.client
            .post(
                "/api/revoke_leaked_key",
                None,
                &json!({ "token": token }).to_string(),
            )
            .assert(200, r#"{"found":false,"type":null}"#);
    }
    assert!(w.hog.is_live(&team_secret));

    w.client
        .post("/api/revoke_leaked_key", None, &json!({"token": "x".repeat(201)}).to_string())
        .assert(400, r#"{"type":"validation_error","code":"max_length","detail":"Ensure this field has no more than 200 characters.","attr":"token"}"#);
    w.client
        .post("/api/revoke_leaked_key", None, r#"{"token":"  "}"#)
        .assert(400, r#"{"type":"validation_error","code":"blank","detail":"This field may not be blank.","attr":"token"}"#);
    w.client
        .post("/api/revoke_leaked_key", None, "{}")
        .assert(400, r#"{"type":"validation_error","code":"required","detail":"This field is required.","attr":"token"}"#);
}

#[test]
fn revoke_leaked_key_throttles_per_ip_with_drfs_wait() {
    let hog = FakeHog::builder()
        .clock(t0())
        .revoke_throttle(RateLimit {
            requests: 1,
            per: Duration::from_secs(60),
        })
        .start()
        .unwrap();
    let client = Client::new(&hog);
    let report = || {
        client.post(
            "/api/revoke_leaked_key",
            None,
            r#"{"token":"phx_not_a_real_key"}"#,
        )
    };
    report().assert(200, r#"{"found":false,"type":null}"#);
    report().assert(429, r#"{"type":"throttled_error","code":"throttled","detail":"Request was throttled. Expected available in 60 seconds.","attr":null}"#);
    hog.advance(Duration::from_secs(59));
    report().assert(429, r#"{"type":"throttled_error","code":"throttled","detail":"Request was throttled. Expected available in 1 second.","attr":null}"#);
    hog.advance(Duration::from_secs(1));
    report().assert(200, r#"{"found":false,"type":null}"#);
}

#[test]
fn activity_log_records_key_changes_with_posthogs_rows() {
    let w = world();
    let reader = w.key(&["activity_log:read", "project:write"]);
    let log_path = format!("/api/projects/{}/activity_log/", w.project.id);

    // A key scoped to the project is logged on the project; an unscoped one on the organisation.
    let scoped = w
        .hog
        .dashboard_create_personal_key(
            w.admin.id,
            PersonalKeySpec::new("scoped")
                .scopes(["user:read"])
                .scoped_teams([w.project.id]),
        )
        .unwrap();
    let unscoped = w
        .hog
        .dashboard_create_personal_key(w.admin.id, PersonalKeySpec::new("unscoped").scopes(["*"]))
        .unwrap();
    w.hog.advance(Duration::from_secs(10));
    w.hog.dashboard_roll_personal_key(&unscoped.id).unwrap();
    w.hog.advance(Duration::from_secs(10));
    assert!(w.hog.dashboard_delete_personal_key(&unscoped.id));

    let project_rows = w.client.get(&log_path, &reader.value).json();
    assert_eq!(project_rows["next"], Value::Null);
    assert_eq!(project_rows["previous"], Value::Null);
    let rows = project_rows["results"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["activity"], "created");
    assert_eq!(row["scope"], "PersonalAPIKey");
    assert_eq!(row["item_id"], scoped.id.as_str());
    assert_eq!(row["user"]["email"], "ada@acme.test");
    assert_eq!(row["organization_id"], w.org.as_str());
    assert_eq!(row["created_at"], "2025-01-01T00:00:00Z");
    assert_eq!(
        row["detail"],
        json!({
            "changes": [], "trigger": null, "name": "scoped", "short_id": null, "type": null,
            "context": {
                "user_id": w.admin.id, "user_email": "ada@acme.test", "user_name": "Ada Lovelace",
                "organization_name": "Acme", "team_name": "Web"
            }
        })
    );

    let all = w
        .client
        .get(
            &format!("{log_path}?include_organization_scoped=1&scope=PersonalAPIKey"),
            &reader.value,
        )
        .json();
    let activities: Vec<(&str, &str)> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["activity"].as_str().unwrap(),
                row["detail"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        activities,
        [
            ("deleted", "unscoped"),
            ("updated", "unscoped"),
            ("created", "unscoped"),
            ("created", "scoped")
        ]
    );
    let roll = &all["results"][1];
    assert_eq!(roll["detail"]["changes"][0]["field"], "mask_value");
    assert_eq!(
        roll["detail"]["changes"][0]["before"],
        mask(&unscoped.value)
    );
    assert_eq!(roll["detail"]["context"]["team_name"], "Unknown Project");
    assert_eq!(all["results"][0]["detail"]["changes"], Value::Null);

    // Project secret keys changed through the API are logged on the project, newest first, and
    // the cursor pages through them.
    let path = w.secret_keys_path();
    let created = w
        .client
        .post(
            &path,
            Some(&reader.value),
            r#"{"label":"flags","scopes":["feature_flag:read"]}"#,
        )
        .json();
    let psak_id = created["id"].as_str().unwrap();
    w.client
        .post(&format!("{path}{psak_id}/roll"), Some(&reader.value), "");
    w.client
        .send(
            "DELETE",
            &format!("{path}{psak_id}"),
            Some(&reader.value),
            None,
        )
        .assert(204, "");
    let first_page = w
        .client
        .get(
            &format!("{log_path}?scope=ProjectSecretAPIKey&page_size=2"),
            &reader.value,
        )
        .json();
    let page: Vec<&str> = first_page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["activity"].as_str().unwrap())
        .collect();
    assert_eq!(page, ["deleted", "updated"]);
    assert_eq!(first_page["results"][0]["item_id"], psak_id);
    let next = first_page["next"].as_str().expect("a second page");
    let second_page = w
        .client
        .get(next.strip_prefix(w.hog.base_url()).unwrap(), &reader.value)
        .json();
    assert_eq!(second_page["results"][0]["activity"], "created");
    assert_eq!(second_page["next"], Value::Null);
    assert!(second_page["previous"].is_string());

    let no_scope = w.key(&["project:read"]);
    w.client.get(&log_path, &no_scope.value).assert(
        403,
        &permission_denied("API key missing required scope 'activity_log:read'"),
    );
}

#[test]
fn capture_checks_shape_and_accepts_unknown_tokens() {
    let w = world();
    let event = |extra: Value| {
        let mut base = json!({"event": "key_rotated", "distinct_id": "secops-bot"});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base.to_string()
    };
    let text = |status: u16, body: &str, answer: Answer| {
        assert_eq!((answer.status, answer.body.as_str()), (status, body));
        assert_eq!(
            answer.content_type.as_deref(),
            Some("text/plain; charset=utf-8")
        );
    };
    let pak = w.key(&["*"]);
    text(
        401,
        "API key is not valid: personal_api_key",
        w.client
            .post("/i/v0/e/", None, &event(json!({"api_key": pak.value}))),
    );
    text(
        401,
        "event submitted without an api_key",
        w.client.post("/i/v0/e/", None, &event(json!({}))),
    );
    text(
        401,
        "API key is not valid: too_long",
        w.client
            .post("/e/", None, &event(json!({"api_key": "x".repeat(65)}))),
    );
    text(
        401,
        "batch submitted with inconsistent api_key values",
        w.client.post(
            "/capture/",
            None,
            &format!(
                "[{},{}]",
                event(json!({"token": "phc_a"})),
                event(json!({"token": "phc_b"}))
            ),
        ),
    );
    text(
        400,
        "event submitted without a distinct_id",
        w.client
            .post("/i/v0/e", None, r#"{"event":"x","api_key":"phc_a"}"#),
    );
    text(
        400,
        "event submitted with an empty event name",
        w.client.post(
            "/i/v0/e",
            None,
            &event(json!({"event": "", "api_key": "phc_a"})),
        ),
    );
    text(
        400,
        "request holds no event",
        w.client
            .post("/batch/", None, r#"{"api_key":"phc_a","batch":[]}"#),
    );
    let broken = w.client.post("/i/v0/e/", None, "{not json");
    assert_eq!(broken.status, 400);
    assert!(
        broken.body.starts_with("failed to parse request: "),
        "{}",
        broken.body
    );
    assert!(w.hog.events().is_empty());

    // Capture never proves a token valid: unknown but well-shaped is 200.
    let uuid = "0190c1b2-7c1e-7a3b-9d2e-4f5a6b7c8d9e";
    let ok = w.client.post(
        "/i/v0/e/",
        None,
        &event(json!({"api_key": "phc_unknown_token", "uuid": uuid})),
    );
    ok.assert(200, r#"{"status":"Ok"}"#);
    assert_eq!(ok.content_type.as_deref(), Some("application/json"));
    // A batch's own token wins over the events'; `properties.token` is read too.
    w.client
        .post(
            "/batch/",
            None,
            &json!({"api_key": w.project.api_token, "batch": [{"event": "a", "distinct_id": 42}]})
                .to_string(),
        )
        .assert(200, r#"{"status":"Ok"}"#);
    w.client
        .post("/e", None, &json!({"event": "b", "$distinct_id": "d", "properties": {"token": w.project.api_token}}).to_string())
        .assert(200, r#"{"status":"Ok"}"#);
    let events = w.hog.events();
    assert_eq!(events.len(), 3);
    assert_eq!(
        (
            events[0].uuid.as_deref(),
            events[0].project_id,
            events[0].token.as_str()
        ),
        (Some(uuid), None, "phc_unknown_token")
    );
    assert_eq!(
        (events[1].distinct_id.as_str(), events[1].project_id),
        ("42", Some(w.project.id))
    );
    assert_eq!(
        (events[2].path.as_str(), events[2].project_id),
        ("/e", Some(w.project.id))
    );
}

#[test]
fn status_faults_answer_with_posthogs_bodies_then_clear() {
    let w = world();
    let key = w.key(&["*"]);
    w.hog.inject(Fault::status(503).times(2).on_path("/api/"));
    w.hog.inject(Fault::status(500));
    w.hog.inject(Fault::throttled(30));
    // The capture fault waits in the queue: /api/ requests do not match it.
    w.hog.inject(Fault::status(503).on_path("/i/v0/e"));
    for _ in 0..2 {
        let answer = w.client.get("/api/users/@me/", &key.value);
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (503, "Service Unavailable")
        );
    }
    w.client.get("/api/users/@me/", &key.value).assert(
        500,
        r#"{"type":"server_error","code":"error","detail":"A server error occurred.","attr":null}"#,
    );
    let throttled = w.client.get("/api/users/@me/", &key.value);
    throttled.assert(429, r#"{"type":"throttled_error","code":"throttled","detail":"Request was throttled. Expected available in 30 seconds.","attr":null}"#);
    assert_eq!(w.client.get("/api/users/@me/", &key.value).status, 200);
    let capture = w.client.post(
        "/i/v0/e/",
        None,
        r#"{"event":"e","distinct_id":"d","api_key":"phc_x"}"#,
    );
    capture.assert(503, "transient error, please retry");
    assert!(
        w.hog.events().is_empty(),
        "a faulted request is not processed"
    );
    w.client
        .post(
            "/i/v0/e/",
            None,
            r#"{"event":"e","distinct_id":"d","api_key":"phc_x"}"#,
        )
        .assert(200, r#"{"status":"Ok"}"#);
}

#[test]
fn delay_faults_really_wait_and_drop_faults_close_the_connection() {
    let w = world();
    let key = w.key(&["*"]);
    let delay = Duration::from_millis(150);
    w.hog.inject(Fault::delay(delay));
    let started = Instant::now();
    assert_eq!(w.client.get("/api/users/@me/", &key.value).status, 200);
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());

    w.hog
        .inject(Fault::drop_connection().on_path("/api/personal_api_keys"));
    let dropped = w.client.try_send(
        "GET",
        "/api/personal_api_keys/@current/",
        Some(&key.value),
        None,
    );
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(w.hog.request_count("/api/personal_api_keys/@current"), 1);
    assert_eq!(
        w.client
            .get("/api/personal_api_keys/@current/", &key.value)
            .status,
        200
    );
}

#[test]
fn request_counters_tell_probes_and_distinct_secrets_apart() {
    let w = world();
    let first = w.key(&["*"]);
    let second = w.key(&["*"]);
    for key in [&first, &second, &first] {
        w.client.get("/api/personal_api_keys/@current/", &key.value);
    }
    w.client
        .get("/api/personal_api_keys/@current", &second.value);
    assert_eq!(w.hog.request_count("/api/personal_api_keys/@current/"), 4);
    assert_eq!(
        w.hog
            .distinct_credentials("/api/personal_api_keys/@current/"),
        2
    );
    assert_eq!(w.hog.request_count("/api/users/@me/"), 0);
    let requests = w.hog.requests();
    assert!(requests.iter().all(|r| {
        r.credential_sha256
            .as_deref()
            .is_some_and(|h| h.len() == 64)
    }));
    assert!(
        !format!("{requests:?}").contains(&first.value),
        "no raw secret in the log"
    );
    // Headers are kept by name with a digest of their value.
    let authorization = requests[0]
        .headers
        .iter()
        .find(|(name, _)| name == "authorization")
        .map(|(_, digest)| digest.clone());
    assert_eq!(
        authorization.as_deref(),
        Some(sha256_hex(&format!("Bearer {}", first.value)).as_str())
    );
    let counts = w
        .client
        .send("GET", "/_fakehog/requests", None, None)
        .json();
    assert_eq!(counts["counts"]["/api/personal_api_keys/@current/"], 3);
    w.hog.reset_requests();
    assert_eq!(w.hog.request_count("/api/personal_api_keys/@current/"), 0);
}

#[test]
fn two_instances_are_two_regions() {
    let us = world();
    let eu = FakeHog::start();
    let eu_client = Client::new(&eu);
    let key = us.key(&["*"]);
    assert_eq!(
        us.client
            .get("/api/personal_api_keys/@current/", &key.value)
            .status,
        200
    );
    eu_client
        .get("/api/personal_api_keys/@current/", &key.value)
        .assert(401, INVALID_KEY);
    eu_client
        .post(
            "/api/revoke_leaked_key",
            None,
            &json!({"token": key.value}).to_string(),
        )
        .assert(200, r#"{"found":false,"type":null}"#);
    assert!(us.hog.is_live(&key.value));
    assert_ne!(us.hog.base_url(), eu.base_url());
}

#[test]
fn control_endpoints_seed_fault_and_set_the_clock_over_http() {
    let hog = FakeHog::start();
    let client = Client::new(&hog);
    let control = |method: &str, path: &str, body: Value| {
        client.send(method, path, None, Some(&body.to_string()))
    };
    let org = control("POST", "/_fakehog/organizations", json!({"name": "Acme"})).json();
    let org_id = org["id"].as_str().unwrap();
    let project = control(
        "POST",
        "/_fakehog/projects",
        json!({"organization_id": org_id, "name": "Web"}),
    )
    .json();
    assert!(project["api_token"].as_str().unwrap().starts_with("phc_"));
    let user = control(
        "POST",
        "/_fakehog/users",
        json!({"email": "ops@acme.test", "memberships": [{"organization_id": org_id, "level": "admin"}]}),
    )
    .json();
    control(
        "PUT",
        "/_fakehog/clock",
        json!({"now": "2030-05-06T07:08:09Z"}),
    )
    .assert(200, r#"{"now":"2030-05-06T07:08:09Z"}"#);
    let key = control(
        "POST",
        "/_fakehog/personal_api_keys",
        json!({"user_id": user["id"], "label": "ci", "scopes": ["user:read"], "created_at": "2029-01-01T00:00:00Z"}),
    )
    .json();
    let value = key["value"].as_str().unwrap();
    let current = client.get("/api/personal_api_keys/@current/", value).json();
    assert_eq!(current["created_at"], "2029-01-01T00:00:00Z");
    assert_eq!(current["last_used_at"], "2030-05-06T07:08:09Z");

    control(
        "POST",
        "/_fakehog/faults",
        json!({"kind": "throttled", "wait_seconds": 7, "path_prefix": "/api/users"}),
    )
    .assert(204, "");
    client.get("/api/users/@me/", value).assert(429, r#"{"type":"throttled_error","code":"throttled","detail":"Request was throttled. Expected available in 7 seconds.","attr":null}"#);
    control(
        "POST",
        "/_fakehog/faults",
        json!({"kind": "status", "status": 1000}),
    )
    .assert(
        400,
        r#"{"error":"`status` must be a valid HTTP status (100-999)"}"#,
    );
    let rolled = client.post(
        &format!(
            "/_fakehog/dashboard/personal_api_keys/{}/roll",
            key["id"].as_str().unwrap()
        ),
        None,
        "",
    );
    assert_eq!(rolled.status, 200);
    let live = control("POST", "/_fakehog/live", json!({"secret": value})).json();
    assert_eq!(live, json!({"live": false}));
    assert_eq!(
        hog.request_count("/_fakehog/live"),
        0,
        "control calls are not counted"
    );
}

#[test]
fn the_fakehog_binary_serves_its_demo_world() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fakehog"))
        .args(["--listen", "127.0.0.1:0", "--seed", "demo"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = lines.next().unwrap().unwrap();
    let base = banner
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap()
        .to_owned();
    let mut demo_json = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with('{') || !demo_json.is_empty() {
            demo_json.push_str(&line);
        }
        if line == "}" {
            break;
        }
    }
    let demo: Value = serde_json::from_str(&demo_json).unwrap();
    let client = Client {
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into(),
        base,
    };
    let key = demo["read_only_key"]["value"].as_str().unwrap();
    let current = client.get("/api/personal_api_keys/@current/", key).json();
    assert_eq!(current["label"], "audit (read-only)");
    let psak = demo["project_secret_key"]["value"].as_str().unwrap();
    client
        .get("/api/feature_flag/local_evaluation", psak)
        .assert(200, EMPTY_LOCAL_EVALUATION);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn flag_definitions_serve_the_tokens_project_to_its_secrets_and_to_scoped_keys() {
    let w = world();
    let flag = w
        .hog
        .add_feature_flag(w.project.id, FeatureFlagSpec::new("new-checkout"));
    w.hog.add_feature_flag(
        w.project.id,
        FeatureFlagSpec::new("half").rollout(50).inactive(),
    );
    let secret = w.hog.add_project_secret_key(
        w.project.id,
        ProjectSecretKeySpec::new("flags", ["feature_flag:read"]),
    );
    let path = format!(
        "/flags/definitions?token={}&send_cohorts",
        w.project.api_token
    );
    let expected = format!(
        r#"{{"flags":[{{"id":{},"team_id":{},"name":"","key":"new-checkout","filters":{{"groups":[{{"properties":[],"rollout_percentage":100}}],"multivariate":null,"payloads":{{}}}},"deleted":false,"active":true,"ensure_experience_continuity":false}},{{"id":{},"team_id":{},"name":"","key":"half","filters":{{"groups":[{{"properties":[],"rollout_percentage":50}}],"multivariate":null,"payloads":{{}}}},"deleted":false,"active":false,"ensure_experience_continuity":false}}],"group_type_mapping":{{}},"cohorts":{{}}}}"#,
        flag.id,
        w.project.id,
        flag.id + 1,
        w.project.id
    );
    w.client.get(&path, &secret.value).assert(200, &expected);
    w.client
        .get(&path, &w.key(&["feature_flag:read"]).value)
        .assert(200, &expected);
    w.client
        .get("/api/feature_flag/local_evaluation", &secret.value)
        .assert(200, &expected);
    w.client.get(&path, &w.key(&["insight:read"]).value).assert(
        403,
        &permission_denied("API key missing required scope 'feature_flag:read'"),
    );
    w.client.get("/flags/definitions", &secret.value).assert(
        401,
        r#"{"type":"authentication_error","code":"authentication_failed","detail":"Project API key invalid.","attr":null}"#,
    );
    let other = w.hog.add_project(&w.org, "Other");
    w.client
        .get(
            &format!("/flags/definitions?token={}", other.api_token),
            &secret.value,
        )
        .assert(
            403,
            &permission_denied("You do not have permission to perform this action."),
        );
    w.client
        .get(&path, "phs_unknownsecret")
        .assert(401, SECRET_INVALID);
}

#[test]
fn feature_flags_annotations_and_insights_check_their_scopes() {
    let w = world();
    let flags = format!("/api/projects/{}/feature_flags/", w.project.id);
    let reader = w.key(&["feature_flag:read", "insight:read"]);
    let writer = w.key(&["feature_flag:write", "annotation:write"]);
    let created = w.client.post(
        &flags,
        Some(&writer.value),
        r#"{"key":"beta","name":"Beta"}"#,
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_u64().unwrap();
    assert_eq!(created.json()["key"], "beta");
    w.client
        .post(&flags, Some(&reader.value), r#"{"key":"nope"}"#)
        .assert(
            403,
            &permission_denied("API key missing required scope 'feature_flag:write'"),
        );
    w.client
        .post(&flags, Some(&writer.value), r#"{"key":"beta"}"#)
        .assert(
            400,
            r#"{"type":"validation_error","code":"unique","detail":"There is already a feature flag with this key.","attr":"key"}"#,
        );
    let list = w.client.get(&flags, &reader.value);
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["count"], 1);
    assert_eq!(list.json()["results"][0]["id"], id);
    let patched = w.client.send(
        "PATCH",
        &format!("{flags}{id}/"),
        Some(&writer.value),
        Some(r#"{"active":false}"#),
    );
    assert_eq!(
        (patched.status, patched.json()["active"].clone()),
        (200, json!(false))
    );
    w.client
        .send(
            "DELETE",
            &format!("{flags}{id}/"),
            Some(&reader.value),
            None,
        )
        .assert(
            403,
            &permission_denied("API key missing required scope 'feature_flag:write'"),
        );
    w.client
        .send(
            "DELETE",
            &format!("{flags}{id}/"),
            Some(&writer.value),
            None,
        )
        .assert(204, "");
    assert!(w.hog.feature_flags(w.project.id)[0].deleted);
    w.client
        .get(&format!("{flags}{id}/"), &reader.value)
        .assert(404, NOT_FOUND);

    let annotations = format!("/api/projects/{}/annotations/", w.project.id);
    let made = w.client.post(
        &annotations,
        Some(&writer.value),
        r#"{"content":"deploy 42","date_marker":"2025-01-01T00:00:00Z"}"#,
    );
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(w.hog.annotations(w.project.id)[0].content, "deploy 42");
    w.client.get(&annotations, &reader.value).assert(
        403,
        &permission_denied("API key missing required scope 'annotation:read'"),
    );
    let insights = format!("/api/projects/{}/insights/", w.project.id);
    w.client.get(&insights, &reader.value).assert(
        200,
        r#"{"count":0,"next":null,"previous":null,"results":[]}"#,
    );
    w.client.get(&insights, &writer.value).assert(
        403,
        &permission_denied("API key missing required scope 'insight:read'"),
    );
}

#[test]
fn remote_config_takes_project_secrets_and_scoped_keys() {
    let w = world();
    w.hog
        .add_feature_flag(w.project.id, FeatureFlagSpec::new("banner"));
    let secret = w.hog.add_project_secret_key(
        w.project.id,
        ProjectSecretKeySpec::new("flags", ["feature_flag:read"]),
    );
    let path = format!(
        "/api/projects/{}/feature_flags/banner/remote_config/",
        w.project.id
    );
    w.client.get(&path, &secret.value).assert(200, "null");
    w.client
        .get(&path, &w.key(&["feature_flag:read"]).value)
        .assert(200, "null");
    w.client.get(&path, &w.key(&["insight:read"]).value).assert(
        403,
        &permission_denied("API key missing required scope 'feature_flag:read'"),
    );
    w.client
        .get(
            &format!(
                "/api/projects/{}/feature_flags/missing/remote_config/",
                w.project.id
            ),
            &secret.value,
        )
        .assert(404, NOT_FOUND);
}

#[test]
fn capture_inflates_gzip_bodies() {
    use std::io::Write as _;
    let w = world();
    let body = json!({"api_key": w.project.api_token, "batch": [{"event": "zipped", "distinct_id": "u1"}]});
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body.to_string().as_bytes()).unwrap();
    let zipped = encoder.finish().unwrap();
    let response = w
        .client
        .agent
        .run(
            http::Request::post(format!("{}/batch/?compression=gzip-js", w.client.base))
                .header("Content-Type", "application/json")
                .body(zipped.clone())
                .unwrap(),
        )
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(w.hog.events()[0].event, "zipped");
    let mut broken = zipped;
    broken.truncate(12);
    let mut response = w
        .client
        .agent
        .run(
            http::Request::post(format!("{}/batch/", w.client.base))
                .body(broken)
                .unwrap(),
        )
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        response.body_mut().read_to_string().unwrap(),
        "failed to decode request: invalid gzip body"
    );
}
