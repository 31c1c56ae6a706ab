//! Crash simulation for tests: the points where a rotation can be stopped as a crash there
//! would stop it. Public only with the `fault-injection` feature, which the crate's own tests
//! turn on; without it, passing a point costs nothing.

use std::fmt;

use crate::step::Step;

/// A place in a rotation where a crash can be simulated (see
/// [`Rotator::interrupt_when`](crate::Rotator::interrupt_when)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[cfg_attr(
    not(feature = "fault-injection"),
    expect(unreachable_pub, reason = "public with the fault-injection feature")
)]
pub enum CrashPoint {
    /// The journal exists with its first record; nothing else happened.
    Started,
    /// The step's intent is journaled and audited; the step has not acted.
    BeforeAction(Step),
    /// The step acted; its result is not journaled yet.
    AfterAction(Step),
    /// The step's result is journaled and audited.
    AfterRecord(Step),
    /// An env-file write is half done: the new contents are written and fsynced to a
    /// temporary file, and the rename over the env file has not happened.
    EnvFileWritten,
}

impl fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrashPoint::Started => f.write_str("the start of the rotation"),
            CrashPoint::BeforeAction(step) => write!(f, "the intent of {step}"),
            CrashPoint::AfterAction(step) => write!(f, "the action of {step}"),
            CrashPoint::AfterRecord(step) => write!(f, "the record of {step}"),
            CrashPoint::EnvFileWritten => f.write_str("the env file's temporary file"),
        }
    }
}

/// Decides, at each [`CrashPoint`], whether to stop there as a crash would.
#[cfg(feature = "fault-injection")]
pub(crate) type InterruptHook = dyn Fn(CrashPoint) -> bool + Send + Sync;
