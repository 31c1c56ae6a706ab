//! A secret manager behind the user's write and read commands: the value travels on standard
//! input only and is read back after every write.

use std::fs;

use hogguard_rotate::{
    Outcome, ProjectSecretKeyProvider, Provider, RotateError, RotationRequest, Store, StoreError,
};
use hogguard_secret::Secret;

use crate::support::{MemoryAudit, Person, VARIABLE, World};

/// A "vault": one file per variable in a directory, written from standard input.
fn vault_store(dir: &std::path::Path) -> Store {
    let vault = dir.display();
    Store::command(
        format!(
            "if [ \"$HOGGUARD_ACTION\" = remove ]; then rm -f '{vault}'/\"$HOGGUARD_VARIABLE\"; \
             else cat > '{vault}'/\"$HOGGUARD_VARIABLE\"; fi"
        ),
        format!("cat '{vault}'/\"$HOGGUARD_VARIABLE\" 2>/dev/null || true"),
    )
}

fn request(world: &World, store: Store) -> RotationRequest {
    RotationRequest::new(
        "production",
        "flags_key",
        VARIABLE,
        Provider::ProjectSecretKey(ProjectSecretKeyProvider::new(
            world.access(),
            Secret::new(world.admin_key.value.clone()),
            world.project.id,
        )),
        store,
    )
}

#[test]
fn rotates_through_write_and_read_commands() {
    let world = World::new();
    let old = world.seed_secret_key();
    let vault = world.dir.path().join("vault");
    fs::create_dir(&vault).unwrap();
    fs::write(vault.join(VARIABLE), format!("{}\n", old.value)).unwrap();
    let request = request(&world, vault_store(&vault));

    let outcome = world
        .rotator()
        .run(&request, &mut Person::silent(), &MemoryAudit::default())
        .unwrap();

    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    let stored = fs::read_to_string(vault.join(VARIABLE)).unwrap();
    assert!(stored.starts_with("phs_") && stored != old.value);
    assert!(world.hog.is_live(&stored));
    assert!(!world.hog.is_live(&old.value));
    assert!(!vault.join(format!("{VARIABLE}_PREVIOUS")).exists());
    assert_eq!(world.secret_keys().len(), 1);
}

#[test]
fn a_store_that_cannot_keep_two_variables_is_refused_before_anything_happens() {
    let world = World::new();
    let old = world.seed_secret_key();
    let slot = world.dir.path().join("one-slot");
    fs::write(&slot, &old.value).unwrap();
    let store = Store::command(
        format!("cat > '{}'", slot.display()),
        format!("cat '{}'", slot.display()),
    );
    let error = world
        .rotator()
        .run(
            &request(&world, store),
            &mut Person::silent(),
            &MemoryAudit::default(),
        )
        .unwrap_err();
    assert!(
        matches!(error, RotateError::PreviousKeyPresent { .. }),
        "{error}"
    );
    assert_eq!(fs::read_to_string(&slot).unwrap(), old.value);
    assert_eq!(world.secret_keys().len(), 1);
}

#[test]
fn a_store_whose_writes_miss_the_variable_is_caught_with_the_old_key_in_place() {
    let world = World::new();
    let old = world.seed_secret_key();
    let vault = world.dir.path().join("vault");
    fs::create_dir(&vault).unwrap();
    fs::write(vault.join(VARIABLE), &old.value).unwrap();
    // Reads honour the variable; writes always go to the credential's own file.
    let store = Store::command(
        format!("cat > '{}'/{VARIABLE}", vault.display()),
        format!(
            "cat '{}'/\"$HOGGUARD_VARIABLE\" 2>/dev/null || true",
            vault.display()
        ),
    );
    let request = request(&world, store);
    let error = world
        .rotator()
        .run(&request, &mut Person::silent(), &MemoryAudit::default())
        .unwrap_err();
    assert!(
        matches!(error, RotateError::Store(StoreError::NotApplied { .. })),
        "{error}"
    );
    assert_eq!(fs::read_to_string(vault.join(VARIABLE)).unwrap(), old.value);
    let outcome = world
        .rotator()
        .abort(&request, &mut Person::silent(), &MemoryAudit::default())
        .unwrap();
    assert!(matches!(outcome, Outcome::Aborted { .. }));
    assert_eq!(world.secret_keys().len(), 1);
    assert!(world.hog.is_live(&old.value));
}
