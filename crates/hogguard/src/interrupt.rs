//! Ctrl-C: stop at once while nothing is half-done, but let a step that talks to PostHog about
//! a credential finish and be audited first.
//!
//! A revocation that PostHog carried out and the audit log never heard of is the one outcome
//! an interrupt must not cause, so while a [`Deferral`] is alive the first Ctrl-C is only
//! noted: the command checks [`requested`] between steps, records what it did and exits 130.
//! A second Ctrl-C stops at once anyway.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How many [`Deferral`]s are alive, or [`EXITING`] once the handler has decided to exit.
static DEFERRALS: AtomicUsize = AtomicUsize::new(0);
/// The handler has decided to exit; nothing new may start.
const EXITING: usize = usize::MAX;
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler. Without it (or when it cannot be installed), Ctrl-C ends the
/// process the usual way.
pub(crate) fn install() {
    let _ = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            // The second Ctrl-C: the user does not want to wait.
            std::process::exit(crate::EXIT_INTERRUPTED);
        }
        if DEFERRALS
            .compare_exchange(0, EXITING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            std::process::exit(crate::EXIT_INTERRUPTED);
        }
        crate::printer::signal_note(
            "hogguard: interrupted; finishing the request in flight so that it is audited \
             (Ctrl-C again to stop at once)",
        );
    });
}

/// Whether Ctrl-C was pressed while a [`Deferral`] was alive.
pub(crate) fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// While alive, the first Ctrl-C is noted instead of ending the process.
#[must_use = "Ctrl-C is deferred only while the deferral lives"]
pub(crate) struct Deferral(());

impl Deferral {
    /// Defers Ctrl-C until dropped. If the handler is already exiting, waits for the exit:
    /// nothing may start then.
    pub(crate) fn start() -> Deferral {
        loop {
            let alive = DEFERRALS.load(Ordering::SeqCst);
            if alive == EXITING {
                std::thread::park();
            } else if DEFERRALS
                .compare_exchange(alive, alive + 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return Deferral(());
            }
        }
    }
}

impl Drop for Deferral {
    fn drop(&mut self) {
        // While any deferral lives the handler cannot set EXITING, so this only counts down.
        DEFERRALS.fetch_sub(1, Ordering::SeqCst);
    }
}
