//! Shipping to the PostHog stand-in: delivery, retries, the outbox, and lost acknowledgements.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hogguard_audit::{
    AUDIT_EVENT, AuditError, AuditLog, CheckpointKey, CheckpointMismatch, Entry, ProblemKind,
    ShipError, ShipOptions, ship,
};
use hogguard_posthog::{CaptureClient, ClientConfig, Hosts, RetryPolicy};
use hogguard_secret::Secret;
use hogguard_testkit::keys::{self, Prefix};
use hogguard_testkit::posthog::{CapturedEvent, FakeHog, Fault};
use serde_json::json;

use crate::common::{RecordingSleeper, input, options, scanner, temp_log, write_log};

const PROJECT_KEY: &str = "phc_AuditProjectToken";

fn client(hog: &FakeHog, timeout: Duration) -> CaptureClient {
    let config = ClientConfig::default()
        .retry(RetryPolicy::none())
        .timeout(timeout);
    CaptureClient::new(
        &Hosts::new(hog.base_url()).unwrap(),
        &config,
        Secret::new(PROJECT_KEY),
    )
    .unwrap()
}

fn ship_options(sleeper: &Arc<RecordingSleeper>) -> ShipOptions {
    ShipOptions::default()
        .scanner(scanner())
        .sleeper(Arc::clone(sleeper) as Arc<dyn hogguard_posthog::Sleeper>)
        .max_attempts(10)
}

/// Captured audit events by uuid, with how often each arrived.
fn by_uuid(events: &[CapturedEvent]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for event in events.iter().filter(|e| e.event == AUDIT_EVENT) {
        *counts
            .entry(event.uuid.clone().expect("every audit event has a uuid"))
            .or_insert(0) += 1;
    }
    counts
}

fn expected_uuids(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(Entry::event_uuid).collect()
}

fn assert_each_arrived_once(hog: &FakeHog, entries: &[Entry]) {
    let counts = by_uuid(&hog.events());
    let mut expected = expected_uuids(entries);
    expected.sort();
    assert_eq!(counts.keys().cloned().collect::<Vec<_>>(), expected);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}

#[test]
fn entries_arrive_as_audit_events_with_their_members() {
    let hog = FakeHog::start();
    let (_dir, path) = temp_log();
    let entries = write_log(&path, 5, &options());
    let sleeper = Arc::default();
    let report = ship(
        &path,
        &client(&hog, Duration::from_secs(5)),
        &ship_options(&sleeper),
    )
    .unwrap();
    assert_eq!(
        (report.shipped, report.pending, report.acked_seq),
        (5, 0, 5)
    );
    assert!(report.last_error.is_none());
    assert_each_arrived_once(&hog, &entries);

    let events = hog.events();
    let first = events
        .iter()
        .find(|e| e.uuid.as_deref() == Some(&entries[0].event_uuid()))
        .unwrap();
    assert_eq!(first.path, "/batch/");
    assert_eq!(first.token, PROJECT_KEY);
    assert_eq!(first.distinct_id, entries[0].user_id);
    assert_eq!(
        first.timestamp.as_deref(),
        Some(entries[0].timestamp.to_string().as_str())
    );
    let properties = &first.properties;
    assert_eq!(properties["$process_person_profile"], false);
    let member = |name: &str| serde_json::to_value(&entries[0]).unwrap()[name].clone();
    for name in [
        "log",
        "seq",
        "timestamp",
        "prev",
        "action",
        "user_id",
        "resource",
        "result",
        "metadata",
        "hash",
    ] {
        assert_eq!(properties[name], member(name), "{name}");
    }
    // In seq order.
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e.properties["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);

    // Nothing new: no request.
    hog.reset_requests();
    let again = ship(
        &path,
        &client(&hog, Duration::from_secs(5)),
        &ship_options(&sleeper),
    )
    .unwrap();
    assert_eq!((again.shipped, again.pending), (0, 0));
    assert_eq!(hog.request_count("/batch"), 0);
    assert!(sleeper.waits.lock().unwrap().is_empty());
}

#[test]
fn with_posthog_down_for_the_first_attempts_every_entry_arrives_exactly_once() {
    let faults = [
        (Fault::status(503).times(3).on_path("/batch"), false),
        (Fault::status(502).times(2).on_path("/batch"), false),
        (Fault::drop_connection().times(3).on_path("/batch"), false),
        (Fault::throttled(2).times(2).on_path("/batch"), true),
    ];
    for (fault, throttled) in faults {
        let hog = FakeHog::start();
        hog.inject(fault.clone());
        let (_dir, path) = temp_log();
        let entries = write_log(&path, 7, &options());
        let sleeper = Arc::new(RecordingSleeper::default());
        let options = ship_options(&sleeper).batch_size(3);
        let report = ship(&path, &client(&hog, Duration::from_secs(5)), &options).unwrap();
        assert_eq!((report.shipped, report.pending), (7, 0), "{fault:?}");
        assert_each_arrived_once(&hog, &entries);
        let waits = sleeper.waits.lock().unwrap().clone();
        assert!(!waits.is_empty(), "{fault:?}");
        if throttled {
            assert!(
                waits.iter().all(|w| *w >= Duration::from_secs(2)),
                "{waits:?}"
            );
        }
    }
}

#[test]
fn backoff_doubles_between_failed_attempts() {
    let hog = FakeHog::start();
    hog.inject(Fault::status(503).times(4).on_path("/batch"));
    let (_dir, path) = temp_log();
    write_log(&path, 1, &options());
    let sleeper = Arc::new(RecordingSleeper::default());
    let options =
        ship_options(&sleeper).backoff(Duration::from_millis(100), Duration::from_millis(500));
    ship(&path, &client(&hog, Duration::from_secs(5)), &options).unwrap();
    let ms = Duration::from_millis;
    assert_eq!(
        *sleeper.waits.lock().unwrap(),
        [ms(100), ms(200), ms(400), ms(500)]
    );
}

#[test]
fn after_bounded_attempts_entries_stay_pending_until_posthog_is_back() {
    let hog = FakeHog::start();
    let (_dir, path) = temp_log();
    let log = AuditLog::open(&path, &options()).unwrap();
    let mut entries: Vec<Entry> = (1..=3).map(|n| log.append(input(n)).unwrap()).collect();
    let sleeper = Arc::new(RecordingSleeper::default());
    let capture = client(&hog, Duration::from_secs(5));
    // Shipping runs beside the open writer, and sends what the checkpoint covers.
    let report = ship(&path, &capture, &ship_options(&sleeper)).unwrap();
    assert_eq!((report.shipped, report.awaiting_checkpoint), (0, 3));
    log.checkpoint().unwrap();
    let report = ship(&path, &capture, &ship_options(&sleeper)).unwrap();
    assert_eq!(
        (report.shipped, report.acked_seq, report.awaiting_checkpoint),
        (3, 3, 0)
    );

    entries.extend((4..=8).map(|n| log.append(input(n)).unwrap()));
    log.checkpoint().unwrap();
    hog.inject(Fault::status(503).times(1000).on_path("/batch"));
    let options = ship_options(&sleeper).max_attempts(3).batch_size(2);
    let report = ship(&path, &capture, &options).unwrap();
    assert_eq!(
        (report.shipped, report.pending, report.acked_seq),
        (0, 5, 3)
    );
    assert!(
        report
            .last_error
            .as_ref()
            .is_some_and(hogguard_posthog::Error::is_transient)
    );
    assert_eq!(hog.request_count("/batch"), 1 + 3);

    hog.clear_faults();
    entries.push(log.append(input(9)).unwrap());
    log.checkpoint().unwrap();
    let report = ship(&path, &capture, &options).unwrap();
    assert_eq!(
        (report.shipped, report.pending, report.acked_seq),
        (6, 0, 9)
    );
    assert_each_arrived_once(&hog, &entries);
}

#[test]
fn a_resend_after_a_lost_acknowledgement_has_the_same_uuids() {
    let hog = FakeHog::start();
    let (dir, path) = temp_log();
    let outbox = dir.path().join("audit.jsonl.outbox");
    let sleeper = Arc::new(RecordingSleeper::default());
    let capture = client(&hog, Duration::from_secs(5));
    let log = AuditLog::open(&path, &options()).unwrap();
    let mut entries: Vec<Entry> = (1..=2).map(|n| log.append(input(n)).unwrap()).collect();
    log.checkpoint().unwrap();
    ship(&path, &capture, &ship_options(&sleeper)).unwrap();
    let acked_2 = std::fs::read(&outbox).unwrap();
    entries.extend((3..=4).map(|n| log.append(input(n)).unwrap()));
    log.checkpoint().unwrap();
    ship(&path, &capture, &ship_options(&sleeper)).unwrap();
    let acked_4 = std::fs::read(&outbox).unwrap();

    // PostHog took seqs 3 and 4 but the acknowledgement never made it to the outbox (a
    // crash, a cut connection): the outbox still says seq 2.
    std::fs::write(&outbox, &acked_2).unwrap();
    let report = ship(&path, &capture, &ship_options(&sleeper)).unwrap();
    assert_eq!((report.shipped, report.acked_seq), (2, 4));
    assert_eq!(std::fs::read(&outbox).unwrap(), acked_4);

    let counts = by_uuid(&hog.events());
    let uuids = expected_uuids(&entries);
    assert_eq!(counts.len(), 4);
    assert_eq!([&uuids[0], &uuids[1]].map(|u| counts[u]), [1, 1]);
    assert_eq!(
        [&uuids[2], &uuids[3]].map(|u| counts[u]),
        [2, 2],
        "resent with the same uuids"
    );
    // The resent events are identical to the first sends.
    let events = hog.events();
    let sends_of_3: Vec<_> = events
        .iter()
        .filter(|e| e.uuid.as_deref() == Some(&uuids[2]))
        .collect();
    assert_eq!(sends_of_3[0].properties, sends_of_3[1].properties);
}

#[test]
fn a_slow_posthog_times_out_and_the_retry_resends_the_same_events() {
    let hog = FakeHog::start();
    // The first request is answered after the client gave up: its acknowledgement is lost.
    hog.inject(Fault::delay(Duration::from_millis(600)).on_path("/batch"));
    let (_dir, path) = temp_log();
    let entries = write_log(&path, 3, &options());
    let sleeper = Arc::new(RecordingSleeper::default());
    let report = ship(
        &path,
        &client(&hog, Duration::from_millis(200)),
        &ship_options(&sleeper),
    )
    .unwrap();
    assert_eq!((report.shipped, report.pending), (3, 0));
    assert_eq!(sleeper.waits.lock().unwrap().len(), 1);
    // Whether the timed-out request was recorded or not, only the entries' uuids arrived, and
    // at most twice.
    std::thread::sleep(Duration::from_millis(500));
    let counts = by_uuid(&hog.events());
    let mut expected = expected_uuids(&entries);
    expected.sort();
    assert_eq!(counts.keys().cloned().collect::<Vec<_>>(), expected);
    assert!(counts.values().all(|&n| n <= 2), "{counts:?}");
}

#[test]
fn a_raw_key_never_reaches_posthog() {
    let hog = FakeHog::start();
    let (_dir, path) = temp_log();
    let personal = keys::current(Prefix::Personal);
    let log = AuditLog::open(&path, &options()).unwrap();
    let entry = log
        .append(
            input(1)
                .with_metadata("key", personal.as_str())
                .with_metadata("note", format!("rotated {personal}")),
        )
        .unwrap();
    log.close().unwrap();
    assert!(!std::fs::read_to_string(&path).unwrap().contains(&personal));
    let sleeper = Arc::default();
    ship(
        &path,
        &client(&hog, Duration::from_secs(5)),
        &ship_options(&sleeper),
    )
    .unwrap();
    let events = hog.events();
    assert_eq!(events.len(), 1);
    let shipped = serde_json::to_string(&events[0].properties).unwrap();
    assert!(!shipped.contains(&personal), "{shipped}");
    assert_eq!(
        events[0].properties["metadata"]["key"],
        hogguard_secret::mask(&personal).as_str()
    );
    assert_eq!(events[0].properties["hash"], entry.hash.as_str());
}

#[test]
fn a_refused_token_is_a_typed_error_and_nothing_is_acknowledged() {
    let hog = FakeHog::start();
    let (dir, path) = temp_log();
    write_log(&path, 2, &options());
    let config = ClientConfig::default().retry(RetryPolicy::none());
    let too_long = Secret::new(format!("phc_{}", "x".repeat(80)));
    let capture =
        CaptureClient::new(&Hosts::new(hog.base_url()).unwrap(), &config, too_long).unwrap();
    let error = ship(&path, &capture, &ShipOptions::default().scanner(scanner())).unwrap_err();
    assert!(
        matches!(error, ShipError::Rejected { pending: 2, .. }),
        "{error:?}"
    );
    assert!(!dir.path().join("audit.jsonl.outbox").exists());
}

#[test]
fn a_tampered_entry_is_not_shipped() {
    let hog = FakeHog::start();
    let (_dir, path) = temp_log();
    write_log(&path, 3, &options());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("resource 2", "resource X", 1)).unwrap();
    let sleeper = Arc::default();
    let error = ship(
        &path,
        &client(&hog, Duration::from_secs(5)),
        &ship_options(&sleeper).batch_size(1),
    )
    .unwrap_err();
    let ShipError::Audit(AuditError::Corrupt { problem, .. }) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(problem.seq, 2);
    // What is sent is verified before anything is: not even seq 1 went out.
    assert!(hog.events().is_empty());
    assert_eq!(hog.request_count("/batch"), 0);
}

#[test]
fn a_forged_log_is_not_shipped_when_the_key_is_configured() {
    let hog = FakeHog::start();
    let key = CheckpointKey::new("checkpoint key from the secret store");
    let (dir, path) = temp_log();
    let genuine = write_log(&path, 3, &options().checkpoint_key(key.clone()));
    let sleeper = Arc::default();
    let capture = client(&hog, Duration::from_secs(5));
    let keyed = ship_options(&sleeper).checkpoint_key(key.clone());
    assert_eq!(ship(&path, &capture, &keyed).unwrap().shipped, 3);
    assert_each_arrived_once(&hog, &genuine);

    // The attacker replaces the log and its checkpoint by a self-consistent forgery, unkeyed
    // or keyed with a key of theirs, and drops the outbox so that it all goes out again.
    let checkpoint = |dir: &Path| dir.join("audit.jsonl.checkpoint");
    for forger in [
        options(),
        options().checkpoint_key(CheckpointKey::new("guess")),
    ] {
        let (forged_dir, forged) = temp_log();
        write_log(&forged, 4, &forger);
        std::fs::copy(&forged, &path).unwrap();
        std::fs::copy(checkpoint(forged_dir.path()), checkpoint(dir.path())).unwrap();
        let _ = std::fs::remove_file(dir.path().join("audit.jsonl.outbox"));
        hog.reset_requests();

        let error = ship(&path, &capture, &keyed).unwrap_err();
        let ShipError::Audit(AuditError::Corrupt { problem, .. }) = &error else {
            panic!("{error:?}");
        };
        assert!(
            matches!(
                problem.kind,
                ProblemKind::CheckpointMismatch(
                    CheckpointMismatch::NotKeyed | CheckpointMismatch::Mac
                )
            ),
            "{problem:?}"
        );
        assert_eq!(hog.request_count("/batch"), 0);
    }
}

/// Metadata whose member name is the context a rule needs: an unprefixed legacy personal
/// key under a PostHog-named member, a literal under `POSTHOG_API_SECRET`, and the same one
/// level down.
#[test]
fn raw_keys_in_named_metadata_members_reach_neither_the_log_nor_posthog() {
    let hog = FakeHog::start();
    let (_dir, path) = temp_log();
    let legacy = "hT4kQ9xZr2LmW7vB1nC8pS3dF6gJ0yE5uAtsK2oPqRw";
    let secret = "Zq81LmvT0xWy7KpQ2sNdR4";
    let nested_secret = "Vb62NcxQ9rTz4LmKp8WsYd";
    let mut input = input(1);
    input.metadata = json!({
        "posthog_personal_api_key": legacy,
        "POSTHOG_API_SECRET": secret,
        "deploy": {"env": {"POSTHOG_API_SECRET": nested_secret}, "posthog_keys": [legacy]},
    })
    .as_object()
    .unwrap()
    .clone();
    let log = AuditLog::open(&path, &options()).unwrap();
    let entry = log.append(input).unwrap();
    log.close().unwrap();
    let sleeper = Arc::default();
    ship(
        &path,
        &client(&hog, Duration::from_secs(5)),
        &ship_options(&sleeper),
    )
    .unwrap();

    let written = std::fs::read_to_string(&path).unwrap();
    let events = hog.events();
    assert_eq!(events.len(), 1);
    let shipped = serde_json::to_string(&events[0].properties).unwrap();
    for raw in [legacy, secret, nested_secret] {
        // On its own, no rule sees these values as credentials.
        assert_eq!(scanner().redact(raw), raw);
        assert!(!written.contains(raw), "{written}");
        assert!(!shipped.contains(raw), "{shipped}");
    }
    assert_eq!(
        entry.metadata["posthog_personal_api_key"],
        hogguard_secret::mask(legacy).as_str()
    );
    assert_eq!(events[0].properties["metadata"], json!(entry.metadata));
}

#[test]
fn an_outbox_beyond_the_log_is_refused() {
    let hog = FakeHog::start();
    let (_dir, path) = temp_log();
    write_log(&path, 3, &options());
    let sleeper = Arc::default();
    let capture = client(&hog, Duration::from_secs(5));
    ship(&path, &capture, &ship_options(&sleeper)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let error = ship(&path, &capture, &ship_options(&sleeper)).unwrap_err();
    assert!(
        matches!(error, ShipError::OutboxMismatch { .. }),
        "{error:?}"
    );
}
