//! Embedding requests on a service: the inputs tokenized and checked against the model, queued
//! on the embedding pool, and the answer gathered into the OpenAI response.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use llama_cpp_2::context::params::LlamaPoolingType;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::oneshot;

use super::{Engine, LifeCycle, Service};
use crate::api::{
    Embedding, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage,
    EmbeddingVector, EncodingFormat, ServiceKind, ServiceSpec, ServiceStatus,
};
use crate::embed::{self, EmbedConfig, EmbedShared};
use crate::embed_pool::{BatchLimits, EmbedItem, EmbedPool, Gather, Vectors};
use crate::error::{Error, Result};
use crate::metrics::RequestTimer;

/// Most inputs one embedding batch holds (each is a sequence of its own); an embedding
/// service's info reports it as its slots per instance.
pub(super) const BATCH_INPUTS: usize = 64;
/// Most tokens one embedding batch holds, unless one input may be longer.
const BATCH_TOKENS: usize = 1024;

/// A request whose inputs are queued: wait for it, blocking or async.
pub(crate) struct PendingEmbeddings {
    model: String,
    format: EncodingFormat,
    prompt_tokens: u32,
    vectors: Vectors,
    /// The service's clock on this request (outcome, latency).
    timer: RequestTimer,
}

impl PendingEmbeddings {
    /// The response, blocking the calling thread (not for use inside an async runtime).
    pub(crate) fn wait_blocking(mut self) -> Result<EmbeddingResponse> {
        let vectors = crate::wait::block_on(&mut self.vectors);
        self.respond(vectors)
    }

    /// The response. Dropping the future abandons the inputs not yet encoded.
    pub(crate) async fn response(mut self) -> Result<EmbeddingResponse> {
        let vectors = (&mut self.vectors).await;
        self.respond(vectors)
    }

    fn respond(
        mut self,
        vectors: Result<Result<Vec<Vec<f32>>>, oneshot::error::RecvError>,
    ) -> Result<EmbeddingResponse> {
        let vectors = vectors
            .map_err(|_| Error::internal("the embedding instance stopped"))
            .and_then(|v| v)
            .inspect_err(|e| self.timer.finish(e.status()))?;
        self.timer.output();
        self.timer.finish(200);
        Ok(EmbeddingResponse {
            object: "list".into(),
            data: vectors
                .into_iter()
                .enumerate()
                .map(|(index, vector)| Embedding {
                    object: "embedding".into(),
                    index: index as u32,
                    embedding: EmbeddingVector::encode(vector, self.format),
                })
                .collect(),
            model: self.model,
            usage: EmbeddingUsage {
                prompt_tokens: self.prompt_tokens,
                total_tokens: self.prompt_tokens,
            },
        })
    }
}

/// The engine of an embedding service; chat settings of its spec are refused, not ignored.
pub(super) fn engine(spec: &ServiceSpec) -> Result<Engine> {
    if spec.chat_template.is_some() {
        return Err(Error::invalid(
            "chat_template",
            format!(
                "`{}` is an embedding model: it serves embeddings, so it takes no `chat_template`.",
                spec.model.display()
            ),
        ));
    }
    Ok(Engine::Embedding(Arc::new(EmbedPool::new(
        spec.access_name.clone(),
        spec.queue_size,
    ))))
}

impl Service {
    /// Checks a request against the model, tokenizes its inputs and queues them.
    pub(crate) fn embed(&self, request: &EmbeddingRequest) -> Result<PendingEmbeddings> {
        self.queue_embeddings(request, std::time::Instant::now())
            .map_err(|e| self.requests.refused(e))
    }

    /// [`Service::embed`], timed from `start`.
    fn queue_embeddings(
        &self,
        request: &EmbeddingRequest,
        start: std::time::Instant,
    ) -> Result<PendingEmbeddings> {
        let Engine::Embedding(pool) = &self.engine else {
            return Err(self.wrong_kind(ServiceKind::Embedding));
        };
        let width = self.model.n_embd_out().max(0) as u32;
        if let Some(dimensions) = request.dimensions.filter(|&d| d != width) {
            return Err(Error::invalid(
                "dimensions",
                format!(
                    "This model's embeddings have {width} dimensions; `dimensions` {dimensions} \
                     is not supported (the model was not trained for shortened embeddings)."
                ),
            ));
        }
        let inputs = self.embedding_inputs(&request.input)?;
        match self.status() {
            ServiceStatus::Running | ServiceStatus::Scaling => {}
            other => {
                return Err(Error::ServiceUnavailable {
                    model: self.spec.access_name.clone(),
                    status: other.as_str().into(),
                })
            }
        }
        let prompt_tokens: usize = inputs.iter().map(Vec::len).sum();
        let (gather, vectors) = Gather::new(inputs.len());
        let last = inputs.len() - 1;
        pool.submit(
            inputs
                .into_iter()
                .enumerate()
                .map(|(index, tokens)| EmbedItem {
                    tokens,
                    index,
                    request: gather.clone(),
                    last: index == last,
                })
                .collect(),
        )?;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        self.counters
            .prompt_tokens
            .fetch_add(prompt_tokens as u64, Ordering::Relaxed);
        Ok(PendingEmbeddings {
            model: request.model.clone(),
            format: request.encoding_format.unwrap_or_default(),
            prompt_tokens: u32::try_from(prompt_tokens).unwrap_or(u32::MAX),
            vectors,
            timer: self.requests.accepted(start),
        })
    }

    /// The token ids of every input, each checked to fit the context (inputs are never
    /// truncated). Token-id inputs are taken as given, checked against the vocabulary.
    fn embedding_inputs(&self, input: &EmbeddingInput) -> Result<Vec<Vec<LlamaToken>>> {
        let vocab_size = self.model.n_vocab().max(0) as u32;
        let ids = |ids: &[u32]| -> Result<Vec<LlamaToken>> {
            match ids.iter().find(|&&id| id >= vocab_size) {
                Some(id) => Err(Error::invalid(
                    "input",
                    format!("Token id {id} in `input` is outside the model's vocabulary of {vocab_size} tokens."),
                )),
                None => Ok(ids.iter().map(|&id| LlamaToken(id as i32)).collect()),
            }
        };
        let inputs = match input {
            EmbeddingInput::Text(text) => vec![self.tokenize(text)],
            EmbeddingInput::Texts(texts) => texts.iter().map(|t| self.tokenize(t)).collect(),
            EmbeddingInput::Tokens(tokens) => vec![ids(tokens)?],
            EmbeddingInput::TokenLists(lists) => {
                lists.iter().map(|l| ids(l)).collect::<Result<_>>()?
            }
        };
        let context = self.slot_context as usize;
        if let Some((i, tokens)) = inputs.iter().enumerate().find(|(_, t)| t.len() > context) {
            return Err(Error::invalid(
                "input",
                format!(
                    "This model's maximum context length is {context} tokens, but input {i} has {} \
                     tokens. Shorten it (inputs are not truncated).",
                    tokens.len()
                ),
            ));
        }
        Ok(inputs)
    }

    /// Starts `count` more embedding instances on the already-loaded weights.
    pub(super) fn add_embedding_instances(
        &self,
        pool: &Arc<EmbedPool>,
        life: &mut LifeCycle,
        count: usize,
    ) -> Result<()> {
        let total = pool.instance_count() + count;
        // An encoder file that declares no pooling would give no pooled vector: take the mean.
        let declared = self
            .model
            .meta_val_str(&format!("{}.pooling_type", self.base.architecture))
            .is_ok_and(|v| v != "0");
        let config = EmbedConfig {
            threads: self.threads_per_instance(total),
            limits: BatchLimits {
                tokens: BATCH_TOKENS.max(self.slot_context as usize),
                inputs: BATCH_INPUTS,
            },
            pooling: if declared {
                LlamaPoolingType::Unspecified
            } else {
                LlamaPoolingType::Mean
            },
        };
        for _ in 0..count {
            let id = life.next_instance_id;
            life.next_instance_id += 1;
            let stop = Arc::new(AtomicBool::new(false));
            let shared = EmbedShared {
                model: self.model.clone(),
                pool: pool.clone(),
                counters: self.counters.clone(),
                context_lock: self.context_lock.clone(),
                failure: self.failure.clone(),
            };
            let thread = embed::spawn(
                id,
                &self.spec.access_name,
                config.clone(),
                shared,
                stop.clone(),
            )?;
            pool.add_instance(id, stop, thread);
        }
        Ok(())
    }
}
