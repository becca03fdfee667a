//! `ResponseStream`: a streamed operation in progress. `index.js` turns `next()` into an async
//! iterator; `close()` (a `break`, an `AbortSignal`) drops the core stream, which cancels
//! the generation within one decode step.

use std::sync::Arc;

use modelservice::Error;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use tokio::sync::{watch, Mutex};

use crate::error::guard;

/// The chunks of one streamed answer, each as JSON (`chat.completion.chunk` ...).
#[napi]
pub struct ResponseStream {
    id: String,
    stream: Arc<Mutex<Option<modelservice::ResponseStream>>>,
    closed: watch::Sender<bool>,
}

impl ResponseStream {
    pub(crate) fn new(stream: modelservice::ResponseStream) -> Self {
        ResponseStream {
            id: stream.id().to_string(),
            stream: Arc::new(Mutex::new(Some(stream))),
            closed: watch::Sender::new(false),
        }
    }
}

#[napi]
impl ResponseStream {
    /// The response's ID, shared by all its chunks.
    #[napi(getter, catch_unwind)]
    pub fn id(&self) -> String {
        self.id.clone()
    }

    /// The next chunk as JSON; `null` after the last one. Rejects with a `cancelled` error
    /// once the stream has been closed.
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
                item = inner.next_json() => item,
            };
            if !matches!(item, Some(Ok(_))) {
                // The end, an error or a close: release the generation's slot now.
                *slot = None;
            }
            item.transpose()
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
