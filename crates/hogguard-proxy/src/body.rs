//! A request body streamed to PostHog under the proxy's limits: at most the body limit, and
//! complete within the body read timeout. Crossing either ends the stream with an error, which
//! breaks off the upstream request; the handler then tells the client which limit it hit.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::BoxError;

/// Which limit a body crossed, if any.
#[derive(Debug, Default)]
pub(crate) struct BodyState(AtomicU8);

const WITHIN: u8 = 0;
const TOO_LARGE: u8 = 1;
const TOO_SLOW: u8 = 2;

/// A limit the body crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Crossed {
    TooLarge,
    TooSlow,
}

impl BodyState {
    pub(crate) fn crossed(&self) -> Option<Crossed> {
        match self.0.load(Ordering::Relaxed) {
            TOO_LARGE => Some(Crossed::TooLarge),
            TOO_SLOW => Some(Crossed::TooSlow),
            _ => None,
        }
    }

    fn set(&self, value: u8) {
        let _ = self
            .0
            .compare_exchange(WITHIN, value, Ordering::Relaxed, Ordering::Relaxed);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body crossed the proxy's limit")]
struct LimitCrossed;

/// The client's body, limited.
pub(crate) struct LimitedBody<B> {
    inner: B,
    remaining: usize,
    deadline: Pin<Box<Sleep>>,
    state: Arc<BodyState>,
}

impl<B> LimitedBody<B> {
    pub(crate) fn new(inner: B, limit: usize, deadline: Instant, state: Arc<BodyState>) -> Self {
        LimitedBody {
            inner,
            remaining: limit,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            state,
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if data.len() > this.remaining {
                        this.state.set(TOO_LARGE);
                        return Poll::Ready(Some(Err(LimitCrossed.into())));
                    }
                    this.remaining -= data.len();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    this.state.set(TOO_SLOW);
                    return Poll::Ready(Some(Err(LimitCrossed.into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt as _, Full};
    use std::collections::VecDeque;
    use std::convert::Infallible;

    /// A body sent in the given chunks.
    struct Chunks(VecDeque<&'static [u8]>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(
                self.0
                    .pop_front()
                    .map(|chunk| Ok(Frame::data(Bytes::from_static(chunk)))),
            )
        }
    }

    /// A body whose bytes never come.
    struct Never;

    impl Body for Never {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Pending
        }
    }

    fn in_five_seconds() -> Instant {
        Instant::now() + std::time::Duration::from_secs(5)
    }

    #[tokio::test]
    async fn passes_a_body_within_the_limit() {
        let state = Arc::new(BodyState::default());
        let body = Full::new(Bytes::from_static(b"0123456789"));
        let body = LimitedBody::new(body, 10, in_five_seconds(), Arc::clone(&state));
        assert_eq!(body.collect().await.unwrap().to_bytes(), &b"0123456789"[..]);
        assert_eq!(state.crossed(), None);
    }

    #[tokio::test]
    async fn stops_a_body_over_the_limit() {
        let state = Arc::new(BodyState::default());
        let body = Chunks(VecDeque::from([&b"01234"[..], b"56789", b"x"]));
        let body = LimitedBody::new(body, 10, in_five_seconds(), Arc::clone(&state));
        assert!(body.collect().await.is_err());
        assert_eq!(state.crossed(), Some(Crossed::TooLarge));
    }

    #[tokio::test(start_paused = true)]
    async fn stops_a_body_that_does_not_arrive_in_time() {
        let state = Arc::new(BodyState::default());
        let body = LimitedBody::new(Never, 10, in_five_seconds(), Arc::clone(&state));
        assert!(body.collect().await.is_err());
        assert_eq!(state.crossed(), Some(Crossed::TooSlow));
    }
}
