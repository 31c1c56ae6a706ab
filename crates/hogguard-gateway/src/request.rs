//! What one request leaves behind for its log line and counters, and the body read deadline.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use hogguard_webhook::VerifyError;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep, sleep_until};

use crate::events::error_chain;
use crate::stats::RejectionReason;

/// Errors a request body can end with, as the verification layer takes them.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Notes taken while one request passes through the verification layer, which answers failures
/// itself and only reports them through its `on_failure` hook and the body stream.
#[derive(Debug, Default)]
pub(crate) struct RequestState {
    verification_failure: OnceLock<VerificationFailure>,
    body_timed_out: AtomicBool,
}

/// A verification failure, reduced to what the log and counters need.
#[derive(Debug)]
pub(crate) struct VerificationFailure {
    pub(crate) reason: RejectionReason,
    pub(crate) detail: String,
}

impl RequestState {
    /// Records why verification failed (the layer's `on_failure` hook).
    pub(crate) fn record_verification_failure(&self, err: &VerifyError) {
        // The layer reports at most one failure per request; should it report more, the first
        // one is the reason the request was refused.
        let _ = self.verification_failure.set(VerificationFailure {
            reason: RejectionReason::of(err),
            detail: error_chain(err),
        });
    }

    /// Returns the recorded verification failure, if verification failed.
    pub(crate) fn verification_failure(&self) -> Option<&VerificationFailure> {
        self.verification_failure.get()
    }

    /// Returns whether the body missed its read deadline.
    pub(crate) fn body_timed_out(&self) -> bool {
        self.body_timed_out.load(Ordering::Relaxed)
    }
}

/// A request body that fails with [`BodyTimedOut`] once `deadline` passes before it ended.
///
/// hyper's header read timeout stops clients that dribble the head; this stops those that send a
/// head and then dribble or withhold the body, which would otherwise hold a connection and a
/// buffer for as long as they like.
#[derive(Debug)]
pub(crate) struct DeadlineBody<B> {
    inner: B,
    deadline: Instant,
    /// Created on the first poll that finds no data ready, so a body that is already buffered
    /// (the usual webhook) never touches the timer.
    sleep: Option<Pin<Box<Sleep>>>,
    state: Arc<RequestState>,
}

impl<B> DeadlineBody<B> {
    /// Wraps `inner`, noting a missed `deadline` in `state`.
    pub(crate) fn new(inner: B, deadline: Instant, state: Arc<RequestState>) -> Self {
        Self {
            inner,
            deadline,
            sleep: None,
            state,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(sleep_until(deadline)));
        ready!(sleep.as_mut().poll(cx));
        this.state.body_timed_out.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // Passed through so that the layer can refuse an oversized Content-Length before reading.
        self.inner.size_hint()
    }
}

/// The error a [`DeadlineBody`] ends with when its deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within the body read timeout")]
pub(crate) struct BodyTimedOut;

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};

    use super::*;

    /// A body whose client sent a head promising content and then nothing.
    struct StalledBody;

    impl Body for StalledBody {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Pending
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(100)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_at_the_deadline_and_is_noted() {
        let state = Arc::new(RequestState::default());
        let deadline = Instant::now() + Duration::from_secs(10);
        let body = DeadlineBody::new(StalledBody, deadline, Arc::clone(&state));
        assert_eq!(body.size_hint().exact(), Some(100));
        let err = body.collect().await.unwrap_err();
        assert!(err.is::<BodyTimedOut>());
        assert!(state.body_timed_out());
        assert!(Instant::now() >= deadline);
    }

    #[tokio::test(start_paused = true)]
    async fn a_ready_body_passes_unchanged_even_after_the_deadline() {
        let state = Arc::new(RequestState::default());
        let body = DeadlineBody::new(
            Full::new(Bytes::from_static(b"\xff\x00body")),
            Instant::now(),
            Arc::clone(&state),
        );
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"\xff\x00body");
        assert!(!state.body_timed_out());
    }

    #[test]
    fn the_first_verification_failure_is_kept() {
        let state = RequestState::default();
        assert!(state.verification_failure().is_none());
        state.record_verification_failure(&VerifyError::Mismatch);
        state.record_verification_failure(&VerifyError::Replay);
        let failure = state.verification_failure().unwrap();
        assert_eq!(failure.reason, RejectionReason::SignatureMismatch);
        assert_eq!(failure.detail, "no signature matched an active secret");
    }
}
