//! Issue 12 point 7: the dry run plans whatever is missing and says what would stop a real
//! run: no current key, a leftover previous key, an open rotation, a provider made only for
//! planning; and it plans what a run would do once a grace period is over.

use std::fs;
use std::time::Duration;

use hogguard_rotate::{
    Outcome, PersonalKeyProvider, ProjectSecretKeyProvider, Provider, RotateError, RotationRequest,
    Store, WebhookSecretProvider,
};
use hogguard_testkit::errors::assert_no_repeated_segment;
use hogguard_testkit::posthog::PersonalKeySpec;

use crate::support::{ManualClock, MemoryAudit, PREVIOUS, Person, VARIABLE, World};

fn webhook_request(world: &World) -> RotationRequest {
    RotationRequest::new(
        "production",
        "webhook",
        VARIABLE,
        Provider::WebhookSecret(WebhookSecretProvider::new().grace(Duration::from_secs(3600))),
        Store::env_file(world.env_file()),
    )
}

#[test]
fn a_plan_says_what_in_the_store_stops_a_run() {
    let world = World::new();
    let request = webhook_request(&world);
    let rotator = world.rotator();
    let env_file = world.env_file().display().to_string();

    let no_file = rotator.plan(&request);
    assert_eq!(
        no_file.missing(),
        [format!(
            "{VARIABLE} is not set in {env_file}: there is no current key to rotate"
        )]
    );
    assert!(!no_file.can_run());
    assert!(no_file.to_string().ends_with(&format!(
        "\nIt cannot run yet:\n- {}\n",
        no_file.missing()[0]
    )));

    let old = hogguard_webhook::generate_secret().unwrap();
    fs::write(
        world.env_file(),
        format!("{VARIABLE}={}\n{PREVIOUS}=left-over\n", old.expose()),
    )
    .unwrap();
    let leftover = rotator.plan(&request);
    assert_eq!(leftover.missing().len(), 1, "{leftover}");
    assert!(
        leftover.missing()[0].starts_with(&format!("{PREVIOUS} is already set in {env_file}")),
        "{leftover}"
    );

    fs::write(world.env_file(), format!("{VARIABLE}={}\n", old.expose())).unwrap();
    let ready = rotator.plan(&request);
    assert!(ready.can_run(), "{ready}");
    assert!(!ready.to_string().contains("cannot run"), "{ready}");
    assert!(!world.rotations_dir().exists(), "a plan changes nothing");
}

#[test]
fn a_plan_names_an_open_rotation_and_plans_to_end_a_grace_period_that_is_over() {
    let world = World::new();
    let old = hogguard_webhook::generate_secret().unwrap();
    fs::write(world.env_file(), format!("{VARIABLE}={}\n", old.expose())).unwrap();
    let request = webhook_request(&world);
    let clock = ManualClock::new();
    let rotator = world.rotator().with_clock(clock.clone());
    let outcome = rotator
        .run(&request, &mut Person::silent(), &MemoryAudit::default())
        .unwrap();
    let Outcome::GracePeriod { rotation_id, .. } = outcome else {
        panic!("{outcome:?}")
    };

    let during = rotator.plan(&request);
    assert_eq!(during.missing().len(), 1, "{during}");
    assert!(
        during.missing()[0].starts_with(&format!(
            "a rotation of production/webhook is already open ({rotation_id}: "
        )) && during.missing()[0].contains("--resume"),
        "{during}"
    );
    assert!(during.steps()[2].starts_with("Generate a new whsec_ secret"));

    clock.advance(Duration::from_secs(2 * 3600));
    let after = rotator.plan(&request);
    assert!(after.can_run(), "{after}");
    assert_eq!(
        after.steps()[1],
        format!(
            "Finish the open rotation {rotation_id}, whose grace period is over: remove \
             {PREVIOUS} and close it (no new secret is made)"
        )
    );
    // What the plan says is what a run does.
    let finished = rotator
        .run(&request, &mut Person::silent(), &MemoryAudit::default())
        .unwrap();
    assert!(
        matches!(&finished, Outcome::Completed { rotation_id: id, .. } if *id == rotation_id),
        "{finished:?}"
    );
}

#[test]
fn a_project_secret_key_is_planned_without_its_admin_key_and_never_run() {
    let world = World::new();
    let old = world.seed_secret_key();
    let request = |project_id| {
        RotationRequest::new(
            "production",
            "flags_key",
            VARIABLE,
            Provider::ProjectSecretKey(ProjectSecretKeyProvider::for_plan(
                world.access(),
                project_id,
            )),
            Store::env_file(world.env_file()),
        )
    };
    let rotator = world.rotator();

    let known = rotator.plan(&request(Some(world.project.id)));
    assert!(
        known.steps()[1].contains(&format!(
            "find its project secret API key in project {} (by its mask)",
            world.project.id
        )),
        "{known}"
    );
    // The caller says what it lacks; the store and the journal are fine.
    assert!(known.can_run(), "{known}");
    let unknown = rotator.plan(&request(None));
    assert!(
        unknown.steps()[1].contains("find its project secret API key in the project (by its mask)"),
        "{unknown}"
    );

    let audit = MemoryAudit::default();
    let error = rotator
        .run(
            &request(Some(world.project.id)),
            &mut Person::silent(),
            &audit,
        )
        .unwrap_err();
    assert!(
        matches!(error, RotateError::NotConfigured { .. }),
        "{error:?}"
    );
    assert_no_repeated_segment(&error);
    assert_eq!(
        error.to_string(),
        "cannot rotate a project secret API key without the admin key (a personal API key with \
         project:write)"
    );
    let error = rotator
        .run(&request(None), &mut Person::silent(), &audit)
        .unwrap_err();
    assert!(
        matches!(error, RotateError::NotConfigured { .. }),
        "{error:?}"
    );
    assert_eq!(audit.actions(), Vec::<String>::new());
    assert_eq!(world.secret_keys().len(), 1);
    assert_eq!(
        crate::support::env_value(&world.env_file(), VARIABLE),
        Some(old.value)
    );
    let journals = fs::read_dir(world.rotations_dir())
        .map(|entries| {
            entries
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "jsonl")
                })
                .count()
        })
        .unwrap_or(0);
    assert_eq!(journals, 0, "no rotation was started");
}

#[test]
fn a_personal_key_plan_asks_posthog_and_restricts_the_new_key_to_the_project() {
    let world = World::new();
    let key = world.hog.add_personal_key(
        world.admin.id,
        PersonalKeySpec::new("app").scopes(["feature_flag:read"]),
    );
    fs::write(world.env_file(), format!("{VARIABLE}={}\n", key.value)).unwrap();
    let provider = PersonalKeyProvider::new(world.access()).project_id(world.project.id);
    let request = RotationRequest::new(
        "production",
        "personal_api_key",
        VARIABLE,
        Provider::PersonalKey(provider),
        Store::env_file(world.env_file()),
    );
    let plan = world.rotator().plan(&request).to_string();
    assert!(!plan.contains('@'), "{plan}");
    assert!(plan.contains("ask PostHog which key this is"), "{plan}");
    assert!(
        plan.contains(&format!(
            "with the old key's scopes, restricted to project {}",
            world.project.id
        )),
        "{plan}"
    );

    // The run's instructions say so too, for an old key that reaches every project.
    let mut person = Person::silent();
    let error = world
        .rotator()
        .run(&request, &mut person, &MemoryAudit::default())
        .unwrap_err();
    assert!(matches!(error, RotateError::Interaction(_)), "{error:?}");
    assert!(
        person.shown[0].contains(&format!(
            "Restrict it to project {}, the one this environment uses.",
            world.project.id
        )),
        "{}",
        person.shown[0]
    );
}
