//! Assisted rotations: personal API keys (a person creates and deletes keys in PostHog's web
//! app, scripted here with the stand-in's dashboard actions) and project API keys.

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use hogguard_rotate::{
    Outcome, PersonalKeyProvider, ProjectApiKeyProvider, Provider, RotateError, RotationRequest,
    Store,
};
use hogguard_secret::Secret;
use hogguard_testkit::posthog::{FakeHog, PersonalKeySpec, SeededKey};

use crate::support::{MemoryAudit, PREVIOUS, Person, VARIABLE, World, env_value};

const SCOPES: [&str; 2] = ["feature_flag:read", "query:read"];

fn seed_personal_key(world: &World) -> SeededKey {
    let key = world.hog.add_personal_key(
        world.admin.id,
        PersonalKeySpec::new("app")
            .scopes(SCOPES)
            .scoped_teams([world.project.id]),
    );
    fs::write(
        world.env_file(),
        format!("{VARIABLE}={}\nOTHER=1\n", key.value),
    )
    .unwrap();
    key
}

fn request(world: &World, provider: PersonalKeyProvider) -> RotationRequest {
    RotationRequest::new(
        "production",
        "personal_api_key",
        VARIABLE,
        Provider::PersonalKey(provider),
        Store::env_file(world.env_file()),
    )
}

fn provider(world: &World) -> PersonalKeyProvider {
    PersonalKeyProvider::new(world.access())
        .allowed_scopes(["feature_flag:read", "query:read", "insight:read"])
        .probe(3, Duration::from_secs(2), world.sleeper.clone())
}

/// The person creates a key in the dashboard with `scopes`, restricted to the project.
fn creates_key(
    hog: &Arc<FakeHog>,
    user: u64,
    project: u64,
    scopes: &[&str],
) -> impl FnMut() -> Secret + 'static {
    let hog = hog.clone();
    let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    move || {
        let key = hog
            .dashboard_create_personal_key(
                user,
                PersonalKeySpec::new("app 2")
                    .scopes(scopes.clone())
                    .scoped_teams([project]),
            )
            .unwrap();
        Secret::new(key.value)
    }
}

/// The person deletes the key `id` in the dashboard and says so.
fn deletes_key(hog: &Arc<FakeHog>, id: &str) -> impl FnMut() -> bool + 'static {
    let hog = hog.clone();
    let id = id.to_owned();
    move || hog.dashboard_delete_personal_key(&id)
}

#[test]
fn a_person_creates_the_new_key_and_deletes_the_old_one() {
    let world = World::new();
    let old = seed_personal_key(&world);
    let audit = MemoryAudit::default();
    let mut person = Person::silent()
        .gives_key(creates_key(
            &world.hog,
            world.admin.id,
            world.project.id,
            &SCOPES,
        ))
        .confirms(deletes_key(&world.hog, &old.id));

    let outcome = world
        .rotator()
        .run(&request(&world, provider(&world)), &mut person, &audit)
        .unwrap();

    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let stored = env_value(&world.env_file(), VARIABLE).unwrap();
    assert!(world.hog.is_live(&stored));
    assert!(!world.hog.is_live(&old.value));
    assert_eq!(env_value(&world.env_file(), PREVIOUS), None);
    assert_eq!(env_value(&world.env_file(), "OTHER").as_deref(), Some("1"));
    let instructions = &person.shown[0];
    assert!(
        instructions.contains(&format!("{}/settings/user-api-keys", world.hog.base_url())),
        "{instructions}"
    );
    assert!(
        instructions.contains("feature_flag:read, query:read, insight:read"),
        "{instructions}"
    );
    assert!(
        instructions.contains(&format!("Restrict it to projects {}", world.project.id)),
        "{instructions}"
    );
    assert!(
        person
            .shown
            .iter()
            .any(|m| m.contains(&format!("(id {})", old.id)))
    );
    audit.assert_holds_none_of(&[&old.value, &stored]);
}

#[test]
fn a_broader_or_wrong_key_is_refused_and_nothing_is_stored() {
    let world = World::new();
    let old = seed_personal_key(&world);
    let audit = MemoryAudit::default();
    let request = request(&world, provider(&world));
    let hog = world.hog.clone();
    let admin = world.admin.id;
    let unrestricted = move || {
        Secret::new(
            hog.dashboard_create_personal_key(
                admin,
                PersonalKeySpec::new("wide").scopes(["feature_flag:read"]),
            )
            .map(|key| key.value)
            .unwrap_or_default(),
        )
    };
    let old_value = old.value.clone();
    let mut person = Person::silent()
        .gives_key(creates_key(
            &world.hog,
            world.admin.id,
            world.project.id,
            &["feature_flag:read", "insight:write"],
        ))
        .gives_key(move || Secret::new(old_value.clone()))
        .gives_key(|| Secret::new("phc_NotAPersonalKey1234567890"))
        .gives_key(unrestricted);
    let rotator = world.rotator();

    let error = rotator.run(&request, &mut person, &audit).unwrap_err();
    let RotateError::NewKeyTooBroad { excess } = &error else {
        panic!("{error}")
    };
    assert_eq!(excess, &["insight:write"]);
    assert!(error.is_failed_check());
    for expected in [
        "it is the key being replaced",
        "it is not a personal API key",
    ] {
        let error = rotator.resume(&request, &mut person, &audit).unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
    }
    // Without a project restriction, where the old key had one.
    let error = rotator.resume(&request, &mut person, &audit).unwrap_err();
    assert!(
        matches!(error, RotateError::NewKeyTooBroad { .. }),
        "{error}"
    );
    assert_eq!(
        env_value(&world.env_file(), VARIABLE),
        Some(old.value.clone())
    );
    assert_eq!(env_value(&world.env_file(), PREVIOUS), None);

    let mut person = Person::silent()
        .gives_key(creates_key(
            &world.hog,
            world.admin.id,
            world.project.id,
            &SCOPES,
        ))
        .confirms(deletes_key(&world.hog, &old.id));
    let outcome = rotator.resume(&request, &mut person, &audit).unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }));
}

#[test]
fn a_key_accepted_but_never_stored_is_named_on_resume() {
    let world = World::new();
    let old = seed_personal_key(&world);
    let audit = MemoryAudit::default();
    let request = request(&world, provider(&world));
    let given = Arc::new(std::sync::Mutex::new(None::<String>));
    let remember = given.clone();
    let mut create = creates_key(&world.hog, world.admin.id, world.project.id, &SCOPES);
    let mut person = Person::silent().gives_key(move || {
        let key = create();
        *remember.lock().unwrap() = Some(key.expose().to_owned());
        key
    });
    let error = world
        .rotator()
        .interrupt_when(|at| {
            at == hogguard_rotate::CrashPoint::AfterRecord(hogguard_rotate::Step::ObtainNewKey)
        })
        .run(&request, &mut person, &audit)
        .unwrap_err();
    assert!(matches!(error, RotateError::Interrupted { .. }));
    assert_eq!(
        env_value(&world.env_file(), VARIABLE),
        Some(old.value.clone())
    );

    let again = given.lock().unwrap().clone().unwrap();
    let mask = hogguard_secret::mask(&again);
    let mut person = Person::silent()
        .gives_key(move || Secret::new(again.clone()))
        .confirms(deletes_key(&world.hog, &old.id));
    let outcome = world
        .rotator()
        .resume(&request, &mut person, &audit)
        .unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }));
    assert!(
        person.shown[0].contains(&format!("The key {mask}"))
            && person.shown[0].contains("never stored"),
        "{}",
        person.shown[0]
    );
}

#[test]
fn the_old_key_is_probed_until_posthog_calls_it_invalid() {
    let world = World::new();
    let old = seed_personal_key(&world);
    let audit = MemoryAudit::default();
    let request = request(&world, provider(&world));
    let mut person = Person::silent()
        .gives_key(creates_key(
            &world.hog,
            world.admin.id,
            world.project.id,
            &SCOPES,
        ))
        // Says yes without deleting it.
        .confirms(|| true);
    let error = world
        .rotator()
        .run(&request, &mut person, &audit)
        .unwrap_err();
    assert!(
        matches!(error, RotateError::OldKeyStillLive { attempts: 3, .. }),
        "{error}"
    );
    let waits = world.sleeper.waits.lock().unwrap().clone();
    assert_eq!(waits, [Duration::from_secs(2), Duration::from_secs(2)]);
    let stored = env_value(&world.env_file(), VARIABLE).unwrap();
    assert!(world.hog.is_live(&stored));
    assert_eq!(
        env_value(&world.env_file(), PREVIOUS),
        Some(old.value.clone())
    );

    // The person says no: nothing is recorded as retired.
    let mut person = Person::silent().confirms(|| false);
    let error = world
        .rotator()
        .resume(&request, &mut person, &audit)
        .unwrap_err();
    assert!(
        matches!(error, RotateError::OldKeyNotDeleted { .. }),
        "{error}"
    );

    assert!(world.hog.dashboard_delete_personal_key(&old.id));
    let mut person = Person::silent().confirms(|| true);
    let outcome = world
        .rotator()
        .resume(&request, &mut person, &audit)
        .unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }));
    assert_eq!(env_value(&world.env_file(), PREVIOUS), None);
}

#[test]
fn revoke_old_kills_the_old_key_through_the_leaked_key_report() {
    let world = World::new();
    let old = seed_personal_key(&world);
    let audit = MemoryAudit::default();
    let request = request(&world, provider(&world).revoke_old(true));
    let mut person = Person::silent().gives_key(creates_key(
        &world.hog,
        world.admin.id,
        world.project.id,
        &SCOPES,
    ));
    let outcome = world.rotator().run(&request, &mut person, &audit).unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert!(!world.hog.is_live(&old.value));
    assert_eq!(world.hog.request_count("/api/revoke_leaked_key"), 1);
}

#[test]
fn abort_returns_to_the_old_key_and_names_the_new_one_to_delete() {
    let world = World::new();
    let old = seed_personal_key(&world);
    let audit = MemoryAudit::default();
    let request = request(&world, provider(&world)).verify_command("false");
    let mut person = Person::silent().gives_key(creates_key(
        &world.hog,
        world.admin.id,
        world.project.id,
        &SCOPES,
    ));
    let error = world
        .rotator()
        .run(&request, &mut person, &audit)
        .unwrap_err();
    assert!(
        matches!(error, RotateError::VerifyCommandFailed { .. }),
        "{error}"
    );
    let new = env_value(&world.env_file(), VARIABLE).unwrap();

    let mut person = Person::silent();
    let outcome = world
        .rotator()
        .abort(&request, &mut person, &audit)
        .unwrap();
    assert!(matches!(outcome, Outcome::Aborted { .. }));
    assert_eq!(
        env_value(&world.env_file(), VARIABLE),
        Some(old.value.clone())
    );
    assert_eq!(env_value(&world.env_file(), PREVIOUS), None);
    let mask = hogguard_secret::mask(&new);
    assert!(
        person
            .shown
            .iter()
            .any(|m| m.contains(&mask) && m.contains("Delete")),
        "{:?}",
        person.shown
    );
}

#[test]
fn a_rolled_old_key_is_accepted_as_the_new_one() {
    let world = World::new();
    let old = seed_personal_key(&world);
    let audit = MemoryAudit::default();
    let hog = world.hog.clone();
    let old_id = old.id.clone();
    let mut person = Person::silent()
        .gives_key(move || Secret::new(hog.dashboard_roll_personal_key(&old_id).unwrap()));
    let outcome = world
        .rotator()
        .run(&request(&world, provider(&world)), &mut person, &audit)
        .unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert!(
        world
            .hog
            .is_live(&env_value(&world.env_file(), VARIABLE).unwrap())
    );
    assert!(person.shown.iter().any(|m| m.contains("rolled in place")));
}

#[test]
fn project_api_keys_get_guidance_and_an_assisted_store_update() {
    let world = World::new();
    let old = world.project.api_token.clone();
    fs::write(world.env_file(), format!("{VARIABLE}={old}\n")).unwrap();
    let request = RotationRequest::new(
        "production",
        "project_api_key",
        VARIABLE,
        Provider::ProjectApiKey(
            ProjectApiKeyProvider::new(world.access()).project_id(world.project.id),
        ),
        Store::env_file(world.env_file()),
    );
    let plan = world.rotator().plan(&request).to_string();
    assert!(plan.contains("reset stops the old one at once"), "{plan}");
    let audit = MemoryAudit::default();
    let new = hogguard_testkit::keys::current(hogguard_testkit::keys::Prefix::Project);
    let given = new.clone();
    let mut person = Person::silent()
        .gives_key(|| Secret::new("phx_NotAProjectKey12345678901234"))
        .gives_key(move || Secret::new(given.clone()));
    let error = world
        .rotator()
        .run(&request, &mut person, &audit)
        .unwrap_err();
    assert!(
        matches!(error, RotateError::NewKeyRefused { .. }),
        "{error}"
    );
    let outcome = world
        .rotator()
        .resume(&request, &mut person, &audit)
        .unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }));
    assert_eq!(env_value(&world.env_file(), VARIABLE), Some(new));
    assert_eq!(env_value(&world.env_file(), PREVIOUS), None);
    assert!(person.shown[0].contains("public by design"));
    assert!(person.shown[0].contains("reset_token"));
    assert!(person.shown[1].contains(&format!("/project/{}/settings/project", world.project.id)));
}

#[test]
fn a_dead_old_key_is_replaced_when_the_environment_names_its_scopes() {
    let world = World::new();
    let old = seed_personal_key(&world);
    // Revoked after a leak: the store holds a key that no longer works.
    assert!(world.hog.dashboard_delete_personal_key(&old.id));
    let audit = MemoryAudit::default();
    let without_policy = request(
        &world,
        PersonalKeyProvider::new(world.access()).probe(1, Duration::ZERO, world.sleeper.clone()),
    );
    let error = world
        .rotator()
        .run(&without_policy, &mut Person::silent(), &audit)
        .unwrap_err();
    assert!(
        matches!(error, RotateError::NoAllowedScopes { .. }),
        "{error}"
    );

    let hog = world.hog.clone();
    let admin = world.admin.id;
    let mut person = Person::silent().gives_key(move || {
        Secret::new(
            hog.dashboard_create_personal_key(admin, PersonalKeySpec::new("new").scopes(SCOPES))
                .unwrap()
                .value,
        )
    });
    let outcome = world
        .rotator()
        .run(&request(&world, provider(&world)), &mut person, &audit)
        .unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert!(
        world
            .hog
            .is_live(&env_value(&world.env_file(), VARIABLE).unwrap())
    );
    // Nobody was asked to delete a key that is already dead.
    assert!(
        !person
            .shown
            .iter()
            .any(|m| m.contains("Now delete the old"))
    );
}
