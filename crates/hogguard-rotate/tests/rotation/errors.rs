//! Issue 15 point 1: every error a rotation stops with says what failed once and leaves its
//! cause to `source()`, so `{:#}` never prints a cause twice (issue 12 point 5: a rotation
//! without a terminal printed one cause three times).

use std::fs;
use std::io;

use hogguard_posthog::Hosts;
use hogguard_rotate::{
    AuditRecord, AuditSinkError, Interaction, InteractionError, PostHogAccess,
    ProjectApiKeyProvider, ProjectSecretKeyProvider, Provider, RotateError, RotationRequest,
    Rotator, Store, StoreError, WebhookSecretProvider,
};
use hogguard_secret::Secret;
use hogguard_testkit::errors::assert_no_repeated_segment;

use crate::support::{MemoryAudit, Person, VARIABLE, World};

/// Someone running hogguard where there is no terminal to answer on.
struct NoTerminal;

impl Interaction for NoTerminal {
    fn show(&mut self, _: &str) {}

    fn read_secret(&mut self, _: &str) -> Result<Secret, InteractionError> {
        Err(InteractionError::Io(io::Error::other(
            "no terminal to read the new key from",
        )))
    }

    fn confirm(&mut self, _: &str) -> Result<bool, InteractionError> {
        Err(InteractionError::Cancelled)
    }
}

fn webhook_request(store: Store) -> RotationRequest {
    RotationRequest::new(
        "production",
        "webhook",
        VARIABLE,
        Provider::WebhookSecret(WebhookSecretProvider::new()),
        store,
    )
}

fn run(rotator: &Rotator, request: &RotationRequest) -> RotateError {
    rotator
        .run(request, &mut Person::silent(), &MemoryAudit::default())
        .unwrap_err()
}

#[test]
fn error_chains_repeat_no_cause() {
    let world = World::new();
    let dir = world.dir.path();
    // Each scenario with its own journals: a failed one leaves its rotation open.
    let rotator = |name: &str| Rotator::new(dir.join(name));
    let mut errors = Vec::new();

    // Stores: an env file that does not parse, an env file that is a directory, a write
    // command that fails.
    fs::write(world.env_file(), format!("{VARIABLE}=\"unterminated\n")).unwrap();
    errors.push(run(
        &rotator("unreadable"),
        &webhook_request(Store::env_file(world.env_file())),
    ));
    errors.push(run(
        &rotator("directory"),
        &webhook_request(Store::env_file(dir)),
    ));
    let old = hogguard_webhook::generate_secret().unwrap();
    let command = Store::command(
        "exit 3",
        format!(
            "if [ \"$HOGGUARD_VARIABLE\" = {VARIABLE} ]; then echo '{}'; fi",
            old.expose()
        ),
    );
    errors.push(run(&rotator("command"), &webhook_request(command)));

    // The journal's directory is a file.
    fs::write(world.env_file(), format!("{VARIABLE}={}\n", old.expose())).unwrap();
    let not_a_dir = dir.join("not-a-dir");
    fs::write(&not_a_dir, "").unwrap();
    let request = webhook_request(Store::env_file(world.env_file()));
    errors.push(run(&Rotator::new(not_a_dir.join("rotations")), &request));

    // The audit log refuses the record.
    let refusing = |_: &AuditRecord<'_>| -> Result<(), AuditSinkError> {
        Err(AuditSinkError::new(io::Error::other("the disk is full")))
    };
    errors.push(
        rotator("refused")
            .run(&request, &mut Person::silent(), &refusing)
            .unwrap_err(),
    );

    // No terminal to read the person's new key from.
    let token = world
        .hog
        .add_project(&world.hog.add_organization("Public"), "Site");
    fs::write(
        world.env_file(),
        format!("{VARIABLE}={}\n", token.api_token),
    )
    .unwrap();
    let assisted = RotationRequest::new(
        "production",
        "project_api_key",
        VARIABLE,
        Provider::ProjectApiKey(ProjectApiKeyProvider::new(world.access())),
        Store::env_file(world.env_file()),
    );
    errors.push(
        rotator("no-terminal")
            .run(&assisted, &mut NoTerminal, &MemoryAudit::default())
            .unwrap_err(),
    );

    // PostHog does not answer.
    let seeded = world.seed_secret_key();
    let unreachable = PostHogAccess::new(Hosts::new("http://127.0.0.1:1").unwrap(), world.config());
    let request = RotationRequest::new(
        "production",
        "flags_key",
        VARIABLE,
        Provider::ProjectSecretKey(ProjectSecretKeyProvider::new(
            unreachable,
            Secret::new(world.admin_key.value.clone()),
            world.project.id,
        )),
        Store::env_file(world.env_file()),
    );
    errors.push(run(&rotator("unreachable"), &request));

    assert!(
        matches!(
            errors.as_slice(),
            [
                RotateError::Store(StoreError::Unreadable { .. }),
                RotateError::Store(StoreError::File(_)),
                RotateError::Store(StoreError::CommandFailed { .. }),
                RotateError::Journal(_),
                RotateError::Audit(_),
                RotateError::Interaction(InteractionError::Io(_)),
                RotateError::PostHog { .. },
            ]
        ),
        "{errors:#?}"
    );
    for error in &errors {
        assert_no_repeated_segment(error);
        let shown = format!("{error}");
        assert!(!shown.contains(old.expose()) && !shown.contains(&seeded.value));
    }
}
