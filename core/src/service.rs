//! A service: its spec, its loaded model (shared by all its instances), its chat template,
//! its engine (chat pool or embedding pool, by the model's kind), its status and its usage
//! counters. Embedding requests are in `service/embeddings.rs`.

mod completions;
mod embeddings;

pub(crate) use embeddings::PendingEmbeddings;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use parking_lot::Mutex;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::api::{
    defaults, unix_now, BaseModel, ChatCompletionRequest, ServiceInfo, ServiceKind, ServiceSpec,
    ServiceStatus, ServiceUsage,
};
use crate::cpu_backend;
use crate::embed_pool::EmbedPool;
use crate::error::{Error, Result};
use crate::format_guidance::with_format_guidance;
use crate::gguf::{kv_geometry, load_model, service_kind, KvGeometry};
use crate::grammar::GrammarCache;
use crate::guards::{self, BATCH_SIZE};
use crate::instance::{self, Counters, Event, InstanceConfig, InstanceShared, Job};
use crate::limits::{check_gpu_layers, check_kv_memory, KvRequest, MAX_INSTANCES};
use crate::metrics::{RequestMetrics, ServiceMetrics};
use crate::pool::Pool;
use crate::sampling::SamplingParams;
use crate::template::ChatTemplate;
use crate::tool_calling::{marker_token, template_input, tool_grammar, ToolGrammar, ToolReading};

pub(crate) struct Service {
    id: String,
    spec: ServiceSpec,
    base: BaseModel,
    model: Arc<LlamaModel>,
    template: ChatTemplate,
    grammars: GrammarCache,
    engine: Engine,
    counters: Arc<Counters>,
    /// Requests by outcome, time to first token, latency.
    requests: Arc<RequestMetrics>,
    context_lock: Arc<Mutex<()>>,
    /// Why an instance stopped unexpectedly, if one did.
    failure: Arc<Mutex<Option<String>>>,
    /// Context length of each slot.
    slot_context: u32,
    /// What one token of KV cache costs, to size scale-ups against the machine.
    /// What a token of KV cache costs (chat services; encoders keep no KV cache).
    kv: Option<KvGeometry>,
    /// The longest text of one token, in bytes.
    max_token_bytes: usize,
    created: u64,
    status: Mutex<(ServiceStatus, Option<String>)>,
    /// Serialises scale and delete.
    lifecycle: Mutex<LifeCycle>,
}

/// What runs a service's requests, by the kind of its model.
enum Engine {
    /// Generative instances, each with sequence slots and a KV cache.
    Chat(Arc<Pool>),
    /// Embedding instances sharing one queue of inputs; no KV cache.
    Embedding(Arc<EmbedPool>),
}

impl Engine {
    fn kind(&self) -> ServiceKind {
        match self {
            Engine::Chat(_) => ServiceKind::Chat,
            Engine::Embedding(_) => ServiceKind::Embedding,
        }
    }

    fn instance_count(&self) -> usize {
        match self {
            Engine::Chat(pool) => pool.instance_count(),
            Engine::Embedding(pool) => pool.instance_count(),
        }
    }
}

struct LifeCycle {
    next_instance_id: usize,
}

/// The field a too-large KV cache is blamed on: the one the spec set away from its default.
fn kv_param(spec: &ServiceSpec) -> &'static str {
    if spec.context_length.is_some() {
        "context_length"
    } else if spec.slots != defaults::SLOTS {
        "slots"
    } else if spec.instances != defaults::INSTANCES {
        "instances"
    } else {
        "context_length"
    }
}

/// A tokenized, validated request, ready to be queued.
pub(crate) struct Prepared {
    pub prompt: Arc<[LlamaToken]>,
    pub max_tokens: u32,
    /// The grammar the answer must follow (`response_format`).
    pub grammar: Option<Arc<str>>,
    /// The grammar of tool calls, and how they are read from the answer (tools in use).
    pub tool_grammar: Option<ToolGrammar>,
    pub tool_reading: Option<ToolReading>,
    /// The tool-call marker's token, kept visible to the parser.
    pub visible_tokens: Vec<LlamaToken>,
}

impl Service {
    /// Loads the model and starts the instances. Blocks for the load.
    pub(crate) fn start(id: String, spec: ServiceSpec, base: BaseModel) -> Result<Arc<Self>> {
        check_gpu_layers(spec.gpu_layers)?;
        let kind = service_kind(&spec.model, &base.architecture);
        let kv = if kind == ServiceKind::Chat {
            // The KV cache is sized against the machine before the weights are even loaded.
            let kv = kv_geometry(&spec.model, &base.architecture)?;
            let requested = spec.context_length.unwrap_or(defaults::CONTEXT_LENGTH);
            let trained = base.trained_context_length;
            check_kv_memory(&KvRequest {
                geometry: kv,
                slots: spec.slots,
                slot_context: if trained > 0 {
                    requested.min(trained)
                } else {
                    requested
                },
                instances: spec.instances,
                gpu_layers: spec.gpu_layers,
                weights: base.file_size,
                param: kv_param(&spec),
            })?;
            Some(kv)
        } else {
            None
        };
        let engine = match kind {
            ServiceKind::Chat => Engine::Chat(Arc::new(Pool::new(
                spec.access_name.clone(),
                spec.queue_size,
            ))),
            ServiceKind::Embedding => embeddings::engine(&spec)?,
        };
        let (model, base) = load_model(&spec.model, spec.gpu_layers, base)?;
        let vocab = model.vocab();
        let n_vocab = vocab.n_tokens();
        // A model without a BOS or EOS reports -1, which llama.cpp would throw on.
        let special = |t: LlamaToken| {
            if guards::token_in_vocab(t.0, n_vocab) {
                String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned()
            } else {
                String::new()
            }
        };
        // The most text one token stands for, to refuse hopelessly long prompts untokenized.
        let max_token_bytes = (0..n_vocab)
            .map(|t| vocab.token_to_piece(LlamaToken(t), true, None).len())
            .max()
            .unwrap_or(1);
        let template = ChatTemplate::new(
            spec.chat_template.as_deref(),
            model
                .meta_val_str("tokenizer.chat_template")
                .ok()
                .filter(|s| !s.is_empty()),
            &base.architecture,
            special(vocab.bos()),
            special(vocab.eos()),
        )?;
        let trained = base.trained_context_length.max(16);
        let slot_context = spec
            .context_length
            .unwrap_or(defaults::CONTEXT_LENGTH)
            .min(trained);
        let service = Arc::new(Service {
            engine,
            id,
            base,
            model,
            template,
            grammars: GrammarCache::default(),
            counters: Arc::default(),
            requests: Arc::default(),
            context_lock: Arc::default(),
            failure: Arc::default(),
            slot_context,
            kv,
            max_token_bytes,
            created: unix_now(),
            status: Mutex::new((ServiceStatus::Loading, None)),
            lifecycle: Mutex::new(LifeCycle {
                next_instance_id: 0,
            }),
            spec,
        });
        {
            let mut life = service.lifecycle.lock();
            service.add_instances(&mut life, service.spec.instances)?;
        }
        service.set_status(ServiceStatus::Running, None);
        Ok(service)
    }

    pub(crate) fn spec(&self) -> &ServiceSpec {
        &self.spec
    }

    pub(crate) fn created(&self) -> u64 {
        self.created
    }

    fn set_status(&self, status: ServiceStatus, reason: Option<String>) {
        *self.status.lock() = (status, reason);
    }

    /// The status, and why when it is `failed`.
    fn status_with_reason(&self) -> (ServiceStatus, Option<String>) {
        if let Some(reason) = self.failure.lock().clone() {
            return (ServiceStatus::Failed, Some(reason));
        }
        self.status.lock().clone()
    }

    pub(crate) fn status(&self) -> ServiceStatus {
        self.status_with_reason().0
    }

    /// Threads per instance: the service's budget (default: all cores) shared out.
    fn threads_per_instance(&self, instances: usize) -> usize {
        let total = self.spec.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        (total / instances.max(1)).max(1)
    }

    pub(crate) fn info(&self) -> ServiceInfo {
        let (status, status_reason) = self.status_with_reason();
        let instances = self.engine.instance_count();
        let c = &self.counters;
        ServiceInfo {
            id: self.id.clone(),
            name: self.spec.name.clone(),
            access_name: self.spec.access_name.clone(),
            kind: self.engine.kind(),
            base_model: self.base.clone(),
            instances,
            status,
            status_reason,
            slots_per_instance: match self.engine {
                Engine::Chat(_) => self.spec.slots,
                Engine::Embedding(_) => embeddings::BATCH_INPUTS,
            },
            context_length: self.slot_context,
            threads_per_instance: self.threads_per_instance(instances),
            queue_size: self.spec.queue_size,
            created: self.created,
            usage: ServiceUsage {
                requests: c.requests.load(Ordering::Relaxed),
                prompt_tokens: c.prompt_tokens.load(Ordering::Relaxed),
                completion_tokens: c.completion_tokens.load(Ordering::Relaxed),
            },
            stats: c.stats(),
            cpu_backend: cpu_backend::info(),
        }
    }

    /// The service's metrics as they stand now.
    pub(crate) fn metrics(&self) -> ServiceMetrics {
        let (queue_depth, running) = match &self.engine {
            Engine::Chat(pool) => pool.load(),
            Engine::Embedding(pool) => pool.load(),
        };
        let (requests, time_to_first_token, latency) = self.requests.snapshot();
        ServiceMetrics {
            access_name: self.spec.access_name.clone(),
            id: self.id.clone(),
            requests,
            prompt_tokens: self.counters.prompt_tokens.load(Ordering::Relaxed),
            completion_tokens: self.counters.completion_tokens.load(Ordering::Relaxed),
            queue_depth,
            running,
            queue_size: self.spec.queue_size,
            instances: self.engine.instance_count(),
            time_to_first_token,
            latency,
        }
    }

    /// Where the service counts its requests' outcomes and times them.
    pub(crate) fn request_metrics(&self) -> &Arc<RequestMetrics> {
        &self.requests
    }

    /// What a service reports while its model is still loading.
    pub(crate) fn loading_info(id: String, spec: &ServiceSpec, base: BaseModel) -> ServiceInfo {
        ServiceInfo {
            id,
            name: spec.name.clone(),
            access_name: spec.access_name.clone(),
            kind: service_kind(&spec.model, &base.architecture),
            base_model: base,
            instances: 0,
            status: ServiceStatus::Loading,
            status_reason: None,
            slots_per_instance: spec.slots,
            context_length: spec.context_length.unwrap_or(defaults::CONTEXT_LENGTH),
            threads_per_instance: 0,
            queue_size: spec.queue_size,
            created: unix_now(),
            usage: ServiceUsage::default(),
            stats: Default::default(),
            cpu_backend: cpu_backend::info(),
        }
    }

    /// Starts `count` more instances on the already-loaded weights.
    fn add_instances(&self, life: &mut LifeCycle, count: usize) -> Result<()> {
        let pool = match &self.engine {
            Engine::Chat(pool) => pool,
            Engine::Embedding(pool) => return self.add_embedding_instances(pool, life, count),
        };
        let total = pool.instance_count() + count;
        let config = InstanceConfig {
            slots: self.spec.slots,
            slot_context: self.slot_context,
            threads: self.threads_per_instance(total),
            batch_size: BATCH_SIZE,
            // llama.cpp offloads the output layer too once the count passes the layers.
            all_on_gpu: self.spec.gpu_layers > self.model.n_layer(),
        };
        for _ in 0..count {
            let id = life.next_instance_id;
            life.next_instance_id += 1;
            let (inbox_tx, inbox_rx) = std::sync::mpsc::channel();
            let shared = InstanceShared {
                model: self.model.clone(),
                pool: pool.clone(),
                counters: self.counters.clone(),
                context_lock: self.context_lock.clone(),
                failure: self.failure.clone(),
            };
            let thread =
                instance::spawn(id, &self.spec.access_name, config.clone(), shared, inbox_rx)?;
            pool.add_instance(id, inbox_tx, self.spec.slots, thread);
        }
        Ok(())
    }

    /// Changes the instance count. Up adds contexts on the loaded weights; down drains the
    /// removed instances (their requests finish) before returning.
    pub(crate) fn scale(&self, instances: usize) -> Result<()> {
        if instances == 0 {
            return Err(Error::invalid(
                "instances",
                "`instances` must be at least 1; delete the service to stop it.",
            ));
        }
        if instances > MAX_INSTANCES {
            return Err(Error::invalid(
                "instances",
                format!("`instances` must be between 1 and {MAX_INSTANCES}, got {instances}."),
            ));
        }
        let mut life = self.lifecycle.lock();
        if self.status() != ServiceStatus::Running {
            return Err(Error::ServiceUnavailable {
                model: self.spec.access_name.clone(),
                status: self.status().as_str().into(),
            });
        }
        let current = self.engine.instance_count();
        self.set_status(ServiceStatus::Scaling, None);
        let result = if instances > current {
            self.kv
                .map_or(Ok(()), |geometry| {
                    check_kv_memory(&KvRequest {
                        geometry,
                        slots: self.spec.slots,
                        slot_context: self.slot_context,
                        instances: instances - current,
                        gpu_layers: self.spec.gpu_layers,
                        weights: 0,
                        param: "instances",
                    })
                })
                .and_then(|()| self.add_instances(&mut life, instances - current))
        } else {
            let threads = match &self.engine {
                Engine::Chat(pool) => pool.detach_instances(current - instances),
                Engine::Embedding(pool) => pool.detach_instances(current - instances),
            };
            for thread in threads {
                let _ = thread.join();
            }
            Ok(())
        };
        self.set_status(ServiceStatus::Running, None);
        result
    }

    /// Marks the service deleting, lets every queued and running request finish, and stops.
    pub(crate) fn drain_and_stop(&self) {
        let _life = self.lifecycle.lock();
        self.set_status(ServiceStatus::Deleting, None);
        match &self.engine {
            Engine::Chat(pool) => pool.drain_and_stop(),
            Engine::Embedding(pool) => pool.drain_and_stop(),
        }
    }

    /// Renders, tokenizes and checks a request against the context.
    pub(crate) fn prepare(&self, req: &ChatCompletionRequest) -> Result<Prepared> {
        self.expect_kind(ServiceKind::Chat)?;
        let format = self.template.tool_format();
        let messages = with_format_guidance(&req.messages, req.response_format.as_ref());
        let (messages, tools) = template_input(req, &messages, format);
        let text = self.template.render_values(&messages, tools.as_deref())?;
        guards::prompt_text_fits(text.len(), self.slot_context, self.max_token_bytes)?;
        let prompt = self.tokenize(&text);
        guards::prompt_not_empty(prompt.len())?;
        let max_param = if req.max_completion_tokens.is_some() {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        let max_tokens = self.completion_budget(
            prompt.len() as u32,
            req.completion_limit(),
            "messages",
            max_param,
        )?;
        let grammar = req
            .response_format
            .as_ref()
            .and_then(|f| f.schema_json())
            .map(|schema| self.grammars.grammar_for(&self.model, &schema))
            .transpose()?;
        let tool_grammar = tool_grammar(req, format, &self.model, &self.grammars)?;
        let tool_reading = ToolReading::for_request(req, format);
        let visible_tokens = match (&tool_reading, format.marker()) {
            (Some(_), Some(marker)) => marker_token(&self.model, marker).into_iter().collect(),
            _ => Vec::new(),
        };
        Ok(Prepared {
            max_tokens,
            prompt: prompt.into(),
            grammar,
            tool_grammar,
            tool_reading,
            visible_tokens,
        })
    }

    /// Checks a prompt of `prompt_len` tokens and the completion budget `requested` against
    /// the slot's context; errors name `prompt_param` or `max_param`. Returns the budget: the
    /// rest of the context when none was asked for.
    pub(crate) fn completion_budget(
        &self,
        prompt_len: u32,
        requested: Option<u32>,
        prompt_param: &'static str,
        max_param: &'static str,
    ) -> Result<u32> {
        let context = self.slot_context;
        let completion = requested.unwrap_or(0);
        // Saturating: `max_tokens` may be u32::MAX, which must not wrap into a small request.
        let requested_total = prompt_len.saturating_add(completion);
        if prompt_len >= context || requested_total > context {
            return Err(Error::ContextLengthExceeded {
                context_length: context,
                requested: requested_total,
                prompt_tokens: prompt_len,
                completion_tokens: completion,
                param: if prompt_len >= context {
                    prompt_param
                } else {
                    max_param
                },
            });
        }
        Ok(requested.unwrap_or(context - prompt_len))
    }

    /// Tokenizes a rendered prompt (special tokens parsed; BOS added unless the text has one).
    /// On an embedding service: as its inputs are tokenized (special tokens added, none parsed).
    pub(crate) fn tokenize(&self, text: &str) -> Vec<LlamaToken> {
        let vocab = self.model.vocab();
        if let Engine::Embedding(_) = self.engine {
            return vocab.tokenize(text.as_bytes(), true, false);
        }
        let bos = self.template.bos_token();
        let add_bos = bos.is_empty() || !text.starts_with(bos);
        vocab.tokenize(text.as_bytes(), add_bos, true)
    }

    /// Queues one sequence per choice and returns their event receivers.
    pub(crate) fn submit(
        &self,
        req: &ChatCompletionRequest,
        prepared: &Prepared,
    ) -> Result<Vec<UnboundedReceiver<Event>>> {
        match self.status() {
            ServiceStatus::Running | ServiceStatus::Scaling => {}
            other => {
                return Err(Error::ServiceUnavailable {
                    model: self.spec.access_name.clone(),
                    status: other.as_str().into(),
                })
            }
        }
        let Engine::Chat(pool) = &self.engine else {
            return Err(self.wrong_kind(ServiceKind::Chat));
        };
        let n = req.n.unwrap_or(1);
        let mut receivers = Vec::with_capacity(n as usize);
        for index in 0..n {
            let (tx, rx) = unbounded_channel();
            pool.submit(Job {
                prompt: prepared.prompt.clone(),
                sampling: SamplingParams {
                    grammar: prepared.grammar.clone(),
                    tool_grammar: prepared.tool_grammar.clone(),
                    ..SamplingParams::from_request(req, index)
                },
                max_tokens: prepared.max_tokens,
                stop: req.stop_sequences(),
                events: tx,
                visible_tokens: prepared.visible_tokens.clone(),
            })?;
            receivers.push(rx);
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        self.counters
            .prompt_tokens
            .fetch_add(prepared.prompt.len() as u64, Ordering::Relaxed);
        Ok(receivers)
    }

    /// The most sequences the service can ever hold at once at its current size: every slot
    /// of every instance, and a full queue.
    pub(crate) fn sequence_capacity(&self) -> usize {
        self.spec.slots * self.engine.instance_count() + self.spec.queue_size
    }

    /// A 400 naming `param` when a request's sequences (its prompts × `n`) exceed
    /// [`sequence_capacity`](Self::sequence_capacity): the queue would refuse it with a 429
    /// however long the caller waited and retried.
    pub(crate) fn check_sequences(&self, sequences: usize, param: &str) -> Result<()> {
        let capacity = self.sequence_capacity();
        if sequences <= capacity {
            return Ok(());
        }
        Err(Error::invalid(
            param,
            format!(
                "The request needs {sequences} sequences at once (its prompts × `n`), but the service `{}` \
                 holds at most {capacity} ({} instance(s) × {} slots, plus a queue of {}): lower `{param}`, \
                 or scale the service or raise its `queue_size`.",
                self.spec.access_name,
                self.engine.instance_count(),
                self.spec.slots,
                self.spec.queue_size,
            ),
        ))
    }

    /// A 400 naming `model` unless the service is of kind `wanted`.
    fn expect_kind(&self, wanted: ServiceKind) -> Result<()> {
        if self.engine.kind() == wanted {
            Ok(())
        } else {
            Err(self.wrong_kind(wanted))
        }
    }

    fn wrong_kind(&self, wanted: ServiceKind) -> Error {
        let name = &self.spec.access_name;
        let message = match wanted {
            ServiceKind::Chat => format!(
                "The model `{name}` is an embedding model: it serves embeddings, not chat completions."
            ),
            ServiceKind::Embedding => format!(
                "The model `{name}` is a chat model: it does not serve embeddings. Deploy an embedding model (e.g. a BERT GGUF) for them."
            ),
        };
        Error::invalid("model", message)
    }
}
