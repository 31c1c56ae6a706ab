//! The audit log as the other commands see it.

use crate::commands::check::{Item, Outcome};
use crate::config::AuditConfig;

/// The `audit-log` checklist item: configured, present.
pub(crate) fn check_item(audit: &AuditConfig, id: &'static str) -> Item {
    if !audit.path.is_file() {
        // A log that is not there yet fails only where the project made it mandatory.
        let outcome = if audit.required {
            Outcome::Fail
        } else {
            Outcome::Warn
        };
        return Item::new(
            id,
            outcome,
            format!("the audit log {} does not exist yet", audit.path.display()),
            "run a command that logs (or `hogguard audit log ...`) to start it",
        );
    }
    Item::new(
        id,
        Outcome::Pass,
        format!("{} is present", audit.path.display()),
        "",
    )
}
