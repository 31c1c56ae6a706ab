//! The client over real HTTP against the PostHog stand-in: two instances play the US and EU
//! regions, faults play PostHog failing, and the request log shows what was sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hogguard_posthog::{
    ActivityLogQuery, CaptureClient, ClientConfig, Deployment, Error, Event, Evidence, Hosts,
    KeyStatus, PROJECT_KEY_REASON, PostHogClient, REFRESH_TOKEN_REASON, Reader, Region, Regions,
    Revoker, Sleeper, Verifier, Writer,
};
use hogguard_secret::Secret;
use hogguard_testkit::keys::{self, Prefix};
use hogguard_testkit::posthog::{
    FakeHog, Fault, MembershipLevel, OAuthTokenSpec, PersonalKeySpec, ProjectSecretKeySpec,
    SeededKey, SeededProject, SeededUser, Timestamp, UserSpec,
};

const CURRENT: &str = "/api/personal_api_keys/@current/";
const ME: &str = "/api/users/@me/";
const LOCAL_EVALUATION: &str = "/api/feature_flag/local_evaluation";
const SERVER_ERROR: &str = "PostHog server error (HTTP 500): A server error occurred.";

/// Records the waits the client asks for and returns at once, so retries cost no time.
#[derive(Default)]
struct RecordingSleeper {
    waits: Mutex<Vec<Duration>>,
}

impl Sleeper for RecordingSleeper {
    fn sleep(&self, duration: Duration) {
        self.waits.lock().unwrap().push(duration);
    }
}

impl RecordingSleeper {
    fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap().clone()
    }
}

fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn t0() -> Timestamp {
    Timestamp::parse("2025-01-01T00:00:00Z").unwrap()
}

/// A stand-in with an organisation, a project and an admin, on a fixed clock.
struct Hog {
    hog: FakeHog,
    project: SeededProject,
    admin: SeededUser,
}

impl Hog {
    fn start() -> Hog {
        let hog = FakeHog::builder().clock(t0()).start().unwrap();
        let organization = hog.add_organization("Acme");
        let project = hog.add_project(&organization, "Web");
        let admin = hog.add_user(
            UserSpec::new("admin@acme.test")
                .name("Ada", "Admin")
                .member_of(&organization, MembershipLevel::Admin),
        );
        Hog {
            hog,
            project,
            admin,
        }
    }

    fn key(&self, label: &str, scopes: &[&str]) -> SeededKey {
        self.hog.add_personal_key(
            self.admin.id,
            PersonalKeySpec::new(label).scopes(scopes.iter().copied()),
        )
    }

    fn hosts(&self) -> Hosts {
        Hosts::new(self.hog.base_url()).unwrap()
    }

    fn deployment(&self) -> Deployment {
        Deployment::of(&self.hosts())
    }
}

/// A config whose waits are recorded instead of slept.
fn recorded() -> (ClientConfig, Arc<RecordingSleeper>) {
    let sleeper = Arc::new(RecordingSleeper::default());
    let config = ClientConfig::default()
        .timeout(secs(5))
        .sleeper(sleeper.clone());
    (config, sleeper)
}

/// US and EU stand-ins and a verifier asking US first.
fn two_regions() -> (Hog, Hog, Verifier, Arc<RecordingSleeper>) {
    let (us, eu) = (Hog::start(), Hog::start());
    let (config, sleeper) = recorded();
    let regions = Regions::new(us.hog.base_url(), eu.hog.base_url()).unwrap();
    let verifier = Verifier::new(
        Deployment::Cloud {
            regions,
            first: Region::Us,
        },
        &config,
    );
    (us, eu, verifier, sleeper)
}

fn secret(key: &SeededKey) -> Secret {
    Secret::new(key.value.clone())
}

fn unknown_personal_key() -> Secret {
    Secret::new(keys::current(Prefix::Personal))
}

/// What proved `status` live; panics when it is not live.
fn evidence_of(status: &KeyStatus) -> &Evidence {
    match status {
        KeyStatus::Live(live) => &live.evidence,
        other => panic!("{other:?}"),
    }
}

fn personal_key_evidence(status: &KeyStatus) -> &hogguard_posthog::PersonalKeyInfo {
    match evidence_of(status) {
        Evidence::PersonalKey(info) => info,
        other => panic!("{other:?}"),
    }
}

fn unknown_reason(status: &KeyStatus) -> &str {
    match status {
        KeyStatus::Unknown { reason } => reason,
        other => panic!("{other:?}"),
    }
}

#[test]
fn live_personal_key_shows_its_metadata_and_scopes() {
    let hog = Hog::start();
    let key = hog.hog.add_personal_key(
        hog.admin.id,
        PersonalKeySpec::new("deploy")
            .scopes(["project:read", "user:read"])
            .scoped_teams([hog.project.id]),
    );
    let (config, _) = recorded();
    let status = Verifier::new(hog.deployment(), &config).verify(&secret(&key));

    assert_eq!(status.region(), None);
    let info = personal_key_evidence(&status);
    assert_eq!(info.id, key.id);
    assert_eq!(info.label, "deploy");
    assert_eq!(
        info.mask_value.as_deref(),
        Some(secret(&key).mask().as_str())
    );
    assert_eq!(info.created_at, "2025-01-01T00:00:00Z");
    assert_eq!(info.last_used_at.as_deref(), Some("2025-01-01T00:00:00Z"));
    assert_eq!(info.last_rolled_at, None);
    assert_eq!(info.user_id, hog.admin.id);
    assert_eq!(info.scopes, ["project:read", "user:read"]);
    assert_eq!(info.scoped_teams, Some(vec![hog.project.id]));
    assert_eq!(info.scoped_organizations, None);
    assert_eq!(hog.hog.request_count(CURRENT), 1);
    assert_eq!(hog.hog.request_count(ME), 0);
}

#[test]
fn invalid_in_both_regions_is_invalid() {
    let (us, eu, verifier, _) = two_regions();
    assert_eq!(verifier.verify(&unknown_personal_key()), KeyStatus::Invalid);
    assert_eq!(us.hog.request_count(CURRENT), 1);
    assert_eq!(eu.hog.request_count(CURRENT), 1);
}

#[test]
fn invalid_in_us_and_failing_eu_is_unknown() {
    let (us, eu, verifier, sleeper) = two_regions();
    eu.hog.inject(Fault::status(500).times(3).on_path(CURRENT));

    let status = verifier.verify(&unknown_personal_key());

    assert_eq!(
        status,
        KeyStatus::Unknown {
            reason: format!("us: invalid; eu: {SERVER_ERROR}")
        }
    );
    assert_eq!(us.hog.request_count(CURRENT), 1);
    assert_eq!(eu.hog.request_count(CURRENT), 3);
    assert_eq!(sleeper.waits(), [millis(500), millis(1000)]);
}

#[test]
fn key_of_the_other_region_is_live_there() {
    let (us, eu, verifier, _) = two_regions();
    let key = eu.key("eu-ci", &["user:read"]);

    let status = verifier.verify(&secret(&key));

    assert_eq!(status.region(), Some(Region::Eu));
    assert_eq!(personal_key_evidence(&status).id, key.id);
    assert_eq!(us.hog.request_count(CURRENT), 1);
    assert_eq!(eu.hog.request_count(CURRENT), 1);
}

#[test]
fn live_in_the_first_region_does_not_ask_the_second() {
    let (us, eu, verifier, _) = two_regions();
    let key = us.key("us-ci", &["user:read"]);
    assert_eq!(verifier.verify(&secret(&key)).region(), Some(Region::Us));
    assert_eq!(eu.hog.request_count(CURRENT), 0);
}

#[test]
fn failing_first_region_does_not_hide_a_key_live_in_the_second() {
    let (us, eu, verifier, _) = two_regions();
    let key = eu.key("eu-ci", &["user:read"]);
    us.hog.inject(Fault::status(503).times(3).on_path("/api/"));
    assert_eq!(verifier.verify(&secret(&key)).region(), Some(Region::Eu));
}

#[test]
fn throttled_probe_waits_the_announced_time_then_succeeds() {
    let hog = Hog::start();
    let key = hog.key("ci", &["user:read"]);
    hog.hog.inject(
        Fault::status_with_body(
            429,
            r#"{"type":"throttled_error","code":"throttled","detail":"Request was throttled. Expected available in 1 seconds.","attr":null}"#,
        )
        .on_path(CURRENT),
    );
    let (config, sleeper) = recorded();

    let status = Verifier::new(hog.deployment(), &config).verify(&secret(&key));

    assert_eq!(personal_key_evidence(&status).id, key.id);
    assert_eq!(sleeper.waits(), [secs(1)]);
    assert_eq!(hog.hog.request_count(CURRENT), 2);
}

#[test]
fn throttled_beyond_the_retry_bound_is_unknown() {
    let hog = Hog::start();
    let key = hog.key("ci", &["user:read"]);
    hog.hog
        .inject(Fault::throttled(2).times(4).on_path(CURRENT));
    let (config, sleeper) = recorded();
    let verifier = Verifier::new(hog.deployment(), &config);

    let status = verifier.verify(&secret(&key));

    assert_eq!(
        unknown_reason(&status),
        "self-hosted: PostHog throttled the request (available again in 2 s): Request was throttled. Expected available in 2 seconds."
    );
    assert_eq!(sleeper.waits(), [secs(2), secs(2), secs(2)]);
    assert_eq!(hog.hog.request_count(CURRENT), 4);

    // A wait longer than the client sits out is not waited for at all.
    hog.hog.reset_requests();
    hog.hog.inject(Fault::throttled(3600).on_path(CURRENT));
    let status = verifier.verify(&secret(&key));
    assert_eq!(
        unknown_reason(&status),
        "self-hosted: PostHog throttled the request (available again in 3600 s): Request was throttled. Expected available in 3600 seconds."
    );
    assert_eq!(hog.hog.request_count(CURRENT), 1);
    assert_eq!(sleeper.waits().len(), 3);
}

#[test]
fn throttled_run_still_gives_every_key_a_status() {
    let hog = Hog::start();
    let live: Vec<SeededKey> = (0..4)
        .map(|n| hog.key(&format!("ci-{n}"), &["user:read"]))
        .collect();
    let mut secrets: Vec<Secret> = live.iter().map(secret).collect();
    secrets.push(unknown_personal_key());
    secrets.push(Secret::new(hog.project.api_token.clone()));
    hog.hog
        .inject(Fault::throttled(1).times(1000).on_path("/api/"));
    let (config, sleeper) = recorded();

    let statuses = Verifier::new(hog.deployment(), &config)
        .concurrency(3)
        .verify_all(&secrets);

    assert_eq!(statuses.len(), 6);
    for status in &statuses[..5] {
        assert_eq!(
            unknown_reason(status),
            "self-hosted: PostHog throttled the request (available again in 1 s): Request was throttled. Expected available in 1 second."
        );
    }
    assert_eq!(unknown_reason(&statuses[5]), PROJECT_KEY_REASON);
    // Each probed key: one attempt and three retries, each after the announced second.
    assert_eq!(hog.hog.request_count(CURRENT), 5 * 4);
    assert_eq!(sleeper.waits(), vec![secs(1); 15]);
}

#[test]
fn a_short_throttle_is_absorbed_in_a_run() {
    let hog = Hog::start();
    let live: Vec<SeededKey> = (0..3)
        .map(|n| hog.key(&format!("ci-{n}"), &["user:read"]))
        .collect();
    let secrets: Vec<Secret> = live.iter().map(secret).collect();
    hog.hog
        .inject(Fault::throttled(1).times(2).on_path(CURRENT));
    let (config, sleeper) = recorded();

    let statuses = Verifier::new(hog.deployment(), &config).verify_all(&secrets);

    let ids: Vec<&str> = statuses
        .iter()
        .map(|status| personal_key_evidence(status).id.as_str())
        .collect();
    let expected: Vec<&str> = live.iter().map(|key| key.id.as_str()).collect();
    assert_eq!(ids, expected);
    assert_eq!(sleeper.waits(), [secs(1), secs(1)]);
    assert_eq!(hog.hog.request_count(CURRENT), 5);
}

#[test]
fn each_distinct_secret_is_probed_once() {
    let hog = Hog::start();
    let key = hog.key("ci", &["user:read"]);
    let other = unknown_personal_key();
    let secrets = [secret(&key), other.clone(), secret(&key), secret(&key)];
    let (config, _) = recorded();

    let statuses = Verifier::new(hog.deployment(), &config).verify_all(&secrets);

    assert_eq!(hog.hog.request_count(CURRENT), 2);
    assert_eq!(hog.hog.distinct_credentials(CURRENT), 2);
    assert_eq!(personal_key_evidence(&statuses[0]).id, key.id);
    assert_eq!(statuses[1], KeyStatus::Invalid);
    assert_eq!(statuses[2], statuses[0]);
    assert_eq!(statuses[3], statuses[0]);
}

#[test]
fn timeout_makes_the_status_unknown() {
    let hog = Hog::start();
    let key = hog.key("ci", &["user:read"]);
    hog.hog.inject(Fault::delay(secs(2)).on_path(CURRENT));
    let config = ClientConfig::default().timeout(millis(300));

    let status = Verifier::new(hog.deployment(), &config).verify(&secret(&key));

    assert_eq!(
        status,
        KeyStatus::Unknown {
            reason: "self-hosted: PostHog did not answer within 300 ms".to_owned()
        }
    );
    assert_eq!(hog.hog.request_count(CURRENT), 1);
}

#[test]
fn timeout_in_one_region_and_invalid_in_the_other_is_unknown() {
    let (us, eu) = (Hog::start(), Hog::start());
    us.hog.inject(Fault::delay(secs(2)).on_path(CURRENT));
    let regions = Regions::new(us.hog.base_url(), eu.hog.base_url()).unwrap();
    let verifier = Verifier::new(
        Deployment::Cloud {
            regions,
            first: Region::Us,
        },
        &ClientConfig::default().timeout(millis(300)),
    );

    let status = verifier.verify(&unknown_personal_key());

    assert_eq!(
        unknown_reason(&status),
        "us: PostHog did not answer within 300 ms; eu: invalid"
    );
}

#[test]
fn dropped_connection_is_a_network_error() {
    let hog = Hog::start();
    let key = hog.key("audit", &["project:read"]);
    hog.hog
        .inject(Fault::drop_connection().times(3).on_path(CURRENT));
    let (config, sleeper) = recorded();

    let error = PostHogClient::<Reader>::connect(&hog.hosts(), &config, secret(&key)).unwrap_err();

    assert!(matches!(error, Error::Network { .. }), "{error:?}");
    hogguard_testkit::errors::assert_no_repeated_segment(&error);
    assert_eq!(
        hogguard_testkit::errors::chain(&error).len(),
        2,
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_eq!(hog.hog.request_count(CURRENT), 3);
    assert_eq!(sleeper.waits(), [millis(500), millis(1000)]);

    // One cut connection on a read is absorbed by a retry.
    hog.hog.inject(Fault::drop_connection().on_path(CURRENT));
    let reader = PostHogClient::<Reader>::connect(&hog.hosts(), &config, secret(&key)).unwrap();
    assert_eq!(reader.key_info().id, key.id);
}

#[test]
fn server_errors_are_retried_for_reads() {
    let hog = Hog::start();
    let key = hog.key("audit", &["project:read"]);
    hog.hog.add_project_secret_key(
        hog.project.id,
        ProjectSecretKeySpec::new("flags", ["feature_flag:read"]),
    );
    let path = format!("/api/projects/{}/project_secret_api_keys/", hog.project.id);
    let (config, sleeper) = recorded();
    let reader = PostHogClient::<Reader>::connect(&hog.hosts(), &config, secret(&key)).unwrap();
    hog.hog.inject(Fault::status(500).times(2).on_path(&path));

    let keys = reader.project_secret_keys(hog.project.id).unwrap();

    let labels: Vec<&str> = keys.iter().map(|key| key.label.as_str()).collect();
    assert_eq!(labels, ["flags"]);
    assert_eq!(hog.hog.request_count(&path), 3);
    assert_eq!(sleeper.waits(), [millis(500), millis(1000)]);
}

#[test]
fn server_errors_are_not_retried_for_create_or_roll() {
    let hog = Hog::start();
    let key = hog.key("rotation", &["project:write"]);
    let existing = hog.hog.add_project_secret_key(
        hog.project.id,
        ProjectSecretKeySpec::new("flags", ["feature_flag:read"]),
    );
    let list_path = format!("/api/projects/{}/project_secret_api_keys/", hog.project.id);
    let roll_path = format!("{list_path}{}/roll/", existing.id);
    let (config, sleeper) = recorded();
    let writer = PostHogClient::<Writer>::connect(&hog.hosts(), &config, secret(&key)).unwrap();
    let server_error = Error::Server {
        status: 500,
        detail: "A server error occurred.".to_owned(),
    };

    hog.hog
        .inject(Fault::status(500).times(5).on_path(&list_path));
    let created = writer.create_project_secret_key(hog.project.id, "new", &["feature_flag:read"]);
    assert_eq!(created.unwrap_err(), server_error);
    assert_eq!(hog.hog.request_count(&list_path), 1);
    hog.hog.clear_faults();

    hog.hog
        .inject(Fault::status(502).times(5).on_path(&roll_path));
    let rolled = writer.roll_project_secret_key(hog.project.id, &existing.id);
    assert_eq!(
        rolled.unwrap_err(),
        Error::Server {
            status: 502,
            detail: "Bad Gateway".to_owned()
        }
    );
    assert_eq!(hog.hog.request_count(&roll_path), 1);
    assert!(hog.hog.is_live(&existing.value));

    hog.hog.clear_faults();
    hog.hog.inject(Fault::drop_connection().on_path(&list_path));
    let created = writer.create_project_secret_key(hog.project.id, "new", &["feature_flag:read"]);
    assert!(matches!(created, Err(Error::Network { .. })), "{created:?}");
    assert_eq!(sleeper.waits(), Vec::<Duration>::new());
}

#[test]
fn reader_is_refused_a_key_that_can_write_projects() {
    let hog = Hog::start();
    let key = hog.key("too-strong", &["activity_log:read", "project:write"]);
    let (config, _) = recorded();

    let error = PostHogClient::<Reader>::connect(&hog.hosts(), &config, secret(&key)).unwrap_err();

    assert_eq!(
        error,
        Error::ReaderHoldsWriteScope {
            scope: "project:write".to_owned()
        }
    );
    assert_eq!(
        error.to_string(),
        "a read-only client refuses this key: it holds the write scope `project:write`"
    );
}

#[test]
fn writer_is_refused_a_key_without_project_write() {
    let hog = Hog::start();
    let key = hog.key("too-weak", &["project:read", "activity_log:read"]);
    let (config, _) = recorded();

    let error = PostHogClient::<Writer>::connect(&hog.hosts(), &config, secret(&key)).unwrap_err();

    assert_eq!(
        error,
        Error::WriterLacksScope {
            scope: "project:write".to_owned()
        }
    );
    assert_eq!(
        error.to_string(),
        "a writer client needs a key with the scope `project:write`, which this key lacks"
    );
}

#[test]
fn clients_refuse_keys_posthog_does_not_know_and_other_kinds() {
    let hog = Hog::start();
    let (config, _) = recorded();
    let error = PostHogClient::<Reader>::connect(&hog.hosts(), &config, unknown_personal_key())
        .unwrap_err();
    assert_eq!(
        error,
        Error::InvalidCredential {
            status: 401,
            detail: "Personal API key found in request Authorization header is invalid.".to_owned()
        }
    );
    let error = PostHogClient::<Reader>::connect(
        &hog.hosts(),
        &config,
        Secret::new(hog.project.api_token.clone()),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            Error::UnsupportedCredential {
                kind: "project_api_key",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(hog.hog.request_count(CURRENT), 1);
}

#[test]
fn project_secret_key_create_roll_delete_round_trip() {
    let hog = Hog::start();
    let key = hog.key("rotation", &["project:write"]);
    let (config, _) = recorded();
    let writer = PostHogClient::<Writer>::connect(&hog.hosts(), &config, secret(&key)).unwrap();
    let project = hog.project.id;

    let created = writer
        .create_project_secret_key(project, "flags", &["feature_flag:read"])
        .unwrap();
    assert!(created.value.expose().starts_with("phs_"));
    assert_eq!(created.info.label, "flags");
    assert_eq!(created.info.scopes, ["feature_flag:read"]);
    assert_eq!(created.info.mask_value, Some(created.value.mask()));
    assert_eq!(
        created.info.created_by.as_ref().map(|user| user.id),
        Some(hog.admin.id)
    );
    assert!(hog.hog.is_live(created.value.expose()));

    let listed = writer.project_secret_keys(project).unwrap();
    assert_eq!(listed, std::slice::from_ref(&created.info));
    assert_eq!(
        writer
            .project_secret_key(project, &created.info.id)
            .unwrap(),
        created.info
    );

    let rolled = writer
        .roll_project_secret_key(project, &created.info.id)
        .unwrap();
    assert_ne!(rolled.value, created.value);
    assert_eq!(
        rolled.info.last_rolled_at.as_deref(),
        Some("2025-01-01T00:00:00Z")
    );
    assert!(!hog.hog.is_live(created.value.expose()));
    assert!(hog.hog.is_live(rolled.value.expose()));

    let verifier = Verifier::new(hog.deployment(), &config);
    let statuses = verifier.verify_all(&[rolled.value.clone(), created.value.clone()]);
    assert_eq!(evidence_of(&statuses[0]), &Evidence::SecretKey);
    assert_eq!(statuses[0].region(), None);
    assert_eq!(statuses[1], KeyStatus::Invalid);
    assert_eq!(hog.hog.request_count(LOCAL_EVALUATION), 2);

    writer
        .delete_project_secret_key(project, &created.info.id)
        .unwrap();
    assert_eq!(writer.project_secret_keys(project).unwrap(), []);
    assert_eq!(
        writer.project_secret_key(project, &created.info.id),
        Err(Error::NotFound {
            detail: "Not found.".to_owned()
        })
    );
    assert!(!hog.hog.is_live(rolled.value.expose()));
}

#[test]
fn posthog_refusals_become_typed_errors() {
    let hog = Hog::start();
    let (config, _) = recorded();
    let audit = hog.key("audit", &["activity_log:read"]);
    let reader = PostHogClient::<Reader>::connect(&hog.hosts(), &config, secret(&audit)).unwrap();
    assert_eq!(
        reader.project_secret_keys(hog.project.id),
        Err(Error::MissingScope {
            scope: "project:read".to_owned()
        })
    );
    assert_eq!(
        reader.activity_log(9999, &ActivityLogQuery::default(), 10),
        Err(Error::NotFound {
            detail: "Project not found.".to_owned()
        })
    );

    let rotation = hog.key("rotation", &["project:write"]);
    let writer =
        PostHogClient::<Writer>::connect(&hog.hosts(), &config, secret(&rotation)).unwrap();
    assert_eq!(
        writer.create_project_secret_key(hog.project.id, "everything", &["*"]),
        Err(Error::Validation {
            code: "invalid_input".to_owned(),
            detail: "Wildcard scope '*' is not allowed for project API keys. Please specify explicit scopes.".to_owned(),
            attr: Some("scopes".to_owned())
        })
    );

    // A member (not an admin) may read project secret keys but not roll them.
    let organization = hog.project.organization_id.clone();
    let member = hog.hog.add_user(
        UserSpec::new("member@acme.test").member_of(&organization, MembershipLevel::Member),
    );
    let member_key = hog.hog.add_personal_key(
        member.id,
        PersonalKeySpec::new("member").scopes(["project:write"]),
    );
    let writer =
        PostHogClient::<Writer>::connect(&hog.hosts(), &config, secret(&member_key)).unwrap();
    assert_eq!(
        writer.create_project_secret_key(hog.project.id, "flags", &["feature_flag:read"]),
        Err(Error::PermissionDenied {
            detail: "You don't have sufficient permissions in the project.".to_owned()
        })
    );
}

#[test]
fn revoke_leaked_rolls_a_personal_key_in_its_region() {
    let (us, eu, verifier, _) = two_regions();
    let key = us.key("leaked", &["*"]);
    let leaked = secret(&key);
    let (config, _) = recorded();
    let regions = Regions::new(us.hog.base_url(), eu.hog.base_url()).unwrap();
    let revoker = Revoker::new(
        Deployment::Cloud {
            regions,
            first: Region::Us,
        },
        &config,
    );
    assert_eq!(verifier.verify(&leaked).region(), Some(Region::Us));

    let revocations = revoker.revoke_leaked(&leaked, None).unwrap();

    let outcomes: Vec<(Option<Region>, bool, Option<&str>)> = revocations
        .iter()
        .map(|revocation| {
            let report = revocation.result.as_ref().unwrap();
            (revocation.region, report.found, report.kind.as_deref())
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (Some(Region::Us), true, Some("personal_api_key")),
            (Some(Region::Eu), false, None)
        ]
    );
    assert_eq!(revocations[0].api.as_str(), us.hog.base_url());
    assert!(!us.hog.is_live(&key.value));
    assert!(
        us.hog
            .personal_key(&key.id)
            .unwrap()
            .last_rolled_at
            .is_some()
    );
    assert_eq!(verifier.verify(&leaked), KeyStatus::Invalid);
    // The report went in the body, unauthenticated.
    let reports: Vec<_> = us
        .hog
        .requests()
        .into_iter()
        .filter(|request| request.path == "/api/revoke_leaked_key")
        .collect();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].credential_sha256, None);
    assert_eq!(reports[0].query, "");
}

#[test]
fn revoke_leaked_to_a_known_region_asks_only_that_region() {
    let (us, eu, _, _) = two_regions();
    let key = eu.key("leaked", &["*"]);
    let regions = Regions::new(us.hog.base_url(), eu.hog.base_url()).unwrap();
    let revoker = Revoker::new(
        Deployment::Cloud {
            regions,
            first: Region::Us,
        },
        &ClientConfig::default(),
    );

    let revocations = revoker
        .revoke_leaked(&secret(&key), Some(Region::Eu))
        .unwrap();

    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0].region, Some(Region::Eu));
    assert_eq!(
        revocations[0].result.as_ref().map(|report| report.found),
        Ok(true)
    );
    assert_eq!(us.hog.request_count("/api/revoke_leaked_key"), 0);
    assert!(!eu.hog.is_live(&key.value));

    let public = revoker.revoke_leaked(&Secret::new(eu.project.api_token.clone()), None);
    assert!(
        matches!(
            public,
            Err(Error::UnsupportedCredential {
                kind: "project_api_key",
                ..
            })
        ),
        "{public:?}"
    );
}

#[test]
fn other_credential_kinds_are_probed_their_own_way() {
    let hog = Hog::start();
    let (config, _) = recorded();
    let team_secret = hog.hog.rotate_team_secret_token(hog.project.id);
    let access = hog
        .hog
        .add_oauth_token(hog.admin.id, OAuthTokenSpec::access(["user:read"]));
    let narrow_access = hog
        .hog
        .add_oauth_token(hog.admin.id, OAuthTokenSpec::access(["project:read"]));
    let refresh = hog
        .hog
        .add_oauth_token(hog.admin.id, OAuthTokenSpec::refresh());
    let secrets = [
        Secret::new(team_secret),
        Secret::new(keys::current(Prefix::Secret)),
        Secret::new(access),
        Secret::new(narrow_access),
        Secret::new(keys::current(Prefix::OAuthAccess)),
        Secret::new(refresh),
        Secret::new(hog.project.api_token.clone()),
    ];

    let statuses = Verifier::new(hog.deployment(), &config).verify_all(&secrets);

    assert_eq!(evidence_of(&statuses[0]), &Evidence::SecretKey);
    assert_eq!(statuses[1], KeyStatus::Invalid);
    match evidence_of(&statuses[2]) {
        Evidence::User(user) => {
            assert_eq!(user.basic.id, hog.admin.id);
            assert_eq!(user.basic.email.as_deref(), Some("admin@acme.test"));
            assert_eq!(user.team.as_ref().map(|team| team.id), Some(hog.project.id));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        evidence_of(&statuses[3]),
        &Evidence::UserEndpointDenied {
            reason: "the key lacks the scope `user:read`".to_owned()
        }
    );
    assert_eq!(statuses[4], KeyStatus::Invalid);
    assert_eq!(unknown_reason(&statuses[5]), REFRESH_TOKEN_REASON);
    assert_eq!(unknown_reason(&statuses[6]), PROJECT_KEY_REASON);
    assert_eq!(hog.hog.request_count(LOCAL_EVALUATION), 2);
    assert_eq!(hog.hog.request_count(ME), 3);
    assert_eq!(hog.hog.request_count(CURRENT), 0);
    assert_eq!(hog.hog.requests().len(), 5);
}

#[test]
fn personal_key_falls_back_to_me_when_current_is_refused() {
    let hog = Hog::start();
    let with_user_read = hog.key("a", &["user:read"]);
    let without = hog.key("b", &["project:read"]);
    let unsupported = r#"{"type":"authentication_error","code":"permission_denied","detail":"This action does not support Personal API Key access","attr":null}"#;
    hog.hog.inject(
        Fault::status_with_body(403, unsupported)
            .times(2)
            .on_path(CURRENT),
    );
    let (config, _) = recorded();

    let statuses = Verifier::new(hog.deployment(), &config)
        .concurrency(1)
        .verify_all(&[secret(&with_user_read), secret(&without)]);

    match evidence_of(&statuses[0]) {
        Evidence::User(user) => assert_eq!(user.basic.id, hog.admin.id),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        evidence_of(&statuses[1]),
        &Evidence::UserEndpointDenied {
            reason: "the key lacks the scope `user:read`".to_owned()
        }
    );
    assert_eq!(hog.hog.request_count(ME), 2);
}

#[test]
fn keys_never_appear_in_urls_errors_or_debug_output() {
    let hog = Hog::start();
    let key = hog.key("ci", &["project:write"]);
    let raw = key.value.clone();
    let (config, _) = recorded();
    let verifier = Verifier::new(hog.deployment(), &config);
    let mut shown = Vec::new();

    // An error page that echoes the credential back.
    hog.hog.inject(
        Fault::status_with_body(500, format!("upstream choked on {raw}"))
            .times(3)
            .on_path(CURRENT),
    );
    let status = verifier.verify(&secret(&key));
    assert_eq!(
        unknown_reason(&status),
        format!(
            "self-hosted: PostHog server error (HTTP 500): upstream choked on {}",
            secret(&key).mask()
        )
    );
    shown.push(format!("{status:?}"));
    shown.push(format!("{verifier:?}"));

    let reader_error =
        PostHogClient::<Reader>::connect(&hog.hosts(), &config, secret(&key)).unwrap_err();
    shown.push(reader_error.to_string());
    shown.push(format!("{reader_error:?}"));

    let writer = PostHogClient::<Writer>::connect(&hog.hosts(), &config, secret(&key)).unwrap();
    shown.push(format!("{writer:?}"));
    let created = writer
        .create_project_secret_key(hog.project.id, "flags", &["feature_flag:read"])
        .unwrap();
    shown.push(format!("{created:?}"));
    assert!(!shown.last().unwrap().contains(created.value.expose()));

    hog.hog
        .inject(Fault::drop_connection().times(3).on_path(CURRENT));
    let network = verifier.verify(&secret(&key));
    shown.push(format!("{network:?}"));

    let revoker = Revoker::new(hog.deployment(), &config);
    hog.hog.inject(
        Fault::status_with_body(400, format!(r#"{{"type":"validation_error","code":"invalid_input","detail":"bad token {raw}","attr":"token"}}"#))
            .on_path("/api/revoke_leaked_key"),
    );
    let revocations = revoker.revoke_leaked(&secret(&key), None).unwrap();
    shown.push(format!("{revocations:?}"));
    let revoke_error = revocations[0].result.as_ref().unwrap_err();
    shown.push(revoke_error.to_string());
    assert_eq!(
        revoke_error,
        &Error::Validation {
            code: "invalid_input".to_owned(),
            detail: format!("bad token {}", secret(&key).mask()),
            attr: Some("token".to_owned())
        }
    );

    let capture = CaptureClient::new(
        &hog.hosts(),
        &config,
        Secret::new(hog.project.api_token.clone()),
    )
    .unwrap();
    shown.push(format!("{capture:?}"));

    for text in &shown {
        assert!(!text.contains(&raw), "raw key shown in {text}");
    }
    let requests = hog.hog.requests();
    assert!(requests.len() >= 8, "{requests:?}");
    for request in &requests {
        assert!(!request.path.contains(&raw), "{request:?}");
        assert!(!request.query.contains(&raw), "{request:?}");
        assert!(
            !request.path.contains("phx_") && !request.query.contains("phx_"),
            "{request:?}"
        );
    }
    // Every authenticated request carried the key in the Authorization header.
    assert!(
        requests
            .iter()
            .filter(|request| request.path != "/api/revoke_leaked_key")
            .all(|request| request.credential_sha256.as_deref()
                == Some(secret(&key).fingerprint().as_str())),
        "{requests:?}"
    );
}

#[test]
fn capture_batch_arrives_with_uuids() {
    let hog = Hog::start();
    let (config, _) = recorded();
    let hosts = Hosts::new("https://api.unused.example")
        .unwrap()
        .with_ingest(hog.hog.base_url())
        .unwrap();
    let capture =
        CaptureClient::new(&hosts, &config, Secret::new(hog.project.api_token.clone())).unwrap();
    let events = [
        Event::new("key_rotated", "hogguard")
            .with_property("key_mask", "phs_...abcd")
            .with_property("$process_person_profile", false),
        Event::new("scan_finished", "hogguard").with_timestamp("2025-01-01T00:00:00Z"),
    ];

    capture.capture_batch(&events).unwrap();
    capture.capture(&Event::new("single", "hogguard")).unwrap();
    capture.capture_batch(&[]).unwrap();

    let captured = hog.hog.events();
    assert_eq!(captured.len(), 3);
    for (event, sent) in captured.iter().zip(&events) {
        assert_eq!(event.path, "/batch/");
        assert_eq!(event.uuid.as_deref(), Some(sent.uuid()));
        assert_eq!(event.event, sent.name());
        assert_eq!(event.distinct_id, "hogguard");
        assert_eq!(event.timestamp.as_deref(), Some(sent.timestamp()));
        assert_eq!(event.token, hog.project.api_token);
        assert_eq!(event.project_id, Some(hog.project.id));
        assert_eq!(&event.properties, sent.properties());
    }
    assert_ne!(captured[0].uuid, captured[1].uuid);
    assert_eq!(captured[2].path, "/i/v0/e/");
    assert_eq!(captured[2].event, "single");
    assert!(captured[2].uuid.is_some());
    assert_eq!(hog.hog.request_count("/batch/"), 1);
}

#[test]
fn capture_retries_server_errors_because_events_carry_uuids() {
    let hog = Hog::start();
    let (config, sleeper) = recorded();
    let capture = CaptureClient::new(
        &hog.hosts(),
        &config,
        Secret::new(hog.project.api_token.clone()),
    )
    .unwrap();
    hog.hog.inject(Fault::status(503).on_path("/batch"));

    capture
        .capture_batch(&[Event::new("key_rotated", "hogguard")])
        .unwrap();

    assert_eq!(hog.hog.request_count("/batch/"), 2);
    assert_eq!(hog.hog.events().len(), 1);
    assert_eq!(sleeper.waits(), [millis(500)]);
}

#[test]
fn activity_log_follows_the_cursor() {
    let hog = Hog::start();
    let (config, _) = recorded();
    let rotation = hog.key("rotation", &["project:write"]);
    let writer =
        PostHogClient::<Writer>::connect(&hog.hosts(), &config, secret(&rotation)).unwrap();
    for label in ["one", "two", "three"] {
        hog.hog.advance(secs(60));
        writer
            .create_project_secret_key(hog.project.id, label, &["feature_flag:read"])
            .unwrap();
    }
    let audit = hog.key("audit", &["activity_log:read"]);
    let reader = PostHogClient::<Reader>::connect(&hog.hosts(), &config, secret(&audit)).unwrap();
    let query = ActivityLogQuery {
        scope: Some("ProjectSecretAPIKey".to_owned()),
        page_size: Some(2),
        ..ActivityLogQuery::default()
    };

    let first = reader
        .activity_log_page(hog.project.id, &query, None)
        .unwrap();
    let all = reader.activity_log(hog.project.id, &query, 10).unwrap();
    let limited = reader.activity_log(hog.project.id, &query, 1).unwrap();

    assert_eq!(first.entries.len(), 2);
    assert!(first.next_cursor.is_some());
    let names: Vec<Option<&str>> = all
        .iter()
        .map(|entry| entry.detail.name.as_deref())
        .collect();
    assert_eq!(names, [Some("three"), Some("two"), Some("one")]);
    assert!(all.iter().all(|entry| entry.activity == "created"
        && entry.scope == "ProjectSecretAPIKey"
        && entry.user.as_ref().map(|user| user.id) == Some(hog.admin.id)));
    assert_eq!(all[0].created_at, "2025-01-01T00:03:00Z");
    assert_eq!(limited, all[..1]);
}
