//! The checkpoint kept beside the log (`<log>.checkpoint`): the last entry known durable, so
//! that deleting entries at the end, or rewriting the chain, is caught. An HMAC under a key
//! kept outside the log directory makes it unforgeable by whoever can edit the files.

use std::fmt;
use std::io;
use std::path::Path;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::AuditError;
use crate::files::MAX_SIDECAR_BYTES;
use crate::format::{Digest, FORMAT_VERSION, hex, parse_hex};
use crate::problem::CheckpointMismatch;

/// The prefix of the `mac` member's value.
const MAC_PREFIX: &str = "hmac-sha256:";

/// Starts the MAC's message, so the key authenticates nothing else by accident.
const MAC_DOMAIN: &str = "hogguard-audit-v1 checkpoint\n";

/// The key of checkpoint MACs (HMAC-SHA256): any non-empty byte string, kept away from the
/// log (an environment variable filled from a secret store). Zeroed on drop; `Debug` does
/// not show it.
#[derive(Clone)]
pub struct CheckpointKey {
    bytes: Zeroizing<Vec<u8>>,
}

impl CheckpointKey {
    /// A key of these bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> CheckpointKey {
        CheckpointKey {
            bytes: Zeroizing::new(bytes.into()),
        }
    }

    /// The key held by the environment variable `var` (its UTF-8 bytes, as given).
    ///
    /// Fails when the variable is unset, empty or not UTF-8: a configured key that is
    /// missing must not silently turn into an unkeyed checkpoint.
    pub fn from_env(var: &str) -> Result<CheckpointKey, AuditError> {
        match std::env::var(var) {
            Ok(value) if !value.is_empty() => Ok(CheckpointKey::new(value)),
            _ => Err(AuditError::CheckpointKeyMissing {
                reason: format!("the environment variable {var} is unset, empty or not UTF-8"),
            }),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.bytes).expect("HMAC takes keys of any length")
    }
}

impl fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckpointKey(..)")
    }
}

/// The last durable entry, as the checkpoint file records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub(crate) log_id: String,
    /// The entry's seq; 0 for a log without entries.
    pub(crate) seq: u64,
    /// The entry's hash; [`GENESIS_DIGEST`](crate::format::GENESIS_DIGEST) for seq 0.
    pub(crate) hash: Digest,
    /// The log's length in bytes through that entry's newline.
    pub(crate) offset: u64,
    /// `HMAC-SHA256(key, message())`, when a key was configured.
    pub(crate) mac: Option<Digest>,
}

/// The checkpoint file's one JSON line.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointFile {
    v: u32,
    log: String,
    seq: u64,
    hash: String,
    offset: u64,
    mac: Option<String>,
}

/// Why a checkpoint and the configured key do not go together.
pub(crate) enum KeyCheck {
    /// The checkpoint does not verify under the key.
    Mismatch(CheckpointMismatch),
    /// The checkpoint is keyed and no key was given.
    Missing,
}

/// Why the checkpoint file could not be read.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// Reading it failed, or it is not a regular file of checkpoint size.
    File(hogguard_fs::Error),
    Malformed(String),
}

impl Checkpoint {
    /// A checkpoint of `seq`/`hash`/`offset`, with a MAC when `key` is given.
    pub(crate) fn new(
        log_id: &str,
        seq: u64,
        hash: Digest,
        offset: u64,
        key: Option<&CheckpointKey>,
    ) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            log_id: log_id.to_owned(),
            seq,
            hash,
            offset,
            mac: None,
        };
        checkpoint.mac = key.map(|key| checkpoint.compute_mac(key));
        checkpoint
    }

    /// The MAC's message: every member but the MAC, one per line.
    fn compute_mac(&self, key: &CheckpointKey) -> Digest {
        let mut mac = key.mac();
        mac.update(self.message().as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn message(&self) -> String {
        format!(
            "{MAC_DOMAIN}{}\n{}\n{}\n{}\n",
            self.log_id,
            self.seq,
            hex(&self.hash),
            self.offset
        )
    }

    /// Whether the MAC is `key`'s, compared in constant time; `false` when there is none.
    pub(crate) fn mac_is_valid(&self, key: &CheckpointKey) -> bool {
        let Some(mac) = &self.mac else {
            return false;
        };
        let mut expected = key.mac();
        expected.update(self.message().as_bytes());
        expected.verify_slice(mac).is_ok()
    }

    /// Refuses, under `key`, a MAC that is not the key's, and a missing MAC unless the log
    /// holds nothing (only a log never written to may gain a key: anywhere else, stripping
    /// the MAC is what someone who rewrote the log would do); without a key, refuses a keyed
    /// checkpoint as [`KeyCheck::Missing`], which only a writer must not ignore.
    pub(crate) fn check_key(
        &self,
        key: Option<&CheckpointKey>,
        log_is_empty: bool,
    ) -> Result<(), KeyCheck> {
        match (key, self.mac) {
            (Some(key), Some(_)) if !self.mac_is_valid(key) => {
                Err(KeyCheck::Mismatch(CheckpointMismatch::Mac))
            }
            (Some(_), None) if !log_is_empty => {
                Err(KeyCheck::Mismatch(CheckpointMismatch::NotKeyed))
            }
            (None, Some(_)) => Err(KeyCheck::Missing),
            _ => Ok(()),
        }
    }

    /// The checkpoint stored beside `log`, or `None` when there is no checkpoint file.
    pub(crate) fn read(log: &Path) -> Result<Option<Checkpoint>, ReadFailure> {
        let path = hogguard_fs::sidecar(log, CHECKPOINT_SUFFIX);
        let text = match hogguard_fs::read_regular(&path, MAX_SIDECAR_BYTES) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(ReadFailure::File(error)),
        };
        let malformed = |reason: &str| ReadFailure::Malformed(reason.to_owned());
        let file: CheckpointFile = serde_json::from_slice(&text)
            .map_err(|error| ReadFailure::Malformed(error.to_string()))?;
        if file.v != FORMAT_VERSION {
            return Err(malformed("unknown format version"));
        }
        if parse_hex::<16>(file.log.as_bytes()).is_none() {
            return Err(malformed("log is not 32 lowercase hex digits"));
        }
        let hash = parse_hex::<32>(file.hash.as_bytes())
            .ok_or_else(|| malformed("hash is not 64 lowercase hex digits"))?;
        let mac = match file.mac {
            None => None,
            Some(text) => Some(
                text.strip_prefix(MAC_PREFIX)
                    .and_then(|hex| parse_hex::<32>(hex.as_bytes()))
                    .ok_or_else(|| malformed("mac is not hmac-sha256: and 64 hex digits"))?,
            ),
        };
        Ok(Some(Checkpoint {
            log_id: file.log,
            seq: file.seq,
            hash,
            offset: file.offset,
            mac,
        }))
    }

    /// Replaces the checkpoint beside `log` atomically (a new one is private).
    pub(crate) fn write(&self, log: &Path) -> Result<(), hogguard_fs::Error> {
        let file = CheckpointFile {
            v: FORMAT_VERSION,
            log: self.log_id.clone(),
            seq: self.seq,
            hash: hex(&self.hash),
            offset: self.offset,
            mac: self.mac.map(|mac| format!("{MAC_PREFIX}{}", hex(&mac))),
        };
        let mut line = serde_json::to_vec(&file).expect("a checkpoint serialises");
        line.push(b'\n');
        hogguard_fs::replace(
            &hogguard_fs::sidecar(log, CHECKPOINT_SUFFIX),
            &line,
            hogguard_fs::PRIVATE_FILE_MODE,
        )
    }
}

/// The checkpoint file's suffix after the log's name.
pub(crate) const CHECKPOINT_SUFFIX: &str = ".checkpoint";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_and_macs_bind_every_member() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        let key = CheckpointKey::new("k");
        let checkpoint = Checkpoint::new(
            "0123456789abcdef0123456789abcdef",
            3,
            [7; 32],
            900,
            Some(&key),
        );
        checkpoint.write(&log).unwrap();
        let read = Checkpoint::read(&log).unwrap().unwrap();
        assert_eq!(read, checkpoint);
        assert!(read.mac_is_valid(&key));
        assert!(!read.mac_is_valid(&CheckpointKey::new("other")));
        for changed in [
            Checkpoint {
                seq: 4,
                ..read.clone()
            },
            Checkpoint {
                offset: 901,
                ..read.clone()
            },
            Checkpoint {
                hash: [8; 32],
                ..read.clone()
            },
            Checkpoint {
                log_id: "1123456789abcdef0123456789abcdef".into(),
                ..read.clone()
            },
        ] {
            assert!(!changed.mac_is_valid(&key));
        }
        let text = std::fs::read_to_string(dir.path().join("audit.jsonl.checkpoint")).unwrap();
        assert!(
            text.starts_with(
                r#"{"v":1,"log":"0123456789abcdef0123456789abcdef","seq":3,"hash":"0707"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#","offset":900,"mac":"hmac-sha256:"#),
            "{text}"
        );
    }

    #[test]
    fn the_key_never_prints() {
        assert_eq!(
            format!("{:?}", CheckpointKey::new("hunter2")),
            "CheckpointKey(..)"
        );
    }
}
