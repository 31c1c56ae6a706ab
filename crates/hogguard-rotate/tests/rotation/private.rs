//! Issue 11 point 15: what a rotation creates is private whatever the umask: `.hogguard/` and
//! the journal directory, the journal, the credential's lock and the env file's lock. The
//! rotation runs in a child process (this test binary run again) under `umask 000`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use hogguard_rotate::{Outcome, Provider, RotationRequest, Rotator, Store, WebhookSecretProvider};
use hogguard_testkit::child::{self, ChildTest};

use crate::support::{MemoryAudit, Person, VARIABLE};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn rotation_state_is_private_under_umask_000() {
    let dir = tempfile::tempdir().unwrap();
    let old = hogguard_webhook::generate_secret().unwrap();
    let env_file = dir.path().join(".env");
    std::fs::write(&env_file, format!("{VARIABLE}={}\n", old.expose())).unwrap();
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    ChildTest::new("private::rotate_under_umask_000_in_child")
        .under("umask 000")
        .dir(dir.path())
        .run();
    let state = dir.path().join(".hogguard");
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("rotations")), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(state.join("rotations")).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files += 1;
    }
    assert_eq!(files, 2, "the journal and the credential's lock");
    assert_eq!(mode(&dir.path().join("..env.hogguard-lock")), 0o600);
    assert_eq!(mode(&env_file), 0o640, "the env file keeps its own mode");
}

/// Runs only as the child of [`rotation_state_is_private_under_umask_000`].
#[test]
fn rotate_under_umask_000_in_child() {
    let Some(dir) = child::dir() else {
        return;
    };
    let request = RotationRequest::new(
        "production",
        "webhook",
        VARIABLE,
        Provider::WebhookSecret(WebhookSecretProvider::new()),
        Store::env_file(dir.join(".env")),
    );
    let outcome = Rotator::new(dir.join(".hogguard/rotations"))
        .run(&request, &mut Person::silent(), &MemoryAudit::default())
        .unwrap();
    assert!(
        matches!(outcome, Outcome::GracePeriod { .. }),
        "{outcome:?}"
    );
}
