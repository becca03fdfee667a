//! `Registry`: the native handle on an `Arc`-shared `modelservice::Registry`. Values cross as
//! JSON strings of the core's serde types; `index.js` wraps this class into the `OpenAI` client.

use std::sync::Arc;

use modelservice::{ChatCompletionRequest, ServiceSpec};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::{blocking, json, sync};
use crate::stream::ChatStream;

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

    /// Loads the model and starts the service described by `spec` (ServiceSpec JSON);
    /// resolves to the ServiceInfo JSON.
    #[napi]
    pub async fn deploy(&self, spec: String) -> Result<String> {
        let inner = self.inner.clone();
        blocking(move || {
            let info = inner.deploy(ServiceSpec::from_json(&spec)?)?;
            json(&info)
        })
        .await
    }

    /// Every service's ServiceInfo, as a JSON array.
    #[napi]
    pub fn list(&self) -> Result<String> {
        sync(|| json(&self.inner.list().data))
    }

    /// One service's ServiceInfo JSON.
    #[napi]
    pub fn retrieve(&self, access_name: String) -> Result<String> {
        sync(|| json(&self.inner.retrieve(&access_name)?))
    }

    /// Scales a service to `instances` instances; resolves to its ServiceInfo JSON.
    #[napi]
    pub async fn scale(&self, access_name: String, instances: u32) -> Result<String> {
        let inner = self.inner.clone();
        blocking(move || json(&inner.scale(&access_name, instances as usize)?)).await
    }

    /// Deletes a service once its requests have finished; `confirm` must equal its display name.
    #[napi]
    pub async fn delete(&self, access_name: String, confirm: String) -> Result<String> {
        let inner = self.inner.clone();
        blocking(move || json(&inner.delete(&access_name, &confirm)?)).await
    }

    /// The running services as an OpenAI model list (JSON).
    #[napi]
    pub fn models(&self) -> Result<String> {
        sync(|| json(&self.inner.models()))
    }

    /// One OpenAI model entry (JSON).
    #[napi]
    pub fn model(&self, id: String) -> Result<String> {
        sync(|| json(&self.inner.model(&id)?))
    }

    /// Starts a chat completion from a request body (JSON): parsed and validated by the core,
    /// rendered, tokenized and queued. Resolves to the stream of its chunks.
    #[napi]
    pub async fn chat(&self, body: String) -> Result<ChatStream> {
        let inner = self.inner.clone();
        let stream = blocking(move || {
            let request = ChatCompletionRequest::from_json(&body)?;
            inner.chat_stream(request)
        })
        .await?;
        Ok(ChatStream::new(stream))
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
