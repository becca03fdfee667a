//! An in-process client shaped like the OpenAI SDKs:
//! `client.chat().completions().create(request).await`.

use std::sync::Arc;

use crate::api::{
    ChatCompletion, ChatCompletionRequest, Completion, CompletionRequest, EmbeddingRequest,
    EmbeddingResponse, Model, ModelList, ServiceInfo, ServiceList, ServiceMetricsList, ServiceSpec,
};
use crate::completion_stream::CompletionStream;
use crate::error::Result;
use crate::ops::off_thread;
use crate::registry::Registry;
use crate::stream::ChatCompletionStream;

/// The entry point: a handle on a [`Registry`] of services. Cloning shares the registry.
#[derive(Clone, Debug, Default)]
pub struct Client {
    registry: Arc<Registry>,
}

impl Client {
    /// A client with a new, empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client over an existing registry, shared with other clients.
    pub fn with_registry(registry: Arc<Registry>) -> Self {
        Client { registry }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// `client.chat().completions()`.
    pub fn chat(&self) -> Chat<'_> {
        Chat { client: self }
    }

    /// `client.completions()`: legacy text completions (the prompt as given, no chat template).
    pub fn completions(&self) -> TextCompletions<'_> {
        TextCompletions { client: self }
    }

    /// `client.embeddings()`.
    pub fn embeddings(&self) -> Embeddings<'_> {
        Embeddings { client: self }
    }

    /// `client.models()`.
    pub fn models(&self) -> Models<'_> {
        Models { client: self }
    }

    /// `client.services()`: deploy, list, retrieve, scale, delete.
    pub fn services(&self) -> Services<'_> {
        Services { client: self }
    }
}

pub struct Chat<'a> {
    client: &'a Client,
}

impl<'a> Chat<'a> {
    pub fn completions(&self) -> Completions<'a> {
        Completions {
            client: self.client,
        }
    }
}

pub struct Completions<'a> {
    client: &'a Client,
}

impl Completions<'_> {
    /// A whole chat completion.
    pub async fn create(&self, request: ChatCompletionRequest) -> Result<ChatCompletion> {
        self.client.registry.chat_stream(request)?.collect().await
    }

    /// A streamed chat completion. Dropping the stream stops the generation.
    pub async fn create_stream(
        &self,
        request: ChatCompletionRequest,
    ) -> Result<ChatCompletionStream> {
        self.client.registry.chat_stream(request)
    }
}

pub struct TextCompletions<'a> {
    client: &'a Client,
}

impl TextCompletions<'_> {
    /// A whole text completion: choices prompt-major, then by `n`.
    pub async fn create(&self, request: CompletionRequest) -> Result<Completion> {
        self.client
            .registry
            .completion_stream(request)?
            .collect()
            .await
    }

    /// A streamed text completion. Dropping the stream stops the generation.
    pub async fn create_stream(&self, request: CompletionRequest) -> Result<CompletionStream> {
        self.client.registry.completion_stream(request)
    }
}

pub struct Embeddings<'a> {
    client: &'a Client,
}

impl Embeddings<'_> {
    /// Embeddings of the request's inputs. Dropping the future abandons the inputs not yet
    /// encoded.
    pub async fn create(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        self.client
            .registry
            .embeddings_pending(&request)?
            .response()
            .await
    }
}

pub struct Models<'a> {
    client: &'a Client,
}

impl Models<'_> {
    pub async fn list(&self) -> Result<ModelList> {
        Ok(self.client.registry.models())
    }

    pub async fn retrieve(&self, model: &str) -> Result<Model> {
        self.client.registry.model(model)
    }
}

pub struct Services<'a> {
    client: &'a Client,
}

impl Services<'_> {
    /// Loads the model on a separate thread, so the caller's executor is not blocked.
    pub async fn deploy(&self, spec: ServiceSpec) -> Result<ServiceInfo> {
        let registry = self.client.registry.clone();
        off_thread(move || registry.deploy(spec)).await
    }

    pub async fn list(&self) -> Result<ServiceList> {
        Ok(self.client.registry.list())
    }

    pub async fn retrieve(&self, access_name: &str) -> Result<ServiceInfo> {
        self.client.registry.retrieve(access_name)
    }

    pub async fn scale(&self, access_name: &str, instances: usize) -> Result<ServiceInfo> {
        let registry = self.client.registry.clone();
        let name = access_name.to_owned();
        off_thread(move || registry.scale(&name, instances)).await
    }

    /// Deletes the service; `confirm` must equal its display name. Waits for in-flight
    /// requests to finish.
    pub async fn delete(&self, access_name: &str, confirm: &str) -> Result<ServiceInfo> {
        let registry = self.client.registry.clone();
        let (name, confirm) = (access_name.to_owned(), confirm.to_owned());
        off_thread(move || registry.delete(&name, &confirm)).await
    }

    /// Every service's request metrics, or one service's (`services.metrics`).
    pub async fn metrics(&self, access_name: Option<&str>) -> Result<ServiceMetricsList> {
        self.client.registry.metrics_list(access_name)
    }
}
