//! The registry: services by access name. Deploy, list, retrieve, scale, delete, and routing of
//! requests by their `model`. Every surface enters through `Registry::call`/`stream` (`ops.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::api::{
    unix_now, ChatCompletion, ChatCompletionRequest, Completion, CompletionRequest,
    EmbeddingRequest, EmbeddingResponse, Model, ModelList, ServiceInfo, ServiceList,
    ServiceMetricsList, ServiceSpec,
};
use crate::completion_stream::CompletionStream;
use crate::error::{Error, Result};
use crate::metrics::ServiceMetrics;
use crate::service::Service;
use crate::stream::ChatCompletionStream;

/// All services of a process (or of one client). Cheap to share: wrap it in an `Arc`.
#[derive(Default)]
pub struct Registry {
    services: RwLock<BTreeMap<String, Arc<Service>>>,
    /// Services whose deploy is loading the model, as `get` and `list` report them.
    loading: Mutex<BTreeMap<String, ServiceInfo>>,
    /// Services being deleted: listed (status `deleting`) until their requests have drained,
    /// while new requests already get `model_not_found`.
    deleting: Mutex<BTreeMap<String, Arc<Service>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("services", &self.services.read().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads the model and starts the service; returns its info once it is running. On error
    /// the registry is unchanged.
    pub fn deploy(&self, spec: ServiceSpec) -> Result<ServiceInfo> {
        spec.validate()?;
        let base = crate::gguf::inspect(&spec.model)?;
        let name = spec.access_name.clone();
        let id = crate::ids::service_id();
        {
            let services = self.services.read();
            let mut loading = self.loading.lock();
            if services.contains_key(&name) || loading.contains_key(&name) {
                return Err(Error::ServiceExists { access_name: name });
            }
            loading.insert(
                name.clone(),
                Service::loading_info(id.clone(), &spec, base.clone()),
            );
        }
        let started = Service::start(id, spec, base);
        let mut services = self.services.write();
        self.loading.lock().remove(&name);
        let service = started?;
        let info = service.info();
        services.insert(name, service);
        tracing::info!(access_name = %info.access_name, id = %info.id, "service deployed");
        Ok(info)
    }

    /// Every service, by access name, including those still loading.
    pub fn list(&self) -> ServiceList {
        let mut all: BTreeMap<String, ServiceInfo> = self
            .deleting
            .lock()
            .iter()
            .map(|(name, s)| (name.clone(), s.info()))
            .collect();
        all.extend(
            self.services
                .read()
                .iter()
                .map(|(name, s)| (name.clone(), s.info())),
        );
        all.extend(self.loading.lock().clone());
        ServiceList::new(all.into_values().collect())
    }

    /// One service's info (status `loading` while its deploy loads the model).
    pub fn retrieve(&self, access_name: &str) -> Result<ServiceInfo> {
        if let Some(info) = self.loading.lock().get(access_name) {
            return Ok(info.clone());
        }
        match self.service(access_name) {
            Err(Error::ModelNotFound { .. }) => match self.deleting.lock().get(access_name) {
                Some(draining) => Ok(draining.info()),
                None => Err(not_found(access_name)),
            },
            found => Ok(found?.info()),
        }
    }

    /// Scales a service to `instances` instances.
    pub fn scale(&self, access_name: &str, instances: usize) -> Result<ServiceInfo> {
        let service = self.service(access_name)?;
        service.scale(instances)?;
        Ok(service.info())
    }

    /// Deletes a service. `confirm` must equal its display name. New requests get
    /// `model_not_found` at once; queued and running ones finish before this returns.
    pub fn delete(&self, access_name: &str, confirm: &str) -> Result<ServiceInfo> {
        let service = {
            let mut services = self.services.write();
            let service = services
                .get(access_name)
                .ok_or_else(|| not_found(access_name))?;
            if service.spec().name != confirm {
                return Err(Error::invalid(
                    "confirm",
                    format!(
                        "To delete `{access_name}`, confirm with the service's name `{}`; got `{confirm}`.",
                        service.spec().name
                    ),
                ));
            }
            let service = services.remove(access_name).expect("present");
            self.deleting
                .lock()
                .insert(access_name.to_owned(), service.clone());
            service
        };
        service.drain_and_stop();
        self.deleting.lock().remove(access_name);
        tracing::info!(access_name, "service deleted");
        Ok(service.info())
    }

    /// The running services as OpenAI models.
    pub fn models(&self) -> ModelList {
        ModelList {
            object: "list".into(),
            data: self
                .services
                .read()
                .values()
                .map(|s| model_entry(s))
                .collect(),
        }
    }

    /// One model entry.
    pub fn model(&self, access_name: &str) -> Result<Model> {
        Ok(model_entry(&*self.service(access_name)?))
    }

    /// Starts a chat completion and returns its stream of chunks. Validation, template
    /// rendering and tokenization happen here, so errors come before any chunk.
    pub fn chat_stream(&self, request: ChatCompletionRequest) -> Result<ChatCompletionStream> {
        request.validate()?;
        let service = self.service(&request.model)?;
        let start = std::time::Instant::now();
        let metrics = service.request_metrics();
        let prepared = service.prepare(&request).map_err(|e| metrics.refused(e))?;
        service
            .check_sequences(request.n.unwrap_or(1) as usize, "n")
            .map_err(|e| metrics.refused(e))?;
        let receivers = service
            .submit(&request, &prepared)
            .map_err(|e| metrics.refused(e))?;
        let timer = metrics.accepted(start);
        Ok(ChatCompletionStream::new(
            crate::ids::completion_id(),
            unix_now(),
            request.model.clone(),
            prepared.prompt.len() as u32,
            request
                .stream_options
                .as_ref()
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
            request.logprobs_wanted().is_some(),
            receivers,
        )
        .with_tools(prepared.tool_reading.as_ref())
        .timed(timer))
    }

    /// Starts a legacy text completion and returns its stream of chunks. Every prompt is
    /// tokenized and checked before any is queued; choices are prompt-major, then by `n`.
    pub fn completion_stream(&self, request: CompletionRequest) -> Result<CompletionStream> {
        request.validate()?;
        let service = self.service(&request.model)?;
        let start = std::time::Instant::now();
        let metrics = service.request_metrics();
        let prompts = service
            .prepare_completion(&request)
            .map_err(|e| metrics.refused(e))?;
        let view = request.sampling_view();
        let n = request.n.unwrap_or(1) as usize;
        // Blamed on `n` when it alone cannot fit, else on the list of prompts it multiplies.
        let param = if n > service.sequence_capacity() {
            "n"
        } else {
            "prompt"
        };
        service
            .check_sequences(prompts.len() * n, param)
            .map_err(|e| metrics.refused(e))?;
        let mut receivers = Vec::with_capacity(prompts.len() * n);
        let mut echoes = Vec::with_capacity(prompts.len() * n);
        let mut prompt_tokens = 0;
        for prompt in &prompts {
            receivers.extend(
                service
                    .submit(&view, &prompt.prepared)
                    .map_err(|e| metrics.refused(e))?,
            );
            echoes.extend(std::iter::repeat_n(prompt.echo.clone(), n));
            prompt_tokens += prompt.prepared.prompt.len() as u32;
        }
        let chunks = ChatCompletionStream::new(
            crate::ids::text_completion_id(),
            unix_now(),
            request.model.clone(),
            prompt_tokens,
            view.stream_options
                .as_ref()
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
            view.logprobs_wanted().is_some(),
            receivers,
        )
        .with_choices_per_prompt(n)
        .timed(metrics.accepted(start));
        Ok(CompletionStream::new(
            chunks,
            echoes,
            request.logprobs.is_some(),
        ))
    }

    /// A whole text completion, blocking the calling thread.
    pub fn completion_blocking(&self, request: CompletionRequest) -> Result<Completion> {
        self.completion_stream(request)?.collect_blocking()
    }

    /// A whole chat completion, blocking the calling thread.
    pub fn chat_blocking(&self, request: ChatCompletionRequest) -> Result<ChatCompletion> {
        self.chat_stream(request)?.collect_blocking()
    }

    /// The number of prompt tokens a request renders to (as `usage.prompt_tokens` counts them).
    pub fn count_prompt_tokens(&self, request: &ChatCompletionRequest) -> Result<u32> {
        request.validate()?;
        let service = self.service(&request.model)?;
        Ok(service.prepare(request)?.prompt.len() as u32)
    }

    /// Token ids of `text` under a service's tokenizer (special tokens parsed, BOS added).
    pub fn tokenize(&self, access_name: &str, text: &str) -> Result<Vec<i32>> {
        Ok(self
            .service(access_name)?
            .tokenize(text)
            .into_iter()
            .map(|t| t.0)
            .collect())
    }

    /// Every running or draining service's metrics (requests by status, tokens, queue, time to
    /// first token and latency), by access name: the figures every surface reports.
    pub fn metrics(&self) -> Vec<ServiceMetrics> {
        let mut all: BTreeMap<String, ServiceMetrics> = self
            .deleting
            .lock()
            .iter()
            .map(|(name, s)| (name.clone(), s.metrics()))
            .collect();
        all.extend(
            self.services
                .read()
                .iter()
                .map(|(name, s)| (name.clone(), s.metrics())),
        );
        all.into_values().collect()
    }

    /// `services.metrics`: every service's metrics, or only `access_name`'s (`model_not_found`
    /// if no service has that name, 503 while it loads).
    pub fn metrics_list(&self, access_name: Option<&str>) -> Result<ServiceMetricsList> {
        let mut all = self.metrics();
        if let Some(name) = access_name {
            all.retain(|m| m.access_name == name);
            if all.is_empty() {
                return Err(self.service(name).err().unwrap_or_else(|| not_found(name)));
            }
        }
        Ok(ServiceMetricsList::new(all))
    }

    /// How many times this process has loaded a model file (scaling never adds to it).
    pub fn model_loads() -> u64 {
        crate::gguf::model_loads()
    }

    fn service(&self, access_name: &str) -> Result<Arc<Service>> {
        if let Some(s) = self.services.read().get(access_name) {
            return Ok(s.clone());
        }
        if self.loading.lock().contains_key(access_name) {
            return Err(Error::ServiceUnavailable {
                model: access_name.into(),
                status: "loading".into(),
            });
        }
        Err(not_found(access_name))
    }

    /// Embeddings of a request's inputs, blocking the calling thread. The service must serve
    /// an embedding model; inputs of concurrent requests are encoded together.
    pub fn embeddings(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        self.embeddings_pending(&request)?.wait_blocking()
    }

    /// Validates and queues an embeddings request; errors come before any work.
    pub(crate) fn embeddings_pending(
        &self,
        request: &EmbeddingRequest,
    ) -> Result<crate::service::PendingEmbeddings> {
        request.validate()?;
        self.service(&request.model)?.embed(request)
    }
}

fn not_found(access_name: &str) -> Error {
    Error::ModelNotFound {
        model: access_name.into(),
    }
}

fn model_entry(service: &Service) -> Model {
    Model {
        id: service.spec().access_name.clone(),
        object: "model".into(),
        created: service.created(),
        owned_by: "modelservice".into(),
    }
}
