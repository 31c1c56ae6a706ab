//! The rotation journal: one JSON-lines file per rotation under `.hogguard/rotations/`,
//! appended and fsynced record by record, and the per-credential lock file beside it.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hogguard_secret::Secret;
use serde::{Deserialize, Serialize};

use crate::error::RotateError;
use crate::request::{ProviderKind, RotationRequest};
use crate::step::Step;
use crate::time;

/// The largest journal read: a rotation writes a few dozen lines of a few hundred bytes.
const MAX_JOURNAL_BYTES: u64 = 16 << 20;

/// How long taking a credential's lock waits before the credential counts as busy. Another
/// rotation holds it for minutes; this only rides out the moment after a holder in this
/// process let go, while a child process started by another thread still shares the lock
/// file until it runs its program.
const LOCK_WAIT: Duration = Duration::from_millis(200);

/// What identifies a key without revealing it: PostHog's id (when it has one), PostHog's mask
/// and the SHA-256 fingerprint of the value (unknown for a key whose value PostHog's answer
/// never delivered).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyRef {
    /// PostHog's id of the key, for project secret and personal API keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// PostHog's mask, `phs_...abcd`.
    pub mask: String,
    /// Hex SHA-256 of the value ([`Secret::fingerprint`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl KeyRef {
    /// The reference of `secret`, with PostHog's `id` if known.
    pub(crate) fn of(secret: &Secret, id: Option<String>) -> KeyRef {
        KeyRef {
            id,
            mask: secret.mask(),
            fingerprint: Some(secret.fingerprint()),
        }
    }
}

/// The first record of a journal: what is rotated, from which key, and the settings that must
/// not change while the rotation is open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Started {
    pub(crate) rotation_id: String,
    pub(crate) environment: String,
    pub(crate) credential: String,
    pub(crate) variable: String,
    pub(crate) provider: ProviderKind,
    pub(crate) store: String,
    pub(crate) old: KeyRef,
    /// Project secret keys: the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) project_id: Option<u64>,
    /// Project secret keys: the label of the key this rotation creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) new_label: Option<String>,
    /// Project secret keys: the new key's scopes; personal keys: the scopes it may hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) scopes: Vec<String>,
    /// Personal keys: the projects the new key must be restricted to, if the old one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scoped_teams: Option<Vec<u64>>,
    /// Personal keys: the organisations the new key must be restricted to, if the old one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scoped_organizations: Option<Vec<String>>,
    /// Webhook secrets: the grace period in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) grace_seconds: Option<u64>,
}

impl Started {
    /// The record of a rotation of `request`'s credential away from `current` (PostHog's id
    /// `old_id`, when known), with every provider-specific setting empty.
    pub(crate) fn new(
        request: &RotationRequest,
        current: &Secret,
        old_id: Option<String>,
        rotation_id: String,
    ) -> Started {
        Started {
            rotation_id,
            environment: request.environment.clone(),
            credential: request.credential.clone(),
            variable: request.variable.clone(),
            provider: request.provider.kind(),
            store: request.store.describe(),
            old: KeyRef::of(current, old_id),
            project_id: None,
            new_label: None,
            scopes: Vec::new(),
            scoped_teams: None,
            scoped_organizations: None,
            grace_seconds: None,
        }
    }
}

/// How a rotation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Closure {
    Completed,
    Aborted,
}

/// One journaled event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Event {
    /// Boxed: it is written once per journal, the other events many times.
    Started(Box<Started>),
    /// About to act; written (and fsynced) before the action.
    Intent {
        step: Step,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<KeyRef>,
    },
    /// The action happened.
    Done {
        step: Step,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<KeyRef>,
        /// The end of the grace period (Unix seconds), for [`Step::StartGracePeriod`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
    },
    /// `abort` checked that it can go back to the old key and began to; from here on the
    /// rotation can only end aborted.
    AbortStarted,
    Closed {
        outcome: Closure,
    },
}

/// One line of a journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// Counts from 1.
    pub(crate) seq: u64,
    /// When, in Unix seconds.
    pub(crate) at: u64,
    #[serde(flatten)]
    pub(crate) event: Event,
}

/// The journals and locks of every credential, in one directory.
#[derive(Clone, Debug)]
pub(crate) struct Journals {
    dir: PathBuf,
}

/// Held while a process works on a credential; dropping it (or the process dying) releases it.
pub(crate) type CredentialLock = hogguard_fs::Lock;

/// A rotation that ended with a stored new key, for key ages.
#[derive(Clone, Debug)]
pub(crate) struct CompletedRotation {
    pub(crate) rotation_id: String,
    pub(crate) closed_at: u64,
    /// The fingerprint of the key it stored.
    pub(crate) stored: Option<String>,
}

impl Journals {
    pub(crate) fn new(dir: PathBuf) -> Journals {
        Journals { dir }
    }

    /// `environment.credential`, each part with anything but letters, digits, `_` and `-`
    /// percent-encoded, so names cannot escape the directory or run into each other.
    fn prefix(environment: &str, credential: &str) -> String {
        format!("{}.{}", encode(environment), encode(credential))
    }

    /// Creates the directory (and `.hogguard/` above it) private whatever the umask.
    fn ensure_dir(&self) -> Result<(), RotateError> {
        hogguard_fs::create_private_dir_all(&self.dir).map_err(RotateError::Journal)
    }

    /// Takes the credential's lock, or fails with [`RotateError::Busy`] when another holds
    /// it.
    pub(crate) fn lock(
        &self,
        environment: &str,
        credential: &str,
    ) -> Result<CredentialLock, RotateError> {
        self.ensure_dir()?;
        let path = self
            .dir
            .join(format!("{}.lock", Self::prefix(environment, credential)));
        hogguard_fs::Lock::acquire(&path, LOCK_WAIT).map_err(|error| match error {
            hogguard_fs::Error::Locked { path, .. } => RotateError::Busy {
                credential: format!("{environment}/{credential}"),
                lock: path,
            },
            other => RotateError::Journal(other),
        })
    }

    /// Every journal of the credential, oldest first (by start time, then file name).
    fn all(&self, environment: &str, credential: &str) -> Result<Vec<Journal>, RotateError> {
        let prefix = format!("{}.", Self::prefix(environment, credential));
        let unlisted = |source| journal_error("list", &self.dir, source);
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(unlisted(source)),
        };
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(unlisted)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".jsonl") {
                paths.push(entry.path());
            }
        }
        paths.sort();
        let mut journals = paths
            .into_iter()
            .map(|path| Journal::load(&path))
            .filter_map(Result::transpose)
            .collect::<Result<Vec<_>, _>>()?;
        journals.sort_by_key(|journal| journal.records[0].at);
        Ok(journals)
    }

    /// The credential's rotation that is not closed, if any.
    pub(crate) fn open_rotation(
        &self,
        environment: &str,
        credential: &str,
    ) -> Result<Option<Journal>, RotateError> {
        Ok(self
            .all(environment, credential)?
            .into_iter()
            .rfind(|journal| journal.closure().is_none()))
    }

    /// The credential's last rotation that completed.
    pub(crate) fn last_completed(
        &self,
        environment: &str,
        credential: &str,
    ) -> Result<Option<CompletedRotation>, RotateError> {
        Ok(self
            .all(environment, credential)?
            .iter()
            .filter_map(|journal| {
                let closed = journal.records.last()?;
                (closed.event
                    == Event::Closed {
                        outcome: Closure::Completed,
                    })
                .then(|| CompletedRotation {
                    rotation_id: journal.started().rotation_id.clone(),
                    closed_at: closed.at,
                    stored: journal
                        .done_keys(Step::StoreNewKey)
                        .last()
                        .and_then(|key| key.fingerprint.clone()),
                })
            })
            .max_by_key(|completed| completed.closed_at))
    }

    /// Creates the journal of a new rotation with its first record, durably.
    pub(crate) fn create(&self, started: Started, at: u64) -> Result<Journal, RotateError> {
        self.ensure_dir()?;
        let path = self.dir.join(format!(
            "{}.{}.jsonl",
            Self::prefix(&started.environment, &started.credential),
            started.rotation_id
        ));
        let record = Record {
            seq: 1,
            at,
            event: Event::Started(Box::new(started)),
        };
        let mut file = hogguard_fs::private_file()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| journal_error("create", &path, source))?;
        file.write_all(&line(&record))
            .and_then(|()| file.sync_all())
            .map_err(|source| journal_error("write", &path, source))?;
        hogguard_fs::sync_dir(&self.dir).map_err(RotateError::Journal)?;
        Ok(Journal {
            path: path.clone(),
            records: vec![record],
            valid_len: None,
        })
    }
}

/// The error of a journal operation that `hogguard_fs` does not do itself (listing,
/// creating and appending); `action` is a verb phrase (`append to`).
fn journal_error(action: &'static str, path: &Path, source: io::Error) -> RotateError {
    RotateError::Journal(hogguard_fs::Error::Io {
        action,
        path: path.to_owned(),
        source,
    })
}

fn encode(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn line(record: &Record) -> Vec<u8> {
    let mut line = serde_json::to_vec(record).expect("journal records serialise");
    line.push(b'\n');
    line
}

/// One rotation's journal, read into memory.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    records: Vec<Record>,
    /// Set when the file ends in a torn line (a crash mid-append): the length of the intact
    /// part, to which the file is cut before the next append.
    valid_len: Option<u64>,
}

impl Journal {
    /// Reads a journal. A last line without its newline, or a last line that does not parse
    /// and holds NUL bytes (a write that reached the disk partly), is a torn append and is
    /// ignored; any other unreadable line is damage. `None` for an empty file (a crash while
    /// it was being created, before its first record was durable).
    fn load(path: &Path) -> Result<Option<Journal>, RotateError> {
        let bytes =
            hogguard_fs::read_regular(path, MAX_JOURNAL_BYTES).map_err(RotateError::Journal)?;
        let mut records = Vec::new();
        let mut offset = 0;
        let mut valid_len = None;
        let lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
        for (index, raw) in lines.iter().enumerate() {
            let is_last = index + 1 == lines.len();
            let complete = raw.ends_with(b"\n");
            match serde_json::from_slice::<Record>(raw) {
                Ok(record) if complete => records.push(record),
                _ if is_last && (!complete || raw.contains(&0)) => {
                    valid_len = Some(offset as u64);
                }
                _ => {
                    return Err(RotateError::JournalCorrupt {
                        path: path.to_owned(),
                        line: index + 1,
                    });
                }
            }
            offset += raw.len();
        }
        match records.first() {
            None => Ok(None),
            Some(Record {
                event: Event::Started(_),
                ..
            }) => Ok(Some(Journal {
                path: path.to_owned(),
                records,
                valid_len,
            })),
            Some(_) => Err(RotateError::JournalCorrupt {
                path: path.to_owned(),
                line: 1,
            }),
        }
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The first record.
    pub(crate) fn started(&self) -> &Started {
        match &self.records[0].event {
            Event::Started(started) => started,
            _ => unreachable!("a journal is loaded or created only with its start record first"),
        }
    }

    /// How the rotation ended, if it did.
    pub(crate) fn closure(&self) -> Option<Closure> {
        self.records.iter().find_map(|record| match record.event {
            Event::Closed { outcome } => Some(outcome),
            _ => None,
        })
    }

    /// Whether an abort began.
    pub(crate) fn abort_started(&self) -> bool {
        self.records
            .iter()
            .any(|record| record.event == Event::AbortStarted)
    }

    /// The keys of each `Done` record of `step`, oldest first.
    pub(crate) fn done_keys(&self, step: Step) -> impl Iterator<Item = &KeyRef> {
        self.records
            .iter()
            .filter_map(move |record| match &record.event {
                Event::Done {
                    step: done,
                    key: Some(key),
                    ..
                } if *done == step => Some(key),
                _ => None,
            })
    }

    /// The keys of each `Intent` record of `step`, oldest first.
    pub(crate) fn intent_keys(&self, step: Step) -> impl Iterator<Item = &KeyRef> {
        self.records
            .iter()
            .filter_map(move |record| match &record.event {
                Event::Intent {
                    step: intended,
                    key: Some(key),
                } if *intended == step => Some(key),
                _ => None,
            })
    }

    /// Whether an intent of `step` was journaled.
    pub(crate) fn intended(&self, step: Step) -> bool {
        self.records.iter().any(
            |record| matches!(&record.event, Event::Intent { step: intended, .. } if *intended == step),
        )
    }

    /// Whether `step` is done for the key with `fingerprint` (any key when `None`).
    pub(crate) fn is_done(&self, step: Step, fingerprint: Option<&str>) -> bool {
        self.records.iter().any(|record| match &record.event {
            Event::Done {
                step: done, key, ..
            } => {
                *done == step
                    && fingerprint.is_none_or(|fingerprint| {
                        key.as_ref()
                            .is_some_and(|key| key.fingerprint.as_deref() == Some(fingerprint))
                    })
            }
            _ => false,
        })
    }

    /// The end of the grace period, once it started.
    pub(crate) fn grace_until(&self) -> Option<u64> {
        self.records.iter().find_map(|record| match record.event {
            Event::Done {
                step: Step::StartGracePeriod,
                until,
                ..
            } => until,
            _ => None,
        })
    }

    /// The step whose intent is the last record: the one a crash interrupted.
    pub(crate) fn interrupted_step(&self) -> Option<Step> {
        match self.records.last()?.event {
            Event::Intent { step, .. } => Some(step),
            _ => None,
        }
    }

    /// Where the rotation stands, for people.
    pub(crate) fn status(&self) -> String {
        let started_at = self.records[0].at;
        let last = self.records.last().map(|record| &record.event);
        let grace = self.grace_until();
        match last {
            Some(Event::Done {
                step: Step::StartGracePeriod,
                ..
            }) => format!(
                "both webhook secrets are accepted until {}; --finish drops the old one",
                time::format_utc(time::from_unix_seconds(grace.unwrap_or(started_at)))
            ),
            _ if self.abort_started() => "stopped while aborting".to_owned(),
            Some(Event::Intent { step, .. }) => format!("stopped during {step}"),
            Some(Event::Done { step, .. }) => format!("stopped after {step}"),
            _ => "started".to_owned(),
        }
    }

    /// Appends a record and fsyncs it before returning.
    pub(crate) fn append(&mut self, at: u64, event: Event) -> Result<(), RotateError> {
        let io_error = |source| journal_error("append to", &self.path, source);
        let record = Record {
            seq: self.records.last().map_or(1, |last| last.seq + 1),
            at,
            event,
        };
        let mut file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io_error)?;
        if let Some(valid_len) = self.valid_len {
            file.set_len(valid_len).map_err(io_error)?;
        }
        file.write_all(&line(&record)).map_err(io_error)?;
        file.sync_data().map_err(io_error)?;
        self.valid_len = None;
        self.records.push(record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(rotation_id: &str) -> Started {
        Started {
            rotation_id: rotation_id.to_owned(),
            environment: "prod env".to_owned(),
            credential: "flags/key".to_owned(),
            variable: "FLAGS_KEY".to_owned(),
            provider: ProviderKind::WebhookSecret,
            store: ".env".to_owned(),
            old: KeyRef::of(&Secret::new("whsec_old"), None),
            project_id: None,
            new_label: None,
            scopes: Vec::new(),
            scoped_teams: None,
            scoped_organizations: None,
            grace_seconds: Some(60),
        }
    }

    #[test]
    fn records_read_back_and_torn_tails_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let journals = Journals::new(dir.path().join("rotations"));
        let mut journal = journals.create(started("r1"), 10).unwrap();
        let key = KeyRef::of(&Secret::new("whsec_new"), None);
        journal
            .append(
                11,
                Event::Intent {
                    step: Step::StoreNewKey,
                    key: Some(key.clone()),
                },
            )
            .unwrap();
        let path = journal.path().to_owned();
        assert_eq!(
            path.file_name().unwrap().to_string_lossy(),
            "prod%20env.flags%2Fkey.r1.jsonl"
        );
        // A crash in the middle of the next append.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"seq\":3,\"at\":12,\"ev").unwrap();
        drop(file);

        let mut open = journals
            .open_rotation("prod env", "flags/key")
            .unwrap()
            .unwrap();
        assert_eq!(open.started(), &started("r1"));
        assert_eq!(open.interrupted_step(), Some(Step::StoreNewKey));
        assert_eq!(open.intent_keys(Step::StoreNewKey).next(), Some(&key));
        open.append(
            13,
            Event::Done {
                step: Step::StoreNewKey,
                key: Some(key.clone()),
                until: None,
            },
        )
        .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(
            text.lines()
                .last()
                .unwrap()
                .starts_with("{\"seq\":3,\"at\":13,\"event\":\"done\"")
        );
        assert!(open.is_done(Step::StoreNewKey, key.fingerprint.as_deref()));
        assert!(!open.is_done(Step::StoreNewKey, Some("other")));

        open.append(
            14,
            Event::Closed {
                outcome: Closure::Completed,
            },
        )
        .unwrap();
        assert!(
            journals
                .open_rotation("prod env", "flags/key")
                .unwrap()
                .is_none()
        );
        let completed = journals
            .last_completed("prod env", "flags/key")
            .unwrap()
            .unwrap();
        assert_eq!(
            (completed.rotation_id.as_str(), completed.closed_at),
            ("r1", 14)
        );
        assert_eq!(completed.stored, key.fingerprint);
    }

    #[test]
    fn damage_before_the_last_line_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let journals = Journals::new(dir.path().to_owned());
        let journal = journals.create(started("r1"), 10).unwrap();
        let path = journal.path().to_owned();
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str("not json\n{\"seq\":3}\n");
        fs::write(&path, text).unwrap();
        let error = journals.open_rotation("prod env", "flags/key").unwrap_err();
        assert!(
            matches!(error, RotateError::JournalCorrupt { line: 2, .. }),
            "{error}"
        );
    }

    #[test]
    fn one_lock_holder_per_credential() {
        let dir = tempfile::tempdir().unwrap();
        let journals = Journals::new(dir.path().to_owned());
        let held = journals.lock("prod", "flags").unwrap();
        let error = journals.lock("prod", "flags").unwrap_err();
        assert!(matches!(error, RotateError::Busy { .. }), "{error}");
        assert!(journals.lock("prod", "other").is_ok());
        drop(held);
        assert!(journals.lock("prod", "flags").is_ok());
    }
}
