//! A cap on log lines that any client can cause, so that a flood of bad requests cannot fill the
//! disk or make every rejection wait on a write to standard error.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Length of the period the cap applies to.
pub(crate) const PERIOD: Duration = Duration::from_secs(1);

/// Lets through at most `per_period` lines per [`PERIOD`] and counts the rest.
///
/// A period starts with the first line after the previous one ended, so a quiet gateway keeps no
/// timer. The count of lines held back in a period is handed out with the first line of the next
/// one (or by [`LogLimit::take_held_back`] at shutdown), to be reported as one line.
#[derive(Debug)]
pub(crate) struct LogLimit {
    per_period: u32,
    period: Mutex<Period>,
}

#[derive(Debug, Default)]
struct Period {
    start: Option<Instant>,
    logged: u32,
    held_back: u64,
}

/// What [`LogLimit::admit`] decided for one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Admission {
    /// Whether the line may be logged.
    pub(crate) log: bool,
    /// Lines held back in the period that just ended; report them before this line.
    pub(crate) held_back_before: u64,
}

impl LogLimit {
    /// Makes a limit of `per_period` lines per [`PERIOD`].
    pub(crate) fn new(per_period: u32) -> Self {
        Self {
            per_period,
            period: Mutex::new(Period::default()),
        }
    }

    /// Returns the limit: most lines per [`PERIOD`].
    pub(crate) fn per_period(&self) -> u32 {
        self.per_period
    }

    /// Decides whether a line that comes up at `now` may be logged.
    pub(crate) fn admit(&self, now: Instant) -> Admission {
        let mut period = self.period();
        let mut held_back_before = 0;
        if period
            .start
            .is_none_or(|start| now.saturating_duration_since(start) >= PERIOD)
        {
            held_back_before = period.held_back;
            *period = Period {
                start: Some(now),
                ..Period::default()
            };
        }
        let log = period.logged < self.per_period;
        if log {
            period.logged += 1;
        } else {
            period.held_back += 1;
        }
        Admission {
            log,
            held_back_before,
        }
    }

    /// Returns the count of lines held back in the current period and forgets it, for a last
    /// report when the gateway stops.
    pub(crate) fn take_held_back(&self) -> u64 {
        std::mem::take(&mut self.period().held_back)
    }

    fn period(&self) -> MutexGuard<'_, Period> {
        // Every update leaves the counts consistent, so a panic elsewhere changes nothing.
        self.period.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(admission: Admission) -> bool {
        assert_eq!(admission.held_back_before, 0);
        admission.log
    }

    #[test]
    fn lines_beyond_the_limit_are_held_back_and_reported_with_the_next_period() {
        let limit = LogLimit::new(2);
        let start = Instant::now();
        assert!(logged(limit.admit(start)));
        assert!(logged(limit.admit(start + Duration::from_millis(10))));
        assert!(!logged(limit.admit(start + Duration::from_millis(20))));
        assert!(!logged(limit.admit(start + Duration::from_millis(999))));

        // The first line of the next period carries the count of the previous one.
        let next = start + PERIOD;
        assert_eq!(
            limit.admit(next),
            Admission {
                log: true,
                held_back_before: 2
            }
        );
        assert!(logged(limit.admit(next + Duration::from_millis(1))));
        assert!(!logged(limit.admit(next + Duration::from_millis(2))));
        assert_eq!(limit.take_held_back(), 1);
        assert_eq!(limit.take_held_back(), 0);

        // A quiet spell of many periods starts afresh, with nothing to report.
        assert!(logged(limit.admit(next + 10 * PERIOD)));
    }

    #[test]
    fn a_limit_of_zero_holds_back_every_line() {
        let limit = LogLimit::new(0);
        let start = Instant::now();
        for offset in 0..5 {
            assert!(!logged(limit.admit(start + Duration::from_millis(offset))));
        }
        assert_eq!(limit.admit(start + PERIOD).held_back_before, 5);
    }

    /// Two requests read the clock in one order and take the lock in the other.
    #[test]
    fn a_line_timed_before_the_period_started_counts_in_it() {
        let limit = LogLimit::new(1);
        let start = Instant::now() + PERIOD;
        assert!(logged(limit.admit(start)));
        assert!(!logged(limit.admit(start - Duration::from_millis(500))));
        assert_eq!(limit.take_held_back(), 1);
    }
}
