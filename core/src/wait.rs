//! Waiting on the engine without an async runtime: the engine's futures and streams are woken
//! by its worker threads, so parking the calling thread until woken is enough. Bindings use
//! these to wait from blocking code, with a deadline so they can look for signals in between.

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// Unparks the thread that is waiting.
struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `poll` on this thread until it is ready or `timeout` has passed (`None`: no limit).
pub fn poll_for<T>(
    mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>,
    timeout: Option<Duration>,
) -> Poll<T> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = poll(&mut cx) {
            return Poll::Ready(v);
        }
        match deadline {
            None => std::thread::park(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return Poll::Pending;
                }
                std::thread::park_timeout(deadline - now);
            }
        }
    }
}

/// Runs a future to completion on this thread (not for use inside an async runtime).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match poll_for(|cx| future.as_mut().poll(cx), None) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("waiting without a deadline ends only when ready"),
    }
}
