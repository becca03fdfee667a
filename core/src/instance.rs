//! One instance: a worker thread that owns one llama context with several sequence slots.
//! Each step decodes ONE batch holding the next token of every generating sequence and
//! prompt chunks of newly admitted ones (continuous batching).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use parking_lot::Mutex;
use tokio::sync::mpsc::UnboundedSender;

use crate::api::{EngineStats, FinishReason, TokenLogprob};
use crate::backend::backend;
use crate::detokenize::Utf8Decoder;
use crate::error::{Error, Result};
use crate::guards;
use crate::logprobs::{token_logprob, PendingLogprobs};
use crate::pool::{common_prefix, Pool};
use crate::sampling::{Sampler, SamplingParams};
use crate::stop::StopMatcher;
use crate::threads::{Decoded, PooledContext};

/// Prompt tokens fed in one step while other sequences are generating: bounds how long a step,
/// and so every running stream's next token, can be held up by a long prompt.
pub(crate) const PROMPT_CHUNK: usize = 128;

/// Copying another slot's cached prefix copies its whole KV stream (`slot_context` cells);
/// decoding one prompt token costs about as much as copying this many cells (SmolLM2, 1 to 2
/// threads: a 1024-cell stream copied in about the time of one token, a 4096-cell one of 3 to 5),
/// so a copy is made only when it saves at least `slot_context / COPY_CELLS_PER_TOKEN` tokens.
const COPY_CELLS_PER_TOKEN: usize = 256;

/// A waiting prompt with fewer tokens left than this joins the step in which the oldest prompt
/// ends (a burst of new chat turns starts together).
const SHORT_TAIL: usize = 64;

/// What a request's stream receives from its instance.
#[derive(Debug)]
pub(crate) enum Event {
    /// Newly generated text (never part of a stop sequence, never a split character), with the
    /// log probabilities of the tokens it completes when they were asked for.
    Text {
        text: String,
        logprobs: Vec<TokenLogprob>,
    },
    /// The sequence ended.
    Done {
        finish: FinishReason,
        completion_tokens: u32,
        /// Prompt tokens this sequence took from the KV cache instead of decoding them.
        cached_tokens: u32,
    },
    /// The sequence could not be completed.
    Failed(Error),
}

/// One sequence to generate.
pub(crate) struct Job {
    pub prompt: Arc<[LlamaToken]>,
    pub sampling: SamplingParams,
    /// Most tokens to generate (already capped by the slot's context).
    pub max_tokens: u32,
    pub stop: Vec<String>,
    pub events: UnboundedSender<Event>,
    /// Control tokens rendered as text (tool-call markers, while tools are active).
    pub visible_tokens: Vec<LlamaToken>,
}

/// Counters shared by a service's instances.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub completion_tokens: AtomicU64,
    pub decode_steps: AtomicU64,
    pub tokens_decoded: AtomicU64,
    pub peak_batch_sequences: AtomicU64,
    pub prompt_tokens_reused: AtomicU64,
    pub prefix_copies: AtomicU64,
    pub stopped_steps: AtomicU64,
}

impl Counters {
    pub(crate) fn stats(&self) -> EngineStats {
        EngineStats {
            decode_steps: self.decode_steps.load(Ordering::Relaxed),
            tokens_decoded: self.tokens_decoded.load(Ordering::Relaxed),
            peak_batch_sequences: self.peak_batch_sequences.load(Ordering::Relaxed),
            prompt_tokens_reused: self.prompt_tokens_reused.load(Ordering::Relaxed),
            prefix_copies: self.prefix_copies.load(Ordering::Relaxed),
            stopped_steps: self.stopped_steps.load(Ordering::Relaxed),
        }
    }
}

/// How to build an instance's context.
#[derive(Debug, Clone)]
pub(crate) struct InstanceConfig {
    pub slots: usize,
    /// Context length of each slot.
    pub slot_context: u32,
    pub threads: usize,
    /// Most tokens in one decode step.
    pub batch_size: u32,
    /// Every layer runs on a GPU: decode steps are left unguarded ([`PooledContext::unguarded`]).
    pub all_on_gpu: bool,
}

/// What a worker shares with its service (chat instances with a [`Pool`], embedding instances
/// with an `EmbedPool`).
pub(crate) struct WorkerShared<P> {
    pub model: Arc<LlamaModel>,
    pub pool: Arc<P>,
    pub counters: Arc<Counters>,
    /// llama.cpp requires contexts of one model to be created one at a time.
    pub context_lock: Arc<Mutex<()>>,
    /// Set when an instance stopped unexpectedly: the service then reports `failed`.
    pub failure: Arc<Mutex<Option<String>>>,
}

/// Everything a chat worker needs besides its inbox.
pub(crate) type InstanceShared = WorkerShared<Pool>;

/// Starts an instance's thread and waits until its context exists (or failed to).
pub(crate) fn spawn(
    id: usize,
    name: &str,
    config: InstanceConfig,
    shared: InstanceShared,
    inbox: Receiver<Job>,
) -> Result<std::thread::JoinHandle<()>> {
    spawn_worker(format!("modelservice {name}#{id}"), move |ready| {
        let InstanceShared {
            model,
            pool,
            counters,
            context_lock,
            failure,
        } = shared;
        let Some(mut ctx) = ready.report(&context_lock, || {
            new_context(&model, &config).map(|ctx| warmed_up(ctx, &model, &counters))
        }) else {
            return;
        };
        let mut worker = Worker::new(id, &model, &config, pool, counters);
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            worker.run(&mut ctx, &inbox)
        }));
        if let Err(panic) = run {
            // Nothing may hang on a dead instance: fail what it holds and what waits for it.
            let error = instance_stopped(id, &*panic, &failure);
            worker.pool.remove_instance(id);
            worker.abort_all(&error, &inbox);
        }
    })
}

/// The start-up handshake of a worker thread: whether its llama context could be created.
pub(crate) struct Ready(std::sync::mpsc::Sender<Result<()>>);

impl Ready {
    /// Creates the context (one at a time per model: `context_lock`) and tells the spawner how
    /// it went; `None` when it failed. Once a context exists, the exit handler is armed.
    pub(crate) fn report<T>(
        self,
        context_lock: &Mutex<()>,
        create: impl FnOnce() -> Result<T>,
    ) -> Option<T> {
        let created = {
            let _serialized = context_lock.lock();
            create()
        };
        match created {
            Ok(ctx) => {
                crate::shutdown::install();
                let _ = self.0.send(Ok(()));
                Some(ctx)
            }
            Err(e) => {
                let _ = self.0.send(Err(e));
                None
            }
        }
    }
}

/// Starts a worker thread (chat or embedding instance) and waits until `body` has reported
/// through [`Ready`] whether its context exists; a failure joins the thread and is returned.
pub(crate) fn spawn_worker(
    thread_name: String,
    body: impl FnOnce(Ready) + Send + 'static,
) -> Result<std::thread::JoinHandle<()>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
    let thread = std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || body(Ready(ready_tx)))
        .map_err(|e| Error::internal(format!("cannot start an instance thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(Error::internal(
            "the instance thread stopped while creating its context",
        )),
    }
}

/// `ctx` after its warm-up decode ([`PooledContext::warm_up`]), which a service's first request
/// would otherwise pay for; a warm-up the guard stopped counts in `stopped_steps`.
pub(crate) fn warmed_up<'m>(
    mut ctx: PooledContext<'m>,
    model: &LlamaModel,
    counters: &Counters,
) -> PooledContext<'m> {
    // A context exists, so exit may be guarded now; it waits for the warm-up's decode.
    crate::shutdown::install();
    let _busy = crate::shutdown::enter();
    match ctx.warm_up(model) {
        Ok(Decoded::Redone) => {
            counters.stopped_steps.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Decoded::Once) => {}
        Err(e) => tracing::warn!(error = %e, "the warm-up decode failed"),
    }
    ctx
}

/// Records why instance `id` stopped (the service then reports `failed`) and returns the
/// error its requests end with.
pub(crate) fn instance_stopped(
    id: usize,
    panic: &(dyn std::any::Any + Send),
    failure: &Mutex<Option<String>>,
) -> Error {
    let reason = format!(
        "instance {id} stopped: {}",
        crate::error::panic_message(panic)
    );
    tracing::error!(%reason);
    *failure.lock() = Some(reason.clone());
    Error::internal(reason)
}

fn new_context<'m>(model: &'m LlamaModel, config: &InstanceConfig) -> Result<PooledContext<'m>> {
    let n_ctx = config.slot_context * config.slots as u32;
    let threads = i32::try_from(config.threads).unwrap_or(i32::MAX);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(config.batch_size)
        .with_n_ubatch(config.batch_size)
        .with_n_seq_max(config.slots as u32)
        // One KV stream per slot: a sequence attends only to its own cells, laid out as if it
        // ran alone (the kernels can still change with a step's shape: README, "Scheduling").
        .with_kv_unified(false)
        // Keep sliding-window layers whole, so a cached prefix can always be reused.
        .with_swa_full(true)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let ctx = model.new_context(backend()?, params).map_err(|e| {
        Error::internal(format!(
            "cannot create a llama context of {n_ctx} tokens: {e}"
        ))
    })?;
    let pooled = PooledContext::new(ctx, threads)?;
    Ok(if config.all_on_gpu {
        pooled.unguarded()
    } else {
        pooled
    })
}

/// A request being served by a slot.
struct Active {
    job: Job,
    /// Next prompt token to feed; equal to the prompt length once the prompt is decoded.
    prompt_pos: usize,
    sampler: Sampler,
    decoder: Utf8Decoder,
    stop: StopMatcher,
    /// Log probabilities waiting for their text, when the request asked for them.
    logprobs: Option<PendingLogprobs>,
    generated: u32,
    /// The last sampled token, to be decoded in the next step.
    next_token: Option<LlamaToken>,
    /// Where this slot's logits are in the current batch.
    logits_at: Option<i32>,
    /// Whether its prompt has started feeding (before that, a longer cached prefix may still be
    /// copied from another slot).
    started: bool,
    /// Prompt tokens this request's steps decoded; the rest came from the cache.
    prompt_decoded: usize,
}

impl Active {
    /// The sequence's final event.
    fn done(&self, finish: FinishReason) -> Event {
        Event::Done {
            finish,
            completion_tokens: self.generated,
            cached_tokens: self.job.prompt.len().saturating_sub(self.prompt_decoded) as u32,
        }
    }
}

struct Slot {
    seq: i32,
    /// Tokens whose keys and values are in this sequence's cache, in order.
    cached: Vec<LlamaToken>,
    /// The logits the first token after its cached prompt was drawn from, so an exact repeat of
    /// that prompt (here, or copied into another slot) decodes nothing before its first token and
    /// starts from the same floats: decoding it again could give other ones, since llama.cpp's
    /// CPU kernels can change a token's logits with the number of tokens beside it.
    prompt_logits: PromptLogits,
    active: Option<Active>,
}

/// The logits of a cached prompt's last token.
#[derive(Default)]
struct PromptLogits {
    /// The length of the prompt they end (its tokens are the slot's first cached ones); `None`
    /// when none are kept.
    prompt_len: Option<usize>,
    /// One vocabulary of logits; the buffer is kept from request to request.
    row: Vec<f32>,
}

impl Slot {
    /// How many of `prompt`'s first tokens this slot can supply: all of them for an exact repeat
    /// of the prompt whose logits it kept, else the shared prefix less the last prompt token
    /// (its logits start the generation).
    fn reusable(&self, prompt: &[LlamaToken]) -> usize {
        let shared = common_prefix(&self.cached, prompt);
        if self.prompt_logits.prompt_len == Some(prompt.len()) && shared == prompt.len() {
            return shared;
        }
        shared.min(prompt.len().saturating_sub(1))
    }

    /// Keeps the first `len` cached tokens (the KV cache was cut to them).
    fn truncate(&mut self, len: usize) {
        self.cached.truncate(len);
        if self.prompt_logits.prompt_len.is_some_and(|n| n > len) {
            self.prompt_logits.prompt_len = None;
        }
    }
}

struct Worker<'m> {
    id: usize,
    model: &'m LlamaModel,
    slots: Vec<Slot>,
    slot_context: usize,
    batch_size: usize,
    pool: Arc<Pool>,
    counters: Arc<Counters>,
    /// Slot indices in the order their requests arrived (prompt chunks are fed in this order).
    arrival: Vec<usize>,
}

impl<'m> Worker<'m> {
    fn new(
        id: usize,
        model: &'m LlamaModel,
        config: &InstanceConfig,
        pool: Arc<Pool>,
        counters: Arc<Counters>,
    ) -> Self {
        Worker {
            id,
            model,
            slots: (0..config.slots)
                .map(|i| Slot {
                    seq: i as i32,
                    cached: Vec::new(),
                    prompt_logits: PromptLogits::default(),
                    active: None,
                })
                .collect(),
            slot_context: config.slot_context as usize,
            batch_size: config.batch_size as usize,
            pool,
            counters,
            arrival: Vec::new(),
        }
    }

    fn run(&mut self, ctx: &mut PooledContext<'_>, inbox: &Receiver<Job>) {
        let mut batch = LlamaBatch::new(self.batch_size, self.slots.len() as i32);
        let mut inbox_open = true;
        loop {
            // Admit new requests: block only when there is nothing to do.
            let waited = if self.arrival.is_empty() {
                if !inbox_open {
                    return;
                }
                match inbox.recv() {
                    Ok(job) => Some(job),
                    Err(_) => return,
                }
            } else {
                None
            };
            // From here to the next wait this thread calls into llama.cpp: exit waits for it.
            let _busy = crate::shutdown::enter();
            if let Some(job) = waited {
                self.admit(ctx, job);
            }
            while inbox_open && self.arrival.len() < self.slots.len() {
                match inbox.try_recv() {
                    Ok(job) => self.admit(ctx, job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => inbox_open = false,
                }
            }
            self.drop_cancelled();
            if self.arrival.is_empty() {
                continue;
            }
            self.step(ctx, &mut batch);
        }
    }

    /// Puts a job in the idle slot whose cache shares the longest prefix with its prompt.
    fn admit(&mut self, ctx: &mut LlamaContext<'_>, job: Job) {
        let sampler = match job.sampling.build(self.model) {
            Ok(sampler) => sampler,
            Err(e) => {
                // Checked when the request was prepared; a failure here still frees the slot.
                let _ = job.events.send(Event::Failed(e));
                self.pool.release(self.id, self.idle_caches());
                return;
            }
        };
        let (index, reusable) = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.active.is_none())
            .map(|(i, s)| (i, s.reusable(&job.prompt)))
            // Ties go to the lowest slot, keeping active sequence ids contiguous (one ubatch).
            .max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)))
            .expect("the pool only sends jobs to instances with a free slot");
        let n_slots = self.slots.len();
        let slot = &mut self.slots[index];
        // llama.cpp asserts on a sequence id outside the context.
        let seq = match guards::seq_id(slot.seq, n_slots) {
            Ok(seq) => seq,
            Err(e) => {
                let _ = job.events.send(Event::Failed(e));
                self.pool.release(self.id, Vec::new());
                return;
            }
        };
        let mut reuse = reusable;
        if ctx.kv_cache_seq_rm(seq, Some(reuse as u32), None).is_err()
            || ctx.kv_cache_seq_pos_min(seq) > 0
        {
            let _ = ctx.kv_cache_seq_rm(seq, None, None);
            reuse = 0;
        }
        slot.truncate(reuse);
        self.counters
            .prompt_tokens_reused
            .fetch_add(reuse as u64, Ordering::Relaxed);
        // Only an exact repeat whose logits the slot kept reuses the whole prompt.
        let whole = reuse > 0 && reuse == job.prompt.len();
        slot.active = Some(Active {
            stop: StopMatcher::new(job.stop.clone()),
            logprobs: job.sampling.logprobs.map(|_| PendingLogprobs::default()),
            job,
            prompt_pos: reuse,
            sampler,
            decoder: Utf8Decoder::default(),
            generated: 0,
            next_token: None,
            logits_at: None,
            started: false,
            prompt_decoded: 0,
        });
        self.arrival.push(index);
        if whole {
            self.start_from_kept_logits(index);
        }
    }

    /// Draws slot `i`'s first token from the logits it kept for its prompt (an exact repeat),
    /// and ends the request if that token ends it.
    fn start_from_kept_logits(&mut self, i: usize) {
        if let Some(active) = self.slots[i].active.as_mut() {
            active.started = true;
        }
        let row = std::mem::take(&mut self.slots[i].prompt_logits.row);
        let ended = self.next_token(i, &row);
        self.slots[i].prompt_logits.row = row;
        if let Some(event) = ended {
            self.finish(i, Some(event));
        }
    }

    /// Starts slot `i`'s prompt from the longest prefix another slot (idle or busy) holds, when
    /// that saves enough decoding over its own cache to pay for copying the other KV stream.
    fn borrow_prefix(&mut self, ctx: &mut LlamaContext<'_>, i: usize) {
        let Some(active) = self.slots[i].active.as_ref() else {
            return;
        };
        let own = active.prompt_pos;
        let prompt_len = active.job.prompt.len();
        let Some((from, shared)) = self
            .slots
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(j, s)| (j, s.reusable(&active.job.prompt)))
            .max_by_key(|&(j, n)| (n, std::cmp::Reverse(j)))
        else {
            return;
        };
        if shared <= own || shared - own < self.slot_context / COPY_CELLS_PER_TOKEN {
            return;
        }
        let n_slots = self.slots.len();
        // llama.cpp asserts on a sequence id outside the context.
        let (Ok(src), Ok(dst)) = (
            guards::seq_id(self.slots[from].seq, n_slots),
            guards::seq_id(self.slots[i].seq, n_slots),
        ) else {
            return;
        };
        // Between KV streams llama.cpp copies whole streams only (it asserts on a range): copy
        // it all, then drop what follows the shared prefix. The data moves at the next decode.
        if ctx.copy_kv_cache_seq(src, dst, None, None).is_err()
            || ctx.kv_cache_seq_rm(dst, Some(shared as u32), None).is_err()
        {
            let _ = ctx.kv_cache_seq_rm(dst, None, None);
            self.slots[i].truncate(0);
            if let Some(active) = self.slots[i].active.as_mut() {
                active.prompt_pos = 0;
            }
            return;
        }
        let prefix = self.slots[from].cached[..shared].to_vec();
        // The whole prompt: the logits its first token is drawn from come with it.
        let whole = shared == prompt_len;
        let logits = whole.then(|| self.slots[from].prompt_logits.row.clone());
        let slot = &mut self.slots[i];
        slot.cached = prefix;
        slot.prompt_logits.prompt_len = whole.then_some(shared);
        if let Some(row) = logits {
            slot.prompt_logits.row = row;
        }
        if let Some(active) = slot.active.as_mut() {
            active.prompt_pos = shared;
        }
        self.counters
            .prompt_tokens_reused
            .fetch_add((shared - own) as u64, Ordering::Relaxed);
        self.counters.prefix_copies.fetch_add(1, Ordering::Relaxed);
        if whole {
            self.start_from_kept_logits(i);
        }
    }

    /// Frees the slots of requests whose caller went away.
    fn drop_cancelled(&mut self) {
        let cancelled: Vec<usize> = self
            .arrival
            .iter()
            .copied()
            .filter(|&i| {
                self.slots[i]
                    .active
                    .as_ref()
                    .is_some_and(|a| a.job.events.is_closed())
            })
            .collect();
        for i in cancelled {
            self.finish(i, None);
        }
    }

    /// One decode step over every active slot, then one sampled token per slot that has logits.
    fn step(&mut self, ctx: &mut PooledContext<'_>, batch: &mut LlamaBatch<'_>) {
        for i in self.waiting_prompts().collect::<Vec<_>>() {
            if !self.slots[i].active.as_ref().is_some_and(|a| a.started) {
                self.borrow_prefix(ctx, i);
            }
        }
        // A borrowed whole prompt can have ended its request without a step.
        if self.arrival.is_empty() {
            return;
        }
        let feed = self.plan_feed();
        let sequences = self.fill_batch(batch, &feed);
        let tokens = batch.n_tokens() as u64;
        if !guards::batch_has_tokens(batch.n_tokens()) {
            // Nothing can move (llama.cpp asserts on an empty batch): end what waits on it.
            let error = Error::internal("a decode step had nothing to decode");
            for i in self.arrival.clone() {
                self.finish(i, Some(Event::Failed(error.clone())));
            }
            return;
        }
        // Undoes a step stopped midway: each sequence's tokens in this batch start where its
        // cache was before them (computed only if a step is stopped).
        let slots = &self.slots;
        let undo = |ctx: &mut LlamaContext<'_>| {
            for (slot, &take) in slots.iter().zip(&feed).filter(|(_, &take)| take > 0) {
                let from = (slot.cached.len() - take) as u32;
                let _ = ctx.kv_cache_seq_rm(slot.seq, Some(from), None);
            }
        };
        #[cfg(test)]
        tests::stop_if_wanted(ctx, &feed);
        // The cells the step's longest sequence reaches: attention grows with them.
        let context = self
            .slots
            .iter()
            .zip(&feed)
            .filter(|(_, &take)| take > 0)
            .map(|(slot, _)| slot.cached.len())
            .max()
            .unwrap_or(0);
        let decoded = ctx.decode_step(batch, context, undo);
        if let Ok(Decoded::Redone) = decoded {
            self.counters.stopped_steps.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = decoded {
            let error = Error::internal(format!("llama_decode failed: {e}"));
            for i in self.arrival.clone() {
                let _ = ctx.kv_cache_seq_rm(self.slots[i].seq, None, None);
                self.slots[i].truncate(0);
                self.finish(i, Some(Event::Failed(error.clone())));
            }
            return;
        }
        self.counters.decode_steps.fetch_add(1, Ordering::Relaxed);
        self.counters
            .tokens_decoded
            .fetch_add(tokens, Ordering::Relaxed);
        self.counters
            .peak_batch_sequences
            .fetch_max(sequences, Ordering::Relaxed);

        let n_tokens = batch.n_tokens();
        for i in self.arrival.clone() {
            if let Some(event) = self.sample(ctx, i, n_tokens) {
                self.finish(i, Some(event));
            }
        }
    }

    /// The slots with prompt tokens left, oldest request first.
    fn waiting_prompts(&self) -> impl Iterator<Item = usize> + '_ {
        self.arrival.iter().copied().filter(|&i| {
            self.slots[i]
                .active
                .as_ref()
                .is_some_and(|a| a.next_token.is_none() && a.prompt_pos < a.job.prompt.len())
        })
    }

    /// How many tokens each slot feeds this step: one for every generating sequence (keeps
    /// every stream moving), then a chunk of the oldest waiting prompt, so its first token is not
    /// held back by prompts that came after it; while streams are generating the chunk is at
    /// most [`PROMPT_CHUNK`] tokens, so a long prompt never stalls them for its whole prefill.
    /// When the oldest prompt ends in this step, the next ones in arrival order join it while
    /// each ends in it too (a short tail) and the step's prompt tokens stay within
    /// [`PROMPT_CHUNK`]: a burst of new chat turns starts together instead of one per step. A
    /// prompt identical to one that ends in this step waits, to copy it at the next step's start.
    fn plan_feed(&self) -> Vec<usize> {
        let mut feed = vec![0usize; self.slots.len()];
        let mut room = self.batch_size;
        let mut generating = false;
        for &i in &self.arrival {
            if self.slots[i]
                .active
                .as_ref()
                .is_some_and(|a| a.next_token.is_some())
            {
                feed[i] = 1;
                room -= 1;
                generating = true;
            }
        }
        let tail = |i: usize| {
            let active = self.slots[i]
                .active
                .as_ref()
                .expect("a waiting slot is active");
            active.job.prompt.len() - active.prompt_pos
        };
        let mut waiting = self.waiting_prompts();
        let Some(oldest) = waiting.next() else {
            return feed;
        };
        let room = if generating {
            room.min(PROMPT_CHUNK)
        } else {
            room
        };
        let first = tail(oldest);
        feed[oldest] = first.min(room);
        if feed[oldest] < first {
            return feed;
        }
        let mut fed = first;
        let mut whole = vec![oldest];
        for i in waiting {
            // Copied next step with its first token's logits (borrow_prefix), not decoded twice.
            if self.repeats_a_prompt_of(i, &whole) {
                continue;
            }
            let tail = tail(i);
            if tail >= SHORT_TAIL || fed + tail > room.min(PROMPT_CHUNK) {
                break;
            }
            feed[i] = tail;
            fed += tail;
            whole.push(i);
        }
        #[cfg(test)]
        tests::record_prompts_fed(&feed, |i| {
            self.slots[i]
                .active
                .as_ref()
                .is_some_and(|a| a.next_token.is_none())
        });
        feed
    }

    /// Whether slot `i` waits with the same prompt as one of `whole` (slots whose prompts end in
    /// this step), and copying that slot's cache would save enough decoding to pay for itself:
    /// the `n` choices of one request, or the same request sent twice at once.
    fn repeats_a_prompt_of(&self, i: usize, whole: &[usize]) -> bool {
        let prompt = |i: usize| self.slots[i].active.as_ref().map(|a| &a.job.prompt);
        let Some(active) = self.slots[i].active.as_ref() else {
            return false;
        };
        let saved = active.job.prompt.len() - active.prompt_pos;
        !active.started
            && saved >= self.slot_context / COPY_CELLS_PER_TOKEN
            && whole.iter().any(|&k| prompt(k) == Some(&active.job.prompt))
    }

    /// Puts the planned tokens into the batch; returns how many sequences it holds.
    fn fill_batch(&mut self, batch: &mut LlamaBatch<'_>, feed: &[usize]) -> u64 {
        // Tokens go into the batch in sequence-id order: with one KV stream per slot, llama.cpp
        // puts runs of consecutive sequence ids into one ubatch, so this order decodes all
        // active slots together.
        batch.clear();
        let mut sequences = 0u64;
        for (slot, &take) in self.slots.iter_mut().zip(feed) {
            let Some(active) = slot.active.as_mut() else {
                continue;
            };
            active.logits_at = None;
            if take == 0 {
                continue;
            }
            sequences += 1;
            if let Some(token) = active.next_token.take() {
                active.logits_at = Some(batch.n_tokens());
                batch
                    .add(token, slot.cached.len() as i32, &[slot.seq], true)
                    .expect("batch holds one token per slot");
                slot.cached.push(token);
                continue;
            }
            active.started = true;
            let end = active.prompt_pos + take;
            for at in active.prompt_pos..end {
                let token = active.job.prompt[at];
                // Only the prompt's last token needs logits: they start the generation.
                let logits = at + 1 == active.job.prompt.len();
                if logits {
                    active.logits_at = Some(batch.n_tokens());
                }
                batch
                    .add(token, slot.cached.len() as i32, &[slot.seq], logits)
                    .expect("batch has room");
                slot.cached.push(token);
            }
            active.prompt_decoded += take;
            active.prompt_pos = end;
        }
        sequences
    }

    /// Samples slot `i`'s next token from the step's logits; returns the final event if it ended.
    fn sample(&mut self, ctx: &LlamaContext<'_>, i: usize, n_tokens: i32) -> Option<Event> {
        let slot = &mut self.slots[i];
        let active = slot.active.as_ref()?;
        // llama.cpp asserts when asked to sample where the batch computed no logits.
        let at = guards::logits_index(active.logits_at, n_tokens)?;
        let logits = ctx.get_logits_ith(at);
        if active.generated == 0 {
            // The prompt's last token: kept for an exact repeat of the prompt.
            let kept = &mut slot.prompt_logits;
            kept.row.clear();
            kept.row.extend_from_slice(logits);
            kept.prompt_len = Some(active.job.prompt.len());
        }
        self.next_token(i, logits)
    }

    /// Draws slot `i`'s next token from `logits` and emits its text; returns the final event if
    /// it ended.
    fn next_token(&mut self, i: usize, logits: &[f32]) -> Option<Event> {
        let slot = &mut self.slots[i];
        let active = slot.active.as_mut()?;
        let top = active.job.sampling.logprobs;
        let token = match active.sampler.sample(logits) {
            Ok(token) => token,
            Err(e) => return Some(Event::Failed(e)),
        };
        let vocab = self.model.vocab();
        if vocab.is_eog(token) {
            return Some(Self::end(active, FinishReason::Stop));
        }
        active.generated += 1;
        let special = active.job.visible_tokens.contains(&token);
        let bytes = vocab.token_to_piece(token, special, None);
        let text = active.decoder.push(&bytes);
        // The distribution the model gave, not the sampler's.
        if let (Some(pending), Some(top)) = (active.logprobs.as_mut(), top) {
            let piece = |t: i32| vocab.token_to_piece(LlamaToken(t), false, None);
            pending.push(
                token_logprob(logits, token.0, top as usize, piece),
                text.len(),
            );
        }
        let outcome = active.stop.push(&text);
        Self::emit(active, outcome.emit);
        if outcome.stopped {
            return Some(active.done(FinishReason::Stop));
        }
        // The next step would place this token at position `cached.len()`: it must fit the slot.
        if active.generated >= active.job.max_tokens || slot.cached.len() >= self.slot_context {
            return Some(Self::end(active, FinishReason::Length));
        }
        active.next_token = Some(token);
        None
    }

    /// Sends emitted text with the log probabilities of the tokens it completes.
    fn emit(active: &mut Active, text: String) {
        let logprobs = active
            .logprobs
            .as_mut()
            .map(|p| p.release(text.len()))
            .unwrap_or_default();
        if !text.is_empty() || !logprobs.is_empty() {
            let _ = active.job.events.send(Event::Text { text, logprobs });
        }
    }

    /// Flushes held-back text and builds the final event.
    fn end(active: &mut Active, finish: FinishReason) -> Event {
        let rest = active.decoder.finish();
        let mut tail = active.stop.push(&rest);
        if tail.stopped {
            Self::emit(active, tail.emit);
            return active.done(FinishReason::Stop);
        }
        tail.emit.push_str(&active.stop.flush());
        Self::emit(active, tail.emit);
        active.done(finish)
    }

    /// Ends every held and waiting request with `error` (after a panic of this worker).
    fn abort_all(&mut self, error: &Error, inbox: &Receiver<Job>) {
        for i in self.arrival.clone() {
            self.finish(i, Some(Event::Failed(error.clone())));
        }
        while let Ok(job) = inbox.try_recv() {
            let _ = job.events.send(Event::Failed(error.clone()));
            self.pool.release(self.id, Vec::new());
        }
    }

    /// Frees slot `i` (its cache stays for prefix reuse) and tells the pool.
    fn finish(&mut self, i: usize, event: Option<Event>) {
        let Some(active) = self.slots[i].active.take() else {
            return;
        };
        self.counters
            .completion_tokens
            .fetch_add(u64::from(active.generated), Ordering::Relaxed);
        if let Some(event) = event {
            let _ = active.job.events.send(event);
        }
        self.arrival.retain(|&s| s != i);
        self.pool.release(self.id, self.idle_caches());
    }

    /// What each idle slot holds in its cache, for the pool's prefix-aware scheduling.
    fn idle_caches(&self) -> Vec<Arc<[LlamaToken]>> {
        self.slots
            .iter()
            .filter(|s| s.active.is_none())
            .map(|s| Arc::from(s.cached.as_slice()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ChatCompletionRequest, ChatMessage, ServiceSpec};
    use crate::registry::Registry;

    /// Instance threads (by name) whose next step that holds a prompt chunk beside another
    /// sequence is stopped in its second ubatch.
    static STOP_MIXED_STEP: Mutex<Vec<String>> = Mutex::new(Vec::new());

    pub(super) fn stop_if_wanted(ctx: &mut PooledContext<'_>, feed: &[usize]) {
        let mixed =
            feed.iter().filter(|&&take| take > 0).count() >= 2 && feed.iter().any(|&t| t > 1);
        let me = std::thread::current();
        let mut wanted = STOP_MIXED_STEP.lock();
        let Some(at) = wanted
            .iter()
            .position(|name| Some(name.as_str()) == me.name())
        else {
            return;
        };
        // Only the planted stop: a busy machine must not stop a step of this instance first.
        ctx.time_limits = false;
        if mixed {
            wanted.remove(at);
            // With one KV stream per slot, llama.cpp splits such a step into ubatches of equal
            // tokens per sequence: one token of each first, then the rest of the prompt chunk.
            let per_ubatch = ctx.nodes_of_last_guarded_step();
            assert!(per_ubatch > 0, "no guarded step before the mixed one");
            ctx.stop_next_step_after(per_ubatch + per_ubatch / 2);
        }
    }

    /// The most prompts one step fed, per instance thread (by name).
    static PROMPTS_PER_STEP: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

    pub(super) fn record_prompts_fed(feed: &[usize], prompting: impl Fn(usize) -> bool) {
        let prompts = (0..feed.len())
            .filter(|&i| feed[i] > 0 && prompting(i))
            .count();
        let name = std::thread::current().name().unwrap_or_default().to_owned();
        let mut most = PROMPTS_PER_STEP.lock();
        match most.iter_mut().find(|(n, _)| *n == name) {
            Some((_, n)) => *n = (*n).max(prompts),
            None => most.push((name, prompts)),
        }
    }

    /// Short prompts that arrive together while a stream runs start in one step, and their
    /// greedy answers are those they get alone.
    #[test]
    fn a_burst_of_short_prompts_starts_together() {
        let registry = Registry::new();
        registry.deploy(service("burst/five", 5)).unwrap();
        registry.deploy(service("burst/reference", 1)).unwrap();
        let questions = [
            "Name a fruit.",
            "Name a colour.",
            "Name a river.",
            "Name a bird.",
        ];
        let text = |c: crate::api::ChatCompletion| c.choices[0].message.content.clone().unwrap();
        let expected: Vec<String> = questions
            .iter()
            .map(|q| {
                text(
                    registry
                        .chat_blocking(greedy("burst/reference", q, 12))
                        .unwrap(),
                )
            })
            .collect();
        // A running stream keeps the instance stepping while the four arrive.
        let mut running = registry
            .chat_stream(greedy(
                "burst/five",
                "Write a long story about the sea.",
                64,
            ))
            .unwrap();
        running.next_blocking().unwrap().unwrap();
        let burst: Vec<_> = questions
            .iter()
            .map(|q| registry.chat_stream(greedy("burst/five", q, 12)).unwrap())
            .collect();
        let answers: Vec<String> = burst
            .into_iter()
            .map(|mut stream| {
                let mut answer = String::new();
                while let Some(chunk) = stream.next_blocking() {
                    let chunk = chunk.unwrap();
                    answer += chunk
                        .choices
                        .first()
                        .and_then(|c| c.delta.content.as_deref())
                        .unwrap_or_default();
                }
                answer
            })
            .collect();
        while running.next_blocking().is_some() {}
        assert_eq!(answers, expected);
        let most = PROMPTS_PER_STEP
            .lock()
            .iter()
            .find(|(name, _)| name == "modelservice burst/five#0")
            .map(|&(_, n)| n);
        assert!(
            most.is_some_and(|n| n >= 2),
            "no step fed two of the prompts: at most {most:?}"
        );
    }

    fn greedy(model: &str, question: &str, tokens: u32) -> ChatCompletionRequest {
        let mut req = ChatCompletionRequest::new(model, vec![ChatMessage::user(question)]);
        req.temperature = Some(0.0);
        req.max_tokens = Some(tokens);
        req
    }

    fn service(access_name: &str, slots: usize) -> ServiceSpec {
        let mut spec = ServiceSpec::new("test", access_name, modelservice_test_models::smollm2());
        spec.slots = slots;
        spec.threads = Some(2);
        spec.context_length = Some(1024);
        spec
    }

    /// A step holding a generating sequence's token and another's prompt chunk, stopped after
    /// its first ubatch: each sequence's cells from that step are removed before it is decoded
    /// again, or llama.cpp refuses the redone step (positions already present) and both
    /// requests fail.
    #[test]
    fn a_stopped_step_is_undone_for_every_sequence_in_it() {
        if cfg!(feature = "openmp") {
            return; // no guard: OpenMP's barriers sleep
        }
        let registry = Registry::new();
        registry.deploy(service("undo/mixed", 2)).unwrap();
        registry.deploy(service("undo/reference", 1)).unwrap();
        let (story, colours) = ("Write a long story about the sea.", "Name three colours.");
        let text = |c: crate::api::ChatCompletion| c.choices[0].message.content.clone().unwrap();
        let expected_story = text(
            registry
                .chat_blocking(greedy("undo/reference", story, 48))
                .unwrap(),
        );
        let expected_colours = text(
            registry
                .chat_blocking(greedy("undo/reference", colours, 16))
                .unwrap(),
        );

        STOP_MIXED_STEP
            .lock()
            .push("modelservice undo/mixed#0".into());
        // The story streams; the colours are asked once it has its first token, so their prompt
        // joins a step that holds the story's next token.
        let mut stream = registry
            .chat_stream(greedy("undo/mixed", story, 48))
            .unwrap();
        let next_piece = |stream: &mut crate::stream::ChatCompletionStream| {
            let chunk = stream.next_blocking()?.unwrap();
            let piece = chunk.choices.first().and_then(|c| c.delta.content.clone());
            Some(piece.unwrap_or_default())
        };
        let mut story_text = String::new();
        while story_text.is_empty() {
            story_text += &next_piece(&mut stream).expect("the story's first token");
        }
        let colours_answer = registry
            .chat_blocking(greedy("undo/mixed", colours, 16))
            .unwrap();
        while let Some(piece) = next_piece(&mut stream) {
            story_text += &piece;
        }

        assert!(
            STOP_MIXED_STEP.lock().is_empty(),
            "no step mixed a prompt with another sequence"
        );
        let stats = registry.retrieve("undo/mixed").unwrap().stats;
        assert!(stats.stopped_steps >= 1, "{stats:?}");
        assert_eq!(text(colours_answer), expected_colours);
        assert_eq!(story_text, expected_story);
    }
}
