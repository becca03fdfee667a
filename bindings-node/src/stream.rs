//! `ChatStream`: a chat completion in progress. `index.js` turns `next()` into an async
//! iterator; `close()` (a `break`, an `AbortSignal`) drops the core stream, which cancels
//! the generation within one decode step.

use std::sync::Arc;

use modelservice::{ChatCompletionStream, Error};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use tokio::sync::{watch, Mutex};

use crate::error::{guard, json};

/// The chunks of one chat completion.
#[napi]
pub struct ChatStream {
    stream: Arc<Mutex<Option<ChatCompletionStream>>>,
    closed: watch::Sender<bool>,
}

impl ChatStream {
    pub(crate) fn new(stream: ChatCompletionStream) -> Self {
        ChatStream {
            stream: Arc::new(Mutex::new(Some(stream))),
            closed: watch::Sender::new(false),
        }
    }
}

#[napi]
impl ChatStream {
    /// The next `chat.completion.chunk` as JSON; `null` after the last one. Rejects with a
    /// `cancelled` error once the stream has been closed.
    #[napi]
    pub async fn next(&self) -> Result<Option<String>> {
        let (stream, mut closed) = (self.stream.clone(), self.closed.subscribe());
        guard(async move {
            let mut slot = stream.lock().await;
            if *closed.borrow() {
                *slot = None;
                return Err(Error::Cancelled);
            }
            let Some(inner) = slot.as_mut() else {
                return Ok(None);
            };
            let item = tokio::select! {
                _ = closed.wait_for(|c| *c) => Some(Err(Error::Cancelled)),
                item = inner.next_chunk() => item,
            };
            match item {
                Some(Ok(chunk)) => json(&chunk).map(Some),
                Some(Err(e)) => {
                    *slot = None;
                    Err(e)
                }
                None => {
                    *slot = None;
                    Ok(None)
                }
            }
        })
        .await
    }

    /// Gathers the rest of the stream into one `chat.completion` (JSON).
    #[napi]
    pub async fn collect(&self) -> Result<String> {
        let (stream, mut closed) = (self.stream.clone(), self.closed.subscribe());
        guard(async move {
            let taken = stream.lock().await.take();
            let Some(inner) = taken.filter(|_| !*closed.borrow()) else {
                return Err(Error::Cancelled);
            };
            tokio::select! {
                _ = closed.wait_for(|c| *c) => Err(Error::Cancelled),
                completion = inner.collect() => json(&completion?),
            }
        })
        .await
    }

    /// Stops the generation and releases its slot. Idempotent.
    #[napi(catch_unwind)]
    pub fn close(&self) {
        self.closed.send_replace(true);
        // When no `next()` holds the stream, drop it now; otherwise that call drops it.
        if let Ok(mut slot) = self.stream.try_lock() {
            *slot = None;
        }
    }
}
