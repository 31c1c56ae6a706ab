//! Project secret API keys against the PostHog stand-in: the happy path, the verify command,
//! abort, key ages, refusals and PostHog failing on each call.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hogguard_rotate::{AgeSource, CrashPoint, Outcome, RotateError, Step, Store};
use hogguard_testkit::posthog::{Fault, ProjectSecretKeySpec, Timestamp};

use crate::support::{MemoryAudit, PREVIOUS, Person, VARIABLE, World, env_rest, env_value};

#[test]
fn creates_stores_verifies_then_deletes_the_old_key() {
    let world = World::new();
    let old = world.seed_secret_key();
    let rest_before = env_rest(&world.env_file());
    let audit = MemoryAudit::default();
    let marker = world.dir.path().join("verified");
    let request = world.secret_key_request().verify_command(format!(
        "test \"$HOGGUARD_VARIABLE\" = {VARIABLE} && grep -q {VARIABLE} \"$HOGGUARD_ENV_FILE\" && touch {}",
        marker.display()
    ));

    let mut person = Person::silent();
    let outcome = world.rotator().run(&request, &mut person, &audit).unwrap();

    // Issue 12 point 5: the outcome is returned, not also shown (the CLI printed it twice).
    assert_eq!(person.shown, Vec::<String>::new());
    let Outcome::Completed {
        rotation_id,
        old: old_ref,
        new,
    } = &outcome
    else {
        panic!("{outcome:?}")
    };
    let stored = env_value(&world.env_file(), VARIABLE).unwrap();
    assert!(world.hog.is_live(&stored));
    assert!(!world.hog.is_live(&old.value));
    assert_eq!(old_ref.id.as_deref(), Some(old.id.as_str()));
    assert_eq!(env_value(&world.env_file(), PREVIOUS), None);
    assert_eq!(env_rest(&world.env_file()), rest_before);
    let text = fs::read_to_string(world.env_file()).unwrap();
    assert!(
        text.starts_with("# production\r\nexport POSTHOG_FLAGS_KEY=\"phs_"),
        "{text:?}"
    );
    assert!(text.ends_with("\" # flags\r\nOTHER='kept'\r\n"), "{text:?}");
    assert!(marker.exists(), "the verify command ran");

    let keys = world.secret_keys();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, new.id.clone().unwrap());
    assert_eq!(keys[0].label, format!("flags rot-{rotation_id}"));
    assert_eq!(keys[0].scopes, ["feature_flag:read"]);
    assert!(world.rotator().open_rotation(&request).unwrap().is_none());

    let actions = audit.actions();
    for step in [
        Step::CreateKey,
        Step::CheckNewKey,
        Step::StoreNewKey,
        Step::RunVerifyCommand,
        Step::RetireOldKey,
    ] {
        let intent = actions
            .iter()
            .position(|a| *a == format!("key.rotate.{step}.intent"))
            .unwrap();
        let done = actions
            .iter()
            .position(|a| *a == format!("key.rotate.{step}"))
            .unwrap();
        assert!(intent < done, "{step}");
    }
    assert_eq!(actions.first().unwrap(), "key.rotate.start");
    assert_eq!(actions.last().unwrap(), "key.rotate.complete");
    audit.assert_holds_none_of(&[&old.value, &stored, &world.admin_key.value]);

    // The next rotation starts from the new key and reuses the label's base.
    let again = world
        .rotator()
        .run(&request, &mut Person::silent(), &audit)
        .unwrap();
    let Outcome::Completed { rotation_id, .. } = again else {
        panic!("{again:?}")
    };
    let keys = world.secret_keys();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].label, format!("flags rot-{rotation_id}"));
}

#[test]
fn a_failing_verify_command_keeps_the_old_key_until_resume_or_abort() {
    let world = World::new();
    let old = world.seed_secret_key();
    let audit = MemoryAudit::default();
    let marker = world.dir.path().join("healthy");
    let request = world
        .secret_key_request()
        .verify_command(format!("test -f {}", marker.display()));
    let rotator = world.rotator();

    let error = rotator
        .run(&request, &mut Person::silent(), &audit)
        .unwrap_err();
    assert!(
        matches!(error, RotateError::VerifyCommandFailed { .. }),
        "{error}"
    );
    assert!(error.is_failed_check());
    assert!(
        error.to_string().contains("POSTHOG_FLAGS_KEY_PREVIOUS"),
        "{error}"
    );
    let stored = env_value(&world.env_file(), VARIABLE).unwrap();
    assert_ne!(stored, old.value);
    assert!(world.hog.is_live(&stored) && world.hog.is_live(&old.value));
    assert_eq!(
        env_value(&world.env_file(), PREVIOUS),
        Some(old.value.clone())
    );

    // A second run is refused while this one is open.
    let refused = rotator
        .run(&request, &mut Person::silent(), &audit)
        .unwrap_err();
    assert!(
        matches!(refused, RotateError::RotationOpen { .. }),
        "{refused}"
    );
    assert!(!refused.is_failed_check());
    assert!(!refused.to_string().contains(&stored));

    // Still failing on resume; then fixed.
    assert!(matches!(
        rotator.resume(&request, &mut Person::silent(), &audit),
        Err(RotateError::VerifyCommandFailed { .. })
    ));
    fs::write(&marker, "").unwrap();
    let outcome = rotator
        .resume(&request, &mut Person::silent(), &audit)
        .unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert_eq!(env_value(&world.env_file(), VARIABLE), Some(stored.clone()));
    assert!(!world.hog.is_live(&old.value));
    assert_eq!(world.secret_keys().len(), 1);
}

#[test]
fn abort_after_storing_puts_the_old_key_back_and_deletes_the_new_one() {
    let world = World::new();
    let old = world.seed_secret_key();
    let rest_before = env_rest(&world.env_file());
    let audit = MemoryAudit::default();
    let request = world.secret_key_request().verify_command("exit 7");
    let rotator = world.rotator();
    rotator
        .run(&request, &mut Person::silent(), &audit)
        .unwrap_err();
    let new = env_value(&world.env_file(), VARIABLE).unwrap();

    let outcome = rotator
        .abort(&request, &mut Person::silent(), &audit)
        .unwrap();
    assert!(matches!(outcome, Outcome::Aborted { .. }), "{outcome:?}");
    assert_eq!(
        env_value(&world.env_file(), VARIABLE),
        Some(old.value.clone())
    );
    assert_eq!(env_value(&world.env_file(), PREVIOUS), None);
    assert_eq!(env_rest(&world.env_file()), rest_before);
    assert!(world.hog.is_live(&old.value));
    assert!(!world.hog.is_live(&new));
    let keys = world.secret_keys();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, old.id);
    assert!(matches!(
        rotator.abort(&request, &mut Person::silent(), &audit),
        Err(RotateError::NoOpenRotation { .. })
    ));
}

#[test]
fn abort_is_refused_once_the_old_key_is_deleted() {
    let world = World::new();
    world.seed_secret_key();
    let audit = MemoryAudit::default();
    let request = world.secret_key_request();
    let rotator = world
        .rotator()
        .interrupt_when(|at| at == CrashPoint::AfterAction(Step::RetireOldKey));
    rotator
        .run(&request, &mut Person::silent(), &audit)
        .unwrap_err();
    let error = world
        .rotator()
        .abort(&request, &mut Person::silent(), &audit)
        .unwrap_err();
    assert!(matches!(error, RotateError::CannotAbort { .. }), "{error}");
    let outcome = world
        .rotator()
        .resume(&request, &mut Person::silent(), &audit)
        .unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }));
}

#[test]
fn dry_run_lists_the_steps_and_touches_nothing() {
    let world = World::new();
    let old = world.seed_secret_key();
    let request = world
        .secret_key_request()
        .verify_command("curl -fsS localhost/health")
        .if_older_than(Duration::from_secs(30 * 86_400));
    let plan = world.rotator().plan(&request);
    let text = plan.to_string();
    assert!(text.starts_with("1. Lock production/flags_key"), "{text}");
    assert!(
        text.contains("Stop unless the key is at least 30 days old"),
        "{text}"
    );
    assert!(
        text.contains("Create a new project secret API key"),
        "{text}"
    );
    assert!(text.contains("`curl -fsS localhost/health`"), "{text}");
    assert!(plan.steps().last().unwrap().contains(PREVIOUS));
    assert_eq!(world.secret_keys().len(), 1);
    assert_eq!(env_value(&world.env_file(), VARIABLE), Some(old.value));
    assert!(!world.rotations_dir().exists());
}

#[test]
fn only_when_due() {
    let world = World::new();
    let now = world.hog.now();
    let created = Timestamp::from_unix_seconds(now.unix_seconds() - 40 * 86_400);
    let key = world.hog.add_project_secret_key(
        world.project.id,
        ProjectSecretKeySpec::new("flags", ["feature_flag:read"]).created_at(created),
    );
    fs::write(world.env_file(), format!("{VARIABLE}={}\n", key.value)).unwrap();
    let audit = MemoryAudit::default();
    let rotator = world.rotator();

    let age = rotator.key_age(&world.secret_key_request()).unwrap();
    assert_eq!(
        age.source,
        AgeSource::PostHog {
            field: "created_at"
        }
    );
    let days = age.age.unwrap().as_secs() / 86_400;
    assert!((39..=41).contains(&days), "{days}");

    let not_due = world
        .secret_key_request()
        .if_older_than(Duration::from_secs(60 * 86_400));
    let outcome = rotator
        .run(&not_due, &mut Person::silent(), &audit)
        .unwrap();
    assert!(matches!(outcome, Outcome::NotDue { .. }), "{outcome:?}");
    assert_eq!(
        env_value(&world.env_file(), VARIABLE),
        Some(key.value.clone())
    );
    assert_eq!(audit.actions(), ["key.rotate.not_due"]);

    let due = world
        .secret_key_request()
        .if_older_than(Duration::from_secs(30 * 86_400));
    let outcome = rotator.run(&due, &mut Person::silent(), &audit).unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    // The new key was created now, so it is not due again.
    let outcome = rotator.run(&due, &mut Person::silent(), &audit).unwrap();
    assert!(matches!(outcome, Outcome::NotDue { .. }), "{outcome:?}");
}

#[test]
fn refuses_what_it_cannot_rotate_safely() {
    let world = World::new();
    let audit = MemoryAudit::default();
    let rotator = world.rotator();

    // Nothing stored.
    fs::write(world.env_file(), "OTHER=1\n").unwrap();
    let error = rotator
        .run(&world.secret_key_request(), &mut Person::silent(), &audit)
        .unwrap_err();
    assert!(matches!(error, RotateError::NoCurrentKey { .. }), "{error}");

    // A value PostHog does not know.
    let unknown = hogguard_testkit::keys::current(hogguard_testkit::keys::Prefix::Secret);
    fs::write(world.env_file(), format!("{VARIABLE}={unknown}\n")).unwrap();
    let error = rotator
        .run(&world.secret_key_request(), &mut Person::silent(), &audit)
        .unwrap_err();
    assert!(
        matches!(error, RotateError::OldKeyNotFound { .. }),
        "{error}"
    );
    assert!(!error.to_string().contains(&unknown));

    // A previous key still kept from elsewhere.
    let key = world.seed_secret_key();
    let text = fs::read_to_string(world.env_file()).unwrap();
    fs::write(world.env_file(), format!("{text}{PREVIOUS}=leftover\n")).unwrap();
    let error = rotator
        .run(&world.secret_key_request(), &mut Person::silent(), &audit)
        .unwrap_err();
    assert!(
        matches!(error, RotateError::PreviousKeyPresent { .. }),
        "{error}"
    );
    assert_eq!(world.secret_keys().len(), 1);
    assert!(world.hog.is_live(&key.value));
    // None of these opened a rotation.
    assert!(!world.rotations_dir().read_dir().unwrap().any(|entry| {
        entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".jsonl")
    }));
}

#[test]
fn stops_when_someone_else_changes_the_store() {
    let world = World::new();
    world.seed_secret_key();
    let audit = MemoryAudit::default();
    let request = world.secret_key_request().verify_command("false");
    world
        .rotator()
        .run(&request, &mut Person::silent(), &audit)
        .unwrap_err();
    let text = fs::read_to_string(world.env_file()).unwrap();
    let stored = env_value(&world.env_file(), VARIABLE).unwrap();
    fs::write(
        world.env_file(),
        text.replace(&stored, "phs_SomebodyElsesValue1234567"),
    )
    .unwrap();
    let error = world
        .rotator()
        .resume(&request, &mut Person::silent(), &audit)
        .unwrap_err();
    assert!(matches!(error, RotateError::StoreChanged { .. }), "{error}");
}

#[test]
fn requests_that_differ_from_the_open_rotation_are_refused() {
    let world = World::new();
    world.seed_secret_key();
    let audit = MemoryAudit::default();
    let request = world.secret_key_request().verify_command("false");
    world
        .rotator()
        .run(&request, &mut Person::silent(), &audit)
        .unwrap_err();
    let elsewhere = hogguard_rotate::RotationRequest::new(
        "production",
        "flags_key",
        VARIABLE,
        request.provider().clone(),
        Store::env_file(world.dir.path().join(".env.other")),
    );
    let error = world
        .rotator()
        .resume(&elsewhere, &mut Person::silent(), &audit)
        .unwrap_err();
    assert!(
        matches!(error, RotateError::RequestMismatch { what: "store", .. }),
        "{error}"
    );
}

/// PostHog failing on each call that follows a step boundary (and on the first call): each
/// failure is retried, or leaves a rotation that `resume` completes, and the store always
/// holds a live key.
#[test]
fn survives_posthog_failing_on_each_call() {
    type MakeFault = fn() -> Fault;
    let faults: [(&str, MakeFault); 5] = [
        ("one 500", || Fault::status(500).on_path("/api/")),
        ("three 503s", || {
            Fault::status(503).times(3).on_path("/api/")
        }),
        ("429", || Fault::throttled(2).on_path("/api/")),
        ("cut connection", || {
            Fault::drop_connection().on_path("/api/")
        }),
        ("three cuts", || {
            Fault::drop_connection().times(3).on_path("/api/")
        }),
    ];
    let boundaries = {
        let world = World::new();
        world.seed_secret_key();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        world
            .rotator()
            .interrupt_when(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
                false
            })
            .run(
                &world.secret_key_request(),
                &mut Person::silent(),
                &MemoryAudit::default(),
            )
            .unwrap();
        count.load(Ordering::SeqCst)
    };
    for (name, fault) in faults {
        let mut recovered = 0;
        for boundary in 0..=boundaries {
            let world = World::new();
            let old = world.seed_secret_key();
            let request = world.secret_key_request();
            if boundary == 0 {
                world.hog.inject(fault());
            }
            let hog = world.hog.clone();
            let count = AtomicUsize::new(0);
            let rotator = world.rotator().interrupt_when(move |_| {
                if count.fetch_add(1, Ordering::SeqCst) + 1 == boundary {
                    hog.inject(fault());
                }
                false
            });
            let result = rotator.run(&request, &mut Person::silent(), &MemoryAudit::default());
            let at = format!("{name} after boundary {boundary}");
            recovered += usize::from(check_survived(&world, &old.value, result, &request, &at));
        }
        // Three failures in a row outlast the client's retries: some runs needed recovery.
        assert_eq!(
            recovered > 0,
            name.starts_with("three"),
            "{name}: {recovered}"
        );
    }
}

/// A request that times out: the client gives up, PostHog acts later or never.
#[test]
fn survives_timeouts() {
    for path in ["/api/feature_flag/local_evaluation", "/api/projects/"] {
        for step in [Step::CreateKey, Step::CheckNewKey, Step::RetireOldKey] {
            let world = World::new();
            let old = world.seed_secret_key();
            let config = world.config().timeout(Duration::from_millis(300));
            let request = world.secret_key_request_with(world.access_with(config));
            let hog = world.hog.clone();
            let rotator = world.rotator().interrupt_when(move |at| {
                if at == CrashPoint::BeforeAction(step) {
                    hog.inject(Fault::delay(Duration::from_millis(900)).on_path(path));
                }
                false
            });
            let result = rotator.run(&request, &mut Person::silent(), &MemoryAudit::default());
            let at = format!("{path} at {step}");
            check_survived(&world, &old.value, result, &request, &at);
        }
    }
}

fn check_survived(
    world: &World,
    old: &str,
    result: Result<Outcome, RotateError>,
    request: &hogguard_rotate::RotationRequest,
    at: &str,
) -> bool {
    // A fault queued for a call that never came must not hit the checks.
    world.hog.clear_faults();
    let stored = env_value(&world.env_file(), VARIABLE).unwrap();
    assert!(world.hog.is_live(&stored), "{at}");
    if let Err(error) = &result {
        assert!(
            matches!(
                error,
                RotateError::PostHog { .. } | RotateError::PostHogUndecided { .. }
            ),
            "{at}: {error}"
        );
        // A failure before the journal was written leaves nothing open: run again.
        let rotator = world.rotator();
        let outcome = match rotator.open_rotation(request).unwrap() {
            Some(_) => rotator.resume(request, &mut Person::silent(), &MemoryAudit::default()),
            None => rotator.run(request, &mut Person::silent(), &MemoryAudit::default()),
        }
        .unwrap_or_else(|error| panic!("{at}: recovery: {error}"));
        assert!(matches!(outcome, Outcome::Completed { .. }));
    }
    let stored = env_value(&world.env_file(), VARIABLE).unwrap();
    assert_ne!(stored, old, "{at}");
    assert!(world.hog.is_live(&stored), "{at}");
    assert!(!world.hog.is_live(old), "{at}");
    let keys = world.secret_keys();
    assert_eq!(keys.len(), 1, "{at}: {keys:?}");
    result.is_err()
}
