//! One rotation per credential at a time: a second process is refused at once with a typed
//! error, synchronised on the rotation's own crash points, never on sleeps.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use hogguard_rotate::{CrashPoint, Outcome, RotateError};

use crate::support::{MemoryAudit, Person, World};

#[test]
fn a_concurrent_run_of_the_same_credential_is_refused() {
    let world = World::new();
    world.seed_secret_key();
    let request = world.secret_key_request();
    let (reached_tx, reached_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    // The first run holds itself at its start until the second one has been refused.
    let first = world.rotator().interrupt_when(move |at| {
        if at == CrashPoint::Started {
            reached_tx.send(()).unwrap();
            release_rx.lock().unwrap().recv().unwrap();
        }
        false
    });
    std::thread::scope(|scope| {
        let winner =
            scope.spawn(|| first.run(&request, &mut Person::silent(), &MemoryAudit::default()));
        reached_rx.recv().unwrap();
        let loser = world
            .rotator()
            .run(&request, &mut Person::silent(), &MemoryAudit::default())
            .unwrap_err();
        assert!(matches!(loser, RotateError::Busy { .. }), "{loser}");
        assert!(!loser.is_failed_check());
        assert!(
            loser
                .to_string()
                .contains("another hogguard process is rotating production/flags_key"),
            "{loser}"
        );
        for busy in [
            world
                .rotator()
                .resume(&request, &mut Person::silent(), &MemoryAudit::default()),
            world
                .rotator()
                .abort(&request, &mut Person::silent(), &MemoryAudit::default()),
        ] {
            assert!(matches!(busy, Err(RotateError::Busy { .. })));
        }
        release_tx.send(()).unwrap();
        let outcome = winner.join().unwrap().unwrap();
        assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    });
    assert_eq!(world.secret_keys().len(), 1);
}

#[test]
fn other_credentials_rotate_meanwhile() {
    let world = World::new();
    world.seed_secret_key();
    let request = world.secret_key_request();
    let held = world
        .rotator()
        .interrupt_when(|at| at == CrashPoint::Started)
        .run(&request, &mut Person::silent(), &MemoryAudit::default())
        .unwrap_err();
    assert!(matches!(held, RotateError::Interrupted { .. }));
    let open = world.rotator().open_rotation(&request).unwrap().unwrap();
    assert!(open.journal.starts_with(world.rotations_dir()));
    let error = world
        .rotator()
        .finish(&request, &mut Person::silent(), &MemoryAudit::default())
        .unwrap_err();
    assert!(matches!(error, RotateError::CannotFinish { .. }), "{error}");
}
