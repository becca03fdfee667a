//! One embedding instance: a worker thread owning one llama context with embeddings on. It
//! packs waiting inputs into one batch (one sequence id each, never more tokens than the
//! context's n_ubatch), decodes it once, and reads one pooled, L2-normalised vector per input.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;

use crate::backend::backend;
use crate::embed_pool::{BatchLimits, EmbedItem, EmbedPool};
use crate::error::{Error, Result};
use crate::instance::{instance_stopped, spawn_worker, warmed_up, Counters, WorkerShared};
use crate::threads::{Decoded, PooledContext};

/// How to build an embedding instance's context.
#[derive(Debug, Clone)]
pub(crate) struct EmbedConfig {
    pub threads: usize,
    pub limits: BatchLimits,
    /// The file's own pooling, or mean pooling for an encoder file that declares none.
    pub pooling: LlamaPoolingType,
}

/// Everything an embedding worker needs.
pub(crate) type EmbedShared = WorkerShared<EmbedPool>;

/// Starts an instance's thread and waits until its context exists (or failed to).
pub(crate) fn spawn(
    id: usize,
    name: &str,
    config: EmbedConfig,
    shared: EmbedShared,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    spawn_worker(format!("modelservice {name}#{id}"), move |ready| {
        let EmbedShared {
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
        let mut batch = LlamaBatch::new(config.limits.tokens, 1);
        let mut held: Vec<EmbedItem> = Vec::new();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            while let Some(items) = pool.take(&stop, config.limits) {
                // Exit waits for this batch's llama.cpp calls.
                let _busy = crate::shutdown::enter();
                held = items;
                let count = held.len();
                match encode(&mut ctx, &mut batch, &held, &counters) {
                    Ok(vectors) => {
                        for (item, vector) in held.drain(..).zip(vectors) {
                            item.request.fill(item.index, vector);
                        }
                    }
                    Err(e) => {
                        for item in held.drain(..) {
                            item.request.fail(e.clone());
                        }
                    }
                }
                pool.finished(count);
            }
        }));
        if let Err(panic) = run {
            // Nothing may hang on a dead instance: fail what it holds, and what waits if no
            // instance is left.
            let error = instance_stopped(id, &*panic, &failure);
            pool.remove_instance(id);
            let count = held.len();
            for item in held.drain(..) {
                item.request.fail(error.clone());
            }
            pool.finished(count);
            if pool.instance_count() == 0 {
                pool.fail_queued(&error);
            }
        }
    })
}

fn new_context<'m>(model: &'m LlamaModel, config: &EmbedConfig) -> Result<PooledContext<'m>> {
    let tokens = u32::try_from(config.limits.tokens).unwrap_or(u32::MAX);
    let threads = i32::try_from(config.threads).unwrap_or(i32::MAX);
    let params = LlamaContextParams::default()
        .with_embeddings(true)
        .with_pooling_type(config.pooling)
        .with_n_ctx(NonZeroU32::new(tokens))
        // One batch is one ubatch: an encoder aborts on a batch larger than n_ubatch.
        .with_n_batch(tokens)
        .with_n_ubatch(tokens)
        .with_n_seq_max(config.limits.inputs as u32)
        // All sequences share the context's cells (a decoder embedder's KV cache holds the
        // whole batch, not a per-sequence share of it).
        .with_kv_unified(true)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let ctx = model.new_context(backend()?, params).map_err(|e| {
        Error::internal(format!(
            "cannot create an embedding context of {tokens} tokens: {e}"
        ))
    })?;
    PooledContext::new(ctx, threads)
}

/// Decodes `items` as one batch (input j is sequence j) and returns their normalised vectors.
fn encode(
    ctx: &mut PooledContext<'_>,
    batch: &mut LlamaBatch<'_>,
    items: &[EmbedItem],
    counters: &Counters,
) -> Result<Vec<Vec<f32>>> {
    batch.clear();
    for (seq, item) in items.iter().enumerate() {
        // Every token is an output: pooling reads them all.
        batch
            .add_sequence(&item.tokens, seq as i32, true)
            .map_err(|e| Error::internal(format!("cannot fill the batch: {e}")))?;
    }
    let tokens = batch.n_tokens() as u64;
    // Forget the batch (a decoder embedder keeps it in its KV cache; an encoder has none).
    let cleanup = |ctx: &mut LlamaContext<'_>| ctx.clear_kv_cache();
    // Each input attends at most the whole batch.
    let context = usize::try_from(batch.n_tokens()).unwrap_or(0);
    let decoded = ctx.decode_step(batch, context, cleanup);
    if let Ok(Decoded::Redone) = decoded {
        counters.stopped_steps.fetch_add(1, Ordering::Relaxed);
    }
    if let Err(e) = decoded {
        cleanup(ctx);
        return Err(Error::internal(format!("llama_decode failed: {e}")));
    }
    let vectors = (0..items.len())
        .map(|seq| {
            ctx.embeddings_seq_ith(seq as i32)
                .map(normalized)
                .map_err(|e| Error::internal(format!("no pooled embedding for input {seq}: {e}")))
        })
        .collect::<Result<Vec<_>>>();
    cleanup(ctx);
    counters.decode_steps.fetch_add(1, Ordering::Relaxed);
    counters.tokens_decoded.fetch_add(tokens, Ordering::Relaxed);
    counters
        .peak_batch_sequences
        .fetch_max(items.len() as u64, Ordering::Relaxed);
    vectors
}

/// `v / ‖v‖` (a zero vector stays zero), as the model's own pipeline ends in Normalize.
fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if norm == 0.0 {
        return v.to_vec();
    }
    v.iter().map(|x| (f64::from(*x) / norm) as f32).collect()
}
