//! Real crashes: a child process (this test binary, re-executed) runs a rotation, stops at a
//! chosen point and tells the parent, which kills it with SIGKILL and resumes. The lock dies
//! with the process, the env file is the old or the new one, never a mix.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};

use hogguard_posthog::{ClientConfig, Hosts};
use hogguard_rotate::{
    CrashPoint, Outcome, PostHogAccess, ProjectSecretKeyProvider, Provider, RotationRequest,
    Rotator, Step, Store,
};
use hogguard_secret::Secret;

use crate::support::{MemoryAudit, PREVIOUS, Person, VARIABLE, World, env_value};

/// What the child needs to run the rotation the parent set up.
const CHILD_SPEC: &str = "HOGGUARD_ROTATE_CHILD_SPEC";
/// What the child prints when it reached the crash point.
const REACHED: &str = "hogguard-rotate-child: reached";

/// The child's side: a no-op unless the parent started this binary with [`CHILD_SPEC`].
#[test]
fn child_process_entry_point() {
    let Ok(spec) = std::env::var(CHILD_SPEC) else {
        return;
    };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let text = |name: &str| spec[name].as_str().unwrap().to_owned();
    let access = PostHogAccess::new(
        Hosts::new(&text("base_url")).unwrap(),
        ClientConfig::default(),
    );
    let request = RotationRequest::new(
        "production",
        "flags_key",
        VARIABLE,
        Provider::ProjectSecretKey(ProjectSecretKeyProvider::new(
            access,
            Secret::new(text("admin_key")),
            spec["project_id"].as_u64().unwrap(),
        )),
        Store::env_file(text("env_file")),
    );
    let target = text("crash_at");
    let rotator = Rotator::new(text("rotations_dir")).interrupt_when(move |at| {
        if format!("{at:?}") == target {
            // Straight to the pipe: `println!` would go to the test harness's capture.
            let mut stdout = std::io::stdout();
            writeln!(stdout, "{REACHED}").unwrap();
            stdout.flush().unwrap();
            // Wait here for SIGKILL.
            loop {
                std::thread::park();
            }
        }
        false
    });
    let _ = rotator.run(&request, &mut Person::silent(), &MemoryAudit::default());
    panic!("the child was not stopped at its crash point");
}

fn kill_child_at(point: CrashPoint) {
    let at = format!("SIGKILL at {point:?}");
    let world = World::new();
    let old = world.seed_secret_key();
    let spec = serde_json::json!({
        "base_url": world.hog.base_url(),
        "admin_key": world.admin_key.value,
        "project_id": world.project.id,
        "env_file": world.env_file(),
        "rotations_dir": world.rotations_dir(),
        "crash_at": format!("{point:?}"),
    });
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "killed::child_process_entry_point",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_SPEC, spec.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let reached = stdout
        .lines()
        .map_while(Result::ok)
        // The harness prints the test's name first, without a newline.
        .any(|line| line.ends_with(REACHED));
    assert!(reached, "{at}: the child never reached its crash point");
    child.kill().unwrap();
    child.wait().unwrap();

    let stored = env_value(&world.env_file(), VARIABLE).unwrap();
    assert!(world.hog.is_live(&stored), "{at}");
    let request = world.secret_key_request();
    let outcome = world
        .rotator()
        .resume(&request, &mut Person::silent(), &MemoryAudit::default())
        .unwrap_or_else(|error| panic!("{at}: {error}"));
    assert!(matches!(outcome, Outcome::Completed { .. }), "{at}");
    let stored = env_value(&world.env_file(), VARIABLE).unwrap();
    assert!(
        world.hog.is_live(&stored) && !world.hog.is_live(&old.value),
        "{at}"
    );
    assert_eq!(env_value(&world.env_file(), PREVIOUS), None, "{at}");
    assert_eq!(world.secret_keys().len(), 1, "{at}");
    // A kill between writing and renaming leaves the env file's next contents (secrets
    // included) in a temporary file: the resume removes it.
    let leftovers: Vec<_> = std::fs::read_dir(world.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{at}: {leftovers:?}");
}

#[test]
fn a_killed_rotation_resumes() {
    for point in [
        CrashPoint::AfterAction(Step::CreateKey),
        CrashPoint::EnvFileWritten,
        CrashPoint::AfterAction(Step::StoreNewKey),
        CrashPoint::BeforeAction(Step::RetireOldKey),
    ] {
        kill_child_at(point);
    }
}
