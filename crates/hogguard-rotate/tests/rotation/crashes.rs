//! Crashes at every step boundary and in the middle of the env-file write, for each automatic
//! provider: at every point the store holds a working key and parses, and after resuming,
//! exactly one new key is live, the old one is gone and PostHog holds no orphan key.

use std::collections::HashSet;
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hogguard_rotate::{
    CrashPoint, Outcome, Provider, RotateError, RotationRequest, Rotator, Store,
    WebhookSecretProvider,
};
use hogguard_webhook::{ManualClock, Scheme, Verifier, WebhookSecret, standard};

use crate::support::{MemoryAudit, PREVIOUS, Person, VARIABLE, World, env_rest, env_value};

/// One automatic provider's scenario: how to set it up and what must hold.
trait Scenario {
    /// A fresh world with the old key stored; returns the old value.
    fn setup(&self) -> (World, String);
    fn request(&self, world: &World) -> RotationRequest;
    /// What must hold at any moment: the stored key works.
    fn check_working(&self, world: &World, old: &str, at: &str);
    /// Takes a run's or resume's outcome to the end (the webhook's grace period is ended
    /// with `finish`, by the same rotator, so its crash points count too).
    fn to_end(
        &self,
        world: &World,
        rotator: &Rotator,
        outcome: Outcome,
    ) -> Result<Outcome, RotateError>;
    /// What must hold at the end: one new key, the old one gone, no orphans.
    fn check_final(&self, world: &World, old: &str, at: &str);
    /// What must hold after an abort, beyond the store holding the old key alone.
    fn check_aborted(&self, world: &World, old: &str, at: &str);
}

struct SecretKeys;

impl Scenario for SecretKeys {
    fn setup(&self) -> (World, String) {
        let world = World::new();
        let old = world.seed_secret_key();
        (world, old.value)
    }

    fn request(&self, world: &World) -> RotationRequest {
        world.secret_key_request().verify_command("true")
    }

    fn check_working(&self, world: &World, _old: &str, at: &str) {
        let stored = env_value(&world.env_file(), VARIABLE).expect(at);
        assert!(
            world.hog.is_live(&stored),
            "{at}: the stored key does not work"
        );
    }

    fn to_end(
        &self,
        _world: &World,
        _rotator: &Rotator,
        outcome: Outcome,
    ) -> Result<Outcome, RotateError> {
        Ok(outcome)
    }

    fn check_final(&self, world: &World, old: &str, at: &str) {
        let stored = env_value(&world.env_file(), VARIABLE).expect(at);
        assert_ne!(stored, old, "{at}");
        assert!(world.hog.is_live(&stored), "{at}");
        assert!(!world.hog.is_live(old), "{at}: the old key still works");
        assert_eq!(env_value(&world.env_file(), PREVIOUS), None, "{at}");
        let keys = world.secret_keys();
        assert_eq!(keys.len(), 1, "{at}: orphan keys {keys:?}");
        let key = world.hog.project_secret_key(&keys[0].id).unwrap();
        assert_eq!(key.mask_value, hogguard_secret::mask(&stored), "{at}");
        assert_journals_hold_none_of(world, &[old, &stored]);
    }

    fn check_aborted(&self, world: &World, old: &str, at: &str) {
        assert!(world.hog.is_live(old), "{at}");
        let keys = world.secret_keys();
        assert_eq!(keys.len(), 1, "{at}: {keys:?}");
        assert_eq!(
            keys[0].mask_value.as_deref(),
            Some(hogguard_secret::mask(old).as_str())
        );
    }
}

struct WebhookSecrets;

/// Whether a Standard Webhooks delivery signed with `signer` verifies against `accepted`.
fn verifies(signer: &str, accepted: &[String]) -> bool {
    let secrets: Vec<WebhookSecret> = accepted.iter().map(WebhookSecret::new).collect();
    let verifier = Verifier::new(Scheme::Standard, &secrets)
        .expect("stored secrets are usable")
        .with_clock(ManualClock::new(1_700_000_000));
    let body = b"{\"event\":\"ping\"}";
    let signature =
        standard::sign(&WebhookSecret::new(signer), "msg_1", 1_700_000_000, body).unwrap();
    let headers = [
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", "1700000000"),
        ("webhook-signature", signature.as_str()),
    ];
    verifier.verify(&headers, body).is_ok()
}

impl Scenario for WebhookSecrets {
    fn setup(&self) -> (World, String) {
        let world = World::new();
        let old = hogguard_webhook::generate_secret()
            .unwrap()
            .expose()
            .to_owned();
        fs::write(
            world.env_file(),
            format!("# receiver\n{VARIABLE}={old}\nPORT=8080\n"),
        )
        .unwrap();
        (world, old)
    }

    fn request(&self, world: &World) -> RotationRequest {
        RotationRequest::new(
            "production",
            "webhook",
            VARIABLE,
            Provider::WebhookSecret(WebhookSecretProvider::new()),
            Store::env_file(world.env_file()),
        )
        .verify_command("true")
    }

    fn check_working(&self, world: &World, old: &str, at: &str) {
        let mut accepted = vec![env_value(&world.env_file(), VARIABLE).expect(at)];
        accepted.extend(env_value(&world.env_file(), PREVIOUS));
        // Until the grace period starts the sender still signs with the old secret, which
        // must verify; the stored primary must be a usable secret.
        assert!(verifies(old, &accepted) || accepted.len() == 1, "{at}");
        assert!(verifies(&accepted[0], &accepted), "{at}");
        assert_eq!(
            env_rest(&world.env_file()),
            [("PORT".to_owned(), "8080".to_owned())],
            "{at}"
        );
    }

    fn to_end(
        &self,
        world: &World,
        rotator: &Rotator,
        outcome: Outcome,
    ) -> Result<Outcome, RotateError> {
        let Outcome::GracePeriod { .. } = outcome else {
            return Ok(outcome);
        };
        let accepted = [
            env_value(&world.env_file(), VARIABLE).unwrap(),
            env_value(&world.env_file(), PREVIOUS).unwrap(),
        ];
        assert!(verifies(&accepted[0], &accepted) && verifies(&accepted[1], &accepted));
        rotator.finish(
            &self.request(world),
            &mut Person::silent(),
            &MemoryAudit::default(),
        )
    }

    fn check_final(&self, world: &World, old: &str, at: &str) {
        let stored = env_value(&world.env_file(), VARIABLE).expect(at);
        assert_ne!(stored, old, "{at}");
        assert_eq!(env_value(&world.env_file(), PREVIOUS), None, "{at}");
        assert!(verifies(&stored, std::slice::from_ref(&stored)), "{at}");
        assert!(
            !verifies(old, std::slice::from_ref(&stored)),
            "{at}: the old secret still verifies"
        );
        assert_journals_hold_none_of(world, &[old, &stored]);
    }

    fn check_aborted(&self, _world: &World, old: &str, at: &str) {
        assert!(verifies(old, &[old.to_owned()]), "{at}");
    }
}

/// Journals hold masks and fingerprints, never values.
fn assert_journals_hold_none_of(world: &World, secrets: &[&str]) {
    for entry in fs::read_dir(world.rotations_dir()).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        for secret in secrets {
            assert!(!text.contains(secret), "a journal holds a secret");
        }
    }
}

fn run_to_end(
    scenario: &dyn Scenario,
    world: &World,
    rotator: &Rotator,
) -> Result<Outcome, RotateError> {
    let request = scenario.request(world);
    let outcome = rotator.run(&request, &mut Person::silent(), &MemoryAudit::default())?;
    scenario.to_end(world, rotator, outcome)
}

fn resume_to_end(
    scenario: &dyn Scenario,
    world: &World,
    rotator: &Rotator,
) -> Result<Outcome, RotateError> {
    let request = scenario.request(world);
    let outcome = rotator.resume(&request, &mut Person::silent(), &MemoryAudit::default())?;
    scenario.to_end(world, rotator, outcome)
}

fn assert_completed(outcome: &Outcome, at: &str) {
    assert!(
        matches!(outcome, Outcome::Completed { .. }),
        "{at}: {outcome:?}"
    );
}

/// Every crash point a clean run passes, in order.
fn crash_points(scenario: &dyn Scenario) -> Vec<CrashPoint> {
    let (world, _) = scenario.setup();
    let points = Arc::new(Mutex::new(Vec::new()));
    let seen = points.clone();
    let rotator = world.rotator().interrupt_when(move |at| {
        seen.lock().unwrap().push(at);
        false
    });
    let outcome = run_to_end(scenario, &world, &rotator).unwrap();
    assert_completed(&outcome, "clean run");
    points.lock().unwrap().clone()
}

/// Crashes at the `index`-th crash point of a run, checks the store, resumes and checks the
/// end state.
fn crash_once_then_resume(scenario: &dyn Scenario, index: usize, expected: CrashPoint) {
    let at = format!("crash at #{index} ({expected:?})");
    let (world, old) = scenario.setup();
    let request = scenario.request(&world);
    let count = AtomicUsize::new(0);
    let crashing = world
        .rotator()
        .interrupt_when(move |_| count.fetch_add(1, Ordering::SeqCst) == index);
    let error = run_to_end(scenario, &world, &crashing).unwrap_err();
    assert!(
        matches!(error, RotateError::Interrupted { at } if at == expected),
        "{at}: {error}"
    );
    scenario.check_working(&world, &old, &at);

    // The crashed rotation is open: a new run is refused.
    let refused = world
        .rotator()
        .run(&request, &mut Person::silent(), &MemoryAudit::default())
        .unwrap_err();
    assert!(
        matches!(refused, RotateError::RotationOpen { .. }),
        "{at}: {refused}"
    );

    let outcome = resume_to_end(scenario, &world, &world.rotator())
        .unwrap_or_else(|error| panic!("{at}: resume failed: {error}"));
    assert_completed(&outcome, &at);
    scenario.check_final(&world, &old, &at);
    let temp_left = fs::read_dir(world.dir.path()).unwrap().any(|entry| {
        entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")
    });
    assert!(!temp_left, "{at}: the half-written temporary file is left");
}

/// Crashes once at every distinct crash point, resuming after each crash, until a resume
/// gets through: crashes during recovery itself.
fn crash_everywhere_in_one_rotation(scenario: &dyn Scenario) {
    let (world, old) = scenario.setup();
    let crashed: Arc<Mutex<HashSet<CrashPoint>>> = Arc::default();
    let mut crashes = 0;
    let mut first = true;
    let outcome = loop {
        let seen = crashed.clone();
        let rotator = world
            .rotator()
            .interrupt_when(move |at| seen.lock().unwrap().insert(at));
        let result = if first {
            run_to_end(scenario, &world, &rotator)
        } else {
            resume_to_end(scenario, &world, &rotator)
        };
        first = false;
        match result {
            Ok(outcome) => break outcome,
            Err(RotateError::Interrupted { at }) => {
                crashes += 1;
                scenario.check_working(&world, &old, &format!("crash {crashes} at {at:?}"));
            }
            Err(error) => panic!("after {crashes} crashes: {error}"),
        }
        assert!(crashes < 200, "the rotation never gets through");
    };
    assert_completed(&outcome, "after crashing everywhere");
    scenario.check_final(&world, &old, "after crashing everywhere");
    assert!(crashes > 10, "{crashes}");
}

fn crash_matrix(scenario: &dyn Scenario) {
    let points = crash_points(scenario);
    assert!(points.contains(&CrashPoint::EnvFileWritten), "{points:?}");
    assert!(points.len() >= 15, "{points:?}");
    for (index, point) in points.iter().enumerate() {
        crash_once_then_resume(scenario, index, *point);
    }
}

#[test]
fn project_secret_key_survives_a_crash_at_every_point() {
    crash_matrix(&SecretKeys);
}

#[test]
fn project_secret_key_survives_crashes_during_recovery() {
    crash_everywhere_in_one_rotation(&SecretKeys);
}

#[test]
fn webhook_secret_survives_a_crash_at_every_point() {
    crash_matrix(&WebhookSecrets);
}

#[test]
fn webhook_secret_survives_crashes_during_recovery() {
    crash_everywhere_in_one_rotation(&WebhookSecrets);
}

/// A torn journal append (the process died in the middle of writing a line) is cut on resume.
#[test]
fn a_torn_journal_line_is_cut_on_resume() {
    let scenario = SecretKeys;
    let (world, old) = scenario.setup();
    let request = scenario.request(&world);
    let error = world
        .rotator()
        .interrupt_when(|at| at == CrashPoint::AfterAction(hogguard_rotate::Step::CreateKey))
        .run(&request, &mut Person::silent(), &MemoryAudit::default())
        .unwrap_err();
    assert!(matches!(error, RotateError::Interrupted { .. }));
    let journal = fs::read_dir(world.rotations_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .unwrap();
    let mut text = fs::read(&journal).unwrap();
    text.extend_from_slice(b"{\"seq\":99,\"at\":1,\"event\":\"do");
    fs::write(&journal, text).unwrap();
    let outcome = resume_to_end(&scenario, &world, &Rotator::new(world.rotations_dir())).unwrap();
    assert_completed(&outcome, "torn journal");
    scenario.check_final(&world, &old, "torn journal");
    let text = fs::read_to_string(&journal).unwrap();
    assert!(
        text.lines()
            .all(|line| serde_json::from_str::<serde_json::Value>(line).is_ok())
    );
}

/// The grace period ends by itself: the first run after it drops the old secret.
#[test]
fn the_run_after_the_grace_period_finishes_the_webhook_rotation() {
    let scenario = WebhookSecrets;
    let (world, old) = scenario.setup();
    let clock = crate::support::ManualClock::new();
    let rotator = world.rotator().with_clock(clock.clone());
    let request = RotationRequest::new(
        "production",
        "webhook",
        VARIABLE,
        Provider::WebhookSecret(WebhookSecretProvider::new().grace(Duration::from_secs(3600))),
        Store::env_file(world.env_file()),
    );
    let audit = MemoryAudit::default();
    let outcome = rotator
        .run(&request, &mut Person::silent(), &audit)
        .unwrap();
    let Outcome::GracePeriod { new, .. } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(env_value(&world.env_file(), PREVIOUS), Some(old.clone()));
    let refused = rotator
        .run(&request, &mut Person::silent(), &audit)
        .unwrap_err();
    assert!(refused.to_string().contains("--finish"), "{refused}");
    // Resuming inside the grace period changes nothing.
    let again = rotator
        .resume(&request, &mut Person::silent(), &audit)
        .unwrap();
    assert!(matches!(again, Outcome::GracePeriod { .. }));

    clock.advance(Duration::from_secs(3601));
    let outcome = rotator
        .run(&request, &mut Person::silent(), &audit)
        .unwrap();
    let Outcome::Completed { new: completed, .. } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(completed, new);
    scenario.check_final(&world, &old, "after the grace period");
    let age = rotator.key_age(&request).unwrap();
    assert!(age.age.unwrap() < Duration::from_secs(1), "{age:?}");
    assert!(matches!(
        age.source,
        hogguard_rotate::AgeSource::LastRotation { .. }
    ));
    audit.assert_holds_none_of(&[&old, &env_value(&world.env_file(), VARIABLE).unwrap()]);
}

#[test]
fn aborting_a_webhook_rotation_restores_the_old_secret() {
    let scenario = WebhookSecrets;
    let (world, old) = scenario.setup();
    let request = scenario.request(&world);
    let audit = MemoryAudit::default();
    let outcome = world
        .rotator()
        .run(&request, &mut Person::silent(), &audit)
        .unwrap();
    assert!(matches!(outcome, Outcome::GracePeriod { .. }));
    let mut person = Person::silent();
    let outcome = world
        .rotator()
        .abort(&request, &mut person, &audit)
        .unwrap();
    assert!(matches!(outcome, Outcome::Aborted { .. }));
    assert_eq!(env_value(&world.env_file(), VARIABLE), Some(old));
    assert_eq!(env_value(&world.env_file(), PREVIOUS), None);
    assert!(person.shown.iter().any(|m| m.contains("switched back")));
}

/// Brings a scenario to the point where the new key is stored and the old one kept: a failing
/// verify command.
fn stored_but_not_retired(scenario: &dyn Scenario, world: &World) -> RotationRequest {
    let request = scenario.request(world).verify_command("false");
    let _ = world
        .rotator()
        .run(&request, &mut Person::silent(), &MemoryAudit::default());
    assert_ne!(env_value(&world.env_file(), PREVIOUS), None);
    request
}

/// A crash at every point of an abort: the store keeps a working key, and `resume` completes
/// the abort (never the rotation): the old key back, nothing left of the new one.
fn abort_crash_matrix(scenario: &dyn Scenario) {
    let points = {
        let (world, _) = scenario.setup();
        let request = stored_but_not_retired(scenario, &world);
        let points = Arc::new(Mutex::new(Vec::new()));
        let seen = points.clone();
        let outcome = world
            .rotator()
            .interrupt_when(move |at| {
                seen.lock().unwrap().push(at);
                false
            })
            .abort(&request, &mut Person::silent(), &MemoryAudit::default())
            .unwrap();
        assert!(matches!(outcome, Outcome::Aborted { .. }));
        points.lock().unwrap().clone()
    };
    assert!(points.contains(&CrashPoint::EnvFileWritten), "{points:?}");
    for (index, point) in points.iter().enumerate() {
        let at = format!("abort crash at #{index} ({point:?})");
        let (world, old) = scenario.setup();
        let request = stored_but_not_retired(scenario, &world);
        let count = AtomicUsize::new(0);
        let error = world
            .rotator()
            .interrupt_when(move |_| count.fetch_add(1, Ordering::SeqCst) == index)
            .abort(&request, &mut Person::silent(), &MemoryAudit::default())
            .unwrap_err();
        assert!(
            matches!(error, RotateError::Interrupted { .. }),
            "{at}: {error}"
        );
        scenario.check_working(&world, &old, &at);
        let outcome = world
            .rotator()
            .resume(&request, &mut Person::silent(), &MemoryAudit::default())
            .unwrap_or_else(|error| panic!("{at}: {error}"));
        assert!(
            matches!(outcome, Outcome::Aborted { .. }),
            "{at}: {outcome:?}"
        );
        assert_eq!(
            env_value(&world.env_file(), VARIABLE),
            Some(old.clone()),
            "{at}"
        );
        assert_eq!(env_value(&world.env_file(), PREVIOUS), None, "{at}");
        scenario.check_aborted(&world, &old, &at);
    }
}

#[test]
fn project_secret_key_abort_survives_a_crash_at_every_point() {
    abort_crash_matrix(&SecretKeys);
}

#[test]
fn webhook_secret_abort_survives_a_crash_at_every_point() {
    abort_crash_matrix(&WebhookSecrets);
}
