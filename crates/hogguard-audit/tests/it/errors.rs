//! Issue 15 point 1: every error says what failed once and leaves its cause to `source()`,
//! so `{:#}` never prints a cause twice.

use std::error::Error;
use std::time::Duration;

use hogguard_audit::{AuditLog, Filter, ShipOptions, query, ship, verify};
use hogguard_posthog::{CaptureClient, ClientConfig, Hosts, RetryPolicy};
use hogguard_secret::Secret;
use hogguard_testkit::errors::assert_no_repeated_segment;
use hogguard_testkit::posthog::FakeHog;

use crate::common::{options, scanner, temp_log, write_log};

#[test]
fn error_chains_repeat_no_cause() {
    let mut errors: Vec<Box<dyn Error>> = Vec::new();
    let (dir, path) = temp_log();

    // The log's directory cannot be made; another writer holds the log; there is no log.
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    errors.push(Box::new(
        AuditLog::open(not_a_dir.join("audit.jsonl"), &options()).unwrap_err(),
    ));
    let held = AuditLog::open(&path, &options()).unwrap();
    errors.push(Box::new(
        AuditLog::open(&path, &options().lock_timeout(Duration::ZERO)).unwrap_err(),
    ));
    drop(held);
    let missing = dir.path().join("missing.jsonl");
    errors.push(Box::new(verify(&missing, None).unwrap_err()));
    errors.push(Box::new(query(&missing, &Filter::default()).unwrap_err()));

    // A damaged line; a key that is configured but not set.
    write_log(&path, 2, &options());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("resource 1", "resource 9", 1)).unwrap();
    errors.push(Box::new(AuditLog::open(&path, &options()).unwrap_err()));
    let (_other_dir, other) = temp_log();
    let unset = options().checkpoint_key_env("HOGGUARD_AUDIT_TEST_KEY_NEVER_SET");
    errors.push(Box::new(AuditLog::open(&other, &unset).unwrap_err()));

    // PostHog refuses the project key.
    let hog = FakeHog::start();
    let (_ship_dir, shipped) = temp_log();
    write_log(&shipped, 2, &options());
    let refused_key = Secret::new(format!("phc_{}", "x".repeat(80)));
    let capture = CaptureClient::new(
        &Hosts::new(hog.base_url()).unwrap(),
        &ClientConfig::default().retry(RetryPolicy::none()),
        refused_key,
    )
    .unwrap();
    let options = ShipOptions::default().scanner(scanner());
    errors.push(Box::new(ship(&shipped, &capture, &options).unwrap_err()));

    assert_eq!(errors.len(), 7);
    for error in &errors {
        assert_no_repeated_segment(error.as_ref());
    }
}
