//! `Registry`: the native handle on an `Arc`-shared `modelservice::Registry`, with the core's
//! one entry: every operation by name (`chat.completions.create`, `services.deploy` ...), JSON
//! in and JSON out. `index.js` maps the `OpenAI` client's methods onto it; a new operation
//! needs no change here.

use std::sync::Arc;

use modelservice::{Error, Operation};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::abort::Aborted;
use crate::error::{blocking, guard};
use crate::stream::ResponseStream;

/// A set of model services. Share one between clients: `new OpenAI({ registry })`.
#[napi]
pub struct Registry {
    inner: Arc<modelservice::Registry>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        // The last handle stops the services' worker threads; do that off the JS thread,
        // which runs this from the garbage collector.
        let inner = self.inner.clone();
        let _ = std::thread::Builder::new()
            .name("modelservice-drop".into())
            .spawn(move || drop(inner));
    }
}

#[napi]
impl Registry {
    /// An empty registry.
    #[napi(constructor, catch_unwind)]
    pub fn new() -> Self {
        Registry {
            inner: Arc::new(modelservice::Registry::new()),
        }
    }

    /// Serves operation `op` (see `Registry.operations()`) with the JSON `body`; resolves to
    /// the whole answer as JSON (a streamable operation is gathered whatever its `stream`
    /// flag). When `signal` aborts, the call stops (a generation within one decode step) and
    /// rejects with a `cancelled` error.
    #[napi(
        catch_unwind,
        ts_args_type = "op: string, body: string, signal?: AbortSignal | null"
    )]
    pub fn call<'env>(
        &self,
        env: &'env Env,
        op: String,
        body: String,
        signal: Option<Object<'env>>,
    ) -> Result<PromiseRaw<'env, String>> {
        let aborted = Aborted::follow(env, signal)?;
        let answer = self.inner.call_owned(op, body);
        env.spawn_future(guard(async move {
            tokio::select! {
                // An already aborted signal never starts the operation.
                biased;
                _ = aborted.wait() => Err(Error::Cancelled),
                answer = answer => answer,
            }
        }))
    }

    /// Starts streamable operation `op` with the JSON `body` (parsed, validated and queued
    /// before this resolves, so request errors reject here); resolves to its chunks.
    #[napi]
    pub async fn stream(&self, op: String, body: String) -> Result<ResponseStream> {
        let inner = self.inner.clone();
        // Rendering and tokenizing the prompt is blocking work: off the async workers.
        let stream = blocking(move || inner.stream(&op, &body)).await?;
        Ok(ResponseStream::new(stream))
    }

    /// The names of every operation the engine serves (`chat.completions.create` ...).
    #[napi(catch_unwind)]
    pub fn operations() -> Vec<String> {
        Operation::names().into_iter().map(String::from).collect()
    }

    /// How many times this process has loaded a model file (scaling never adds to it).
    #[napi(catch_unwind)]
    pub fn model_loads() -> i64 {
        modelservice::Registry::model_loads() as i64
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}
