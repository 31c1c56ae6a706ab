//! The body read deadline.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep, sleep_until};

/// Errors a request body can end with, as the verification layer takes them.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body that fails with [`BodyTimedOut`] once `deadline` passes before it ended.
///
/// The error reaches the verification layer, which answers `400` and marks its answer with the
/// error; the gateway tells a timeout from a broken stream by it.
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
}

impl<B> DeadlineBody<B> {
    /// Wraps `inner`, failing it once `deadline` passes.
    pub(crate) fn new(inner: B, deadline: Instant) -> Self {
        Self {
            inner,
            deadline,
            sleep: None,
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

/// A body whose sender promised `len` bytes and then sent nothing (for tests).
#[cfg(test)]
pub(crate) struct StalledBody {
    pub(crate) len: u64,
}

#[cfg(test)]
impl Body for StalledBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, std::convert::Infallible>>> {
        Poll::Pending
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_at_the_deadline() {
        let deadline = Instant::now() + Duration::from_secs(10);
        let body = DeadlineBody::new(StalledBody { len: 100 }, deadline);
        assert_eq!(body.size_hint().exact(), Some(100));
        let err = body.collect().await.unwrap_err();
        assert!(err.is::<BodyTimedOut>());
        assert!(Instant::now() >= deadline);
    }

    #[tokio::test(start_paused = true)]
    async fn a_ready_body_passes_unchanged_even_after_the_deadline() {
        let body = DeadlineBody::new(
            Full::new(Bytes::from_static(b"\xff\x00body")),
            Instant::now(),
        );
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"\xff\x00body");
    }
}
