//! Sending events to PostHog's capture API with a project API key (`phc_`), for hogguard's
//! audit trail. Every event carries a `uuid`, so sending it again after a server error at
//! worst duplicates it (PostHog deduplicates by uuid on a best-effort basis).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hogguard_secret::{CredentialKind, Secret};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::ClientConfig;
use crate::error::Error;
use crate::hosts::{BaseUrl, Hosts};
use crate::transport::{Call, Method, Repeat, Transport, json_body};

/// The single-event capture path.
const SINGLE_PATH: &str = "/i/v0/e/";
/// The batch capture path.
const BATCH_PATH: &str = "/batch/";

/// One event to capture.
///
/// ```
/// use hogguard_posthog::Event;
///
/// let event = Event::new("key_rotated", "hogguard")
///     .with_property("key_mask", "phs_...abcd")
///     .with_property("$process_person_profile", false);
/// assert_eq!(event.uuid().len(), 36);
/// assert_eq!(&event.uuid()[14..15], "7");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    uuid: String,
    event: String,
    distinct_id: String,
    properties: Map<String, Value>,
    timestamp: String,
}

impl Event {
    /// An event named `event` for `distinct_id`, with a fresh UUIDv7 and the current time.
    pub fn new(event: impl Into<String>, distinct_id: impl Into<String>) -> Event {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Event {
            uuid: uuid_v7(now.as_millis()),
            event: event.into(),
            distinct_id: distinct_id.into(),
            properties: Map::new(),
            timestamp: rfc3339_millis(now.as_millis()),
        }
    }

    /// Replaces the uuid, e.g. with one derived from the audited action so a replay of the
    /// same action deduplicates. PostHog drops events whose uuid is not a UUID.
    pub fn with_uuid(mut self, uuid: impl Into<String>) -> Event {
        self.uuid = uuid.into();
        self
    }

    /// Replaces the timestamp (ISO 8601).
    pub fn with_timestamp(mut self, timestamp: impl Into<String>) -> Event {
        self.timestamp = timestamp.into();
        self
    }

    /// Adds a property. Never put a secret here: use its mask or fingerprint.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<Value>) -> Event {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// The event's uuid.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The event's name.
    pub fn name(&self) -> &str {
        &self.event
    }

    /// The event's distinct id.
    pub fn distinct_id(&self) -> &str {
        &self.distinct_id
    }

    /// The event's timestamp.
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    /// The event's properties.
    pub fn properties(&self) -> &Map<String, Value> {
        &self.properties
    }
}

/// A client of PostHog's capture API, authenticated by a project API key in the body.
///
/// ```
/// use hogguard_posthog::{CaptureClient, ClientConfig, Event, Hosts};
/// use hogguard_secret::Secret;
/// use hogguard_testkit::posthog::FakeHog;
///
/// let hog = FakeHog::start();
/// let hosts = Hosts::new(hog.base_url())?;
/// let capture = CaptureClient::new(&hosts, &ClientConfig::default(), Secret::new("phc_ProjectToken"))?;
/// capture.capture(&Event::new("scan_finished", "hogguard"))?;
/// assert_eq!(hog.events()[0].event, "scan_finished");
/// # Ok::<(), hogguard_posthog::Error>(())
/// ```
pub struct CaptureClient {
    transport: Transport,
    ingest: BaseUrl,
    token: Secret,
}

impl std::fmt::Debug for CaptureClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureClient")
            .field("ingest", &self.ingest)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl CaptureClient {
    /// A client capturing on `hosts`' ingest host with `project_token`. Refuses any prefixed
    /// credential but a `phc_` project API key: capture would leak a secret key into the
    /// event stream's metadata, and PostHog refuses personal keys there anyway.
    pub fn new(
        hosts: &Hosts,
        config: &ClientConfig,
        project_token: Secret,
    ) -> Result<CaptureClient, Error> {
        if let Some(kind) = CredentialKind::from_value(project_token.expose())
            .filter(|kind| *kind != CredentialKind::ProjectApiKey)
        {
            return Err(Error::UnsupportedCredential {
                kind: kind.as_str(),
                why: "capture takes a project API key (phc_)",
            });
        }
        Ok(CaptureClient {
            transport: Transport::new(config),
            ingest: hosts.ingest().clone(),
            token: project_token,
        })
    }

    /// Sends one event to `/i/v0/e/`.
    pub fn capture(&self, event: &Event) -> Result<(), Error> {
        #[derive(Serialize)]
        struct Single<'a> {
            api_key: &'a str,
            #[serde(flatten)]
            event: &'a Event,
        }
        self.send(
            SINGLE_PATH,
            &Single {
                api_key: self.token.expose(),
                event,
            },
        )
    }

    /// Sends events to `/batch/` in one request; an empty slice sends nothing.
    pub fn capture_batch(&self, events: &[Event]) -> Result<(), Error> {
        #[derive(Serialize)]
        struct Batch<'a> {
            api_key: &'a str,
            batch: &'a [Event],
        }
        if events.is_empty() {
            return Ok(());
        }
        self.send(
            BATCH_PATH,
            &Batch {
                api_key: self.token.expose(),
                batch: events,
            },
        )
    }

    fn send(&self, path: &str, body: &impl Serialize) -> Result<(), Error> {
        self.transport.send(&Call {
            method: Method::Post,
            url: self.ingest.join(path),
            bearer: None,
            json_body: Some(json_body(body)),
            repeat: Repeat::Safe,
            body_secret: Some(&self.token),
        })?;
        Ok(())
    }
}

/// Tells apart UUIDs made in the same millisecond if the system's random source fails.
static FALLBACK_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A version-7 UUID: 48 bits of Unix milliseconds, then random bits.
fn uuid_v7(unix_millis: u128) -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes[6..]).is_err() {
        // Uniqueness is what matters for deduplication, not unpredictability.
        let fallback = FALLBACK_COUNTER.fetch_add(1, Ordering::Relaxed)
            ^ u64::from(std::process::id()).rotate_left(32);
        bytes[6..14].copy_from_slice(&fallback.to_be_bytes());
    }
    let millis = (unix_millis as u64).to_be_bytes();
    bytes[..6].copy_from_slice(&millis[2..]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for Unix milliseconds (UTC).
fn rfc3339_millis(unix_millis: u128) -> String {
    let millis = i64::try_from(unix_millis).unwrap_or(i64::MAX);
    let timestamp = jiff::Timestamp::from_millisecond(millis).unwrap_or(jiff::Timestamp::MAX);
    timestamp.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_735_689_600_250),
            "2025-01-01T00:00:00.250Z"
        );
        assert_eq!(rfc3339_millis(951_825_599_999), "2000-02-29T11:59:59.999Z");
        assert_eq!(
            rfc3339_millis(4_107_542_400_000),
            "2100-03-01T00:00:00.000Z"
        );
    }

    #[test]
    fn uuids_are_version_7_with_the_time_first() {
        let uuid = uuid_v7(0x0123_4567_89ab);
        assert_eq!(&uuid[..13], "01234567-89ab");
        assert_eq!(&uuid[14..15], "7");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"), "{uuid}");
        assert_ne!(uuid_v7(1), uuid_v7(1));
    }

    #[test]
    fn events_serialise_with_every_field() {
        let event = Event::new("key_rotated", "hogguard")
            .with_uuid("0190c1b2-0000-7000-8000-000000000000")
            .with_timestamp("2025-01-01T00:00:00Z")
            .with_property("key_mask", "phs_...abcd");
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({
                "uuid": "0190c1b2-0000-7000-8000-000000000000",
                "event": "key_rotated",
                "distinct_id": "hogguard",
                "properties": {"key_mask": "phs_...abcd"},
                "timestamp": "2025-01-01T00:00:00Z"
            })
        );
    }

    #[test]
    fn capture_refuses_secret_keys() {
        let refused = CaptureClient::new(
            &Hosts::default(),
            &ClientConfig::default(),
            Secret::new("phx_PersonalKeyPersonalKeyPersonalKey"),
        );
        assert_eq!(
            refused.unwrap_err(),
            Error::UnsupportedCredential {
                kind: "personal_api_key",
                why: "capture takes a project API key (phc_)"
            }
        );
    }
}
