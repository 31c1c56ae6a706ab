//! Writing audit entries from hogguard's own commands: every probe or change of a credential
//! leaves an entry, never the secret itself (the log redacts whatever it is given, and callers
//! pass masks and fingerprints only).

use std::sync::Arc;

use anyhow::{Context, Result};
use hogguard_audit::{AuditLog, AuditOptions, CheckpointKey, EntryInput, Outcome};
use hogguard_scan::{ScanOptions, Scanner};

use crate::config::{AuditConfig, Config};
use crate::printer::Printer;
use crate::settings::{Scope, Settings};

/// The user an entry is attributed to: `HOGGUARD_USER`, else the login name (`USER`,
/// `LOGNAME`), else the account of the process's uid (containers and CI often set no `USER`),
/// else git's `user.email`; `unknown` only when nothing is known.
pub(crate) fn current_user() -> String {
    ["HOGGUARD_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        .or_else(account_name)
        .or_else(git_user_email)
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The name `/etc/passwd` gives the process's user id.
fn account_name() -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        // `/proc/self` belongs to the process's user.
        let uid = std::fs::metadata("/proc/self").ok()?.uid();
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        account_in_passwd(&passwd, uid)
    }
    #[cfg(not(unix))]
    None
}

/// The account of `uid` in the text of a passwd file.
fn account_in_passwd(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id.parse() == Ok(uid) && !name.is_empty()).then(|| name.to_owned())
    })
}

/// `git config user.email`, when git has one.
fn git_user_email() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["config", "user.email"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let email = String::from_utf8(output.stdout).ok()?;
    let email = email.trim();
    (output.status.success() && !email.is_empty()).then(|| email.to_owned())
}

/// The scanner entries are redacted with before they are written or shipped: the built-in
/// rules and the project's `[[scan.rules]]`, so that a token of a custom rule is masked too.
pub(crate) fn redaction_scanner(config: &Config) -> Result<Arc<Scanner>> {
    Scanner::new(&config.scan.rules, ScanOptions::default())
        .map(Arc::new)
        .context("invalid [[scan.rules]] in the configuration")
}

/// The key that signs the log's checkpoint, from the variable `[audit] checkpoint_key` names.
pub(crate) fn checkpoint_key(
    settings: &Settings,
    audit: &AuditConfig,
) -> Result<Option<CheckpointKey>> {
    let Some(variable) = &audit.checkpoint_key else {
        return Ok(None);
    };
    let key = settings.require_variable(
        variable,
        Scope::AnyEnvironment,
        "[audit] checkpoint_key names it",
    )?;
    Ok(Some(CheckpointKey::new(key.expose().as_bytes())))
}

/// Options for opening the configured log.
pub(crate) fn options(settings: &Settings, audit: &AuditConfig) -> Result<AuditOptions> {
    let options = AuditOptions::default().scanner(redaction_scanner(&settings.config)?);
    Ok(match checkpoint_key(settings, audit)? {
        Some(key) => options.checkpoint_key(key),
        None => options,
    })
}

/// The configured audit log, open for appending, or nothing when none is configured.
pub(crate) struct Recorder<'p> {
    log: Option<AuditLog>,
    required: bool,
    printer: &'p Printer,
}

impl<'p> Recorder<'p> {
    /// Opens the log of `config`. With `changes_credentials`, a log that cannot be written is
    /// an error when `[audit] required = true` (fail closed); otherwise it costs a warning.
    pub(crate) fn open(
        settings: &Settings,
        changes_credentials: bool,
        printer: &'p Printer,
    ) -> Result<Recorder<'p>> {
        let Some(audit) = &settings.config.audit else {
            return Ok(Recorder {
                log: None,
                required: false,
                printer,
            });
        };
        let required = audit.required && changes_credentials;
        // A failure shows when the log is opened.
        let _ = hogguard_fs::create_private_dir_all(hogguard_fs::parent_dir(&audit.path));
        match AuditLog::open(&audit.path, &options(settings, audit)?) {
            Ok(log) => Ok(Recorder {
                log: Some(log),
                required,
                printer,
            }),
            Err(e) if required => Err(e).with_context(|| {
                format!(
                    "the audit log {} cannot be written, and [audit] required = true",
                    audit.path.display()
                )
            }),
            Err(e) => {
                printer.warning_from(&anyhow::Error::from(e).context(format!(
                    "audit log {}; this run is not logged",
                    audit.path.display()
                )));
                Ok(Recorder {
                    log: None,
                    required,
                    printer,
                })
            }
        }
    }

    /// Appends one entry; `metadata` must hold no secret (masks and fingerprints only).
    pub(crate) fn record(
        &self,
        action: &str,
        resource: &str,
        success: bool,
        metadata: &[(&str, serde_json::Value)],
    ) -> Result<()> {
        let Some(log) = &self.log else { return Ok(()) };
        let result = if success {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let mut input = EntryInput::new(action, current_user(), resource, result);
        for (key, value) in metadata {
            input = input.with_metadata(*key, value.clone());
        }
        match log.append(input) {
            Ok(_) => Ok(()),
            Err(e) if self.required => Err(anyhow::Error::from(e)
                .context(format!("the audit entry for {action} could not be written"))),
            Err(e) => {
                self.printer.warning_from(
                    &anyhow::Error::from(e)
                        .context(format!("the audit entry for {action} could not be written")),
                );
                Ok(())
            }
        }
    }

    /// Closes the log, writing its checkpoint.
    pub(crate) fn close(self) -> Result<()> {
        match self.log {
            Some(log) => log.close().context("the audit log could not be closed"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_found_by_uid_in_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nada:x:1000:1000::/home/ada:/bin/sh\n#bad\n";
        assert_eq!(account_in_passwd(passwd, 1000).as_deref(), Some("ada"));
        assert_eq!(account_in_passwd(passwd, 0).as_deref(), Some("root"));
        assert_eq!(account_in_passwd(passwd, 7), None);
    }
}
