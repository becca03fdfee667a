//! Checks made in Rust before each llama.cpp call that would otherwise stop the process.
//!
//! llama.cpp treats inputs it considers impossible with `GGML_ASSERT`/`GGML_ABORT` (the process
//! aborts) or with C++ exceptions (which abort too when they unwind into Rust). Inside a user's
//! Python, Node or C program either is fatal, so every such path a request, a spec or a model
//! file can reach through the calls we make is listed here with the guard that closes it.
//!
//! | llama.cpp call (our caller) | abort or throw (llama.cpp source) | reached by | guard |
//! |---|---|---|---|
//! | `llama_init_from_model` (`instance::new_context`) | throws `n_seq_max must be <= 256` (llama-context.cpp); ggml spins thousands of OpenMP threads (a hang) | spec `slots`, `threads` | [`crate::limits`]: `MAX_SLOTS`, `max_threads()` |
//! | same | KV buffer allocation throws, or succeeds and the kernel kills the process when it is cleared | `slots` × `context_length` × `instances` | [`crate::limits::check_kv_memory`], before the model loads and on scale-up |
//! | same (`n_ctx` = slots × context, 32 bits) | wraps to a tiny context | `slots`, `context_length` | `MAX_SLOTS` × `MAX_CONTEXT_LENGTH` < 2³² ([`BATCH_FITS_EVERY_SLOT`] and the limits tests) |
//! | `llama_decode` | `GGML_ASSERT(n_tokens_all <= cparams.n_batch)` (llama-context.cpp) | more tokens in a step than the batch holds | the worker fills at most `batch_size` = `n_batch` tokens; [`BATCH_FITS_EVERY_SLOT`]: one token per slot always fits |
//! | `llama_decode` → `llama_batch_allocr::init` | `GGML_ASSERT(n_tok > 0)` (llama-batch.cpp) | a step with nothing to decode | [`batch_has_tokens`]; [`prompt_not_empty`] refuses empty prompts (a template that renders nothing) |
//! | `llama_memory_seq_rm`, `llama_memory_seq_pos_min` | `GGML_ASSERT(seq_id >= 0 && seq_id < n_seq)` (llama-kv-cache.cpp) | a slot's sequence id | [`seq_id`] |
//! | `llama_sampler_sample` → `llama_get_logits_ith` | `GGML_ASSERT(logits != nullptr)` (llama-sampler.cpp) for a batch index without logits | the index a slot samples at | [`logits_index`] |
//! | `llama_sampler_sample` | `GGML_ASSERT(cur_p->size > 0)` in softmax; `GGML_ASSERT(selected in range)` | a model without vocabulary; a chain without a final draw | the GGUF check refuses vocab-less models; every chain ends in greedy or dist (`sampling.rs`) |
//! | `llama_sampler_init_logit_bias` | `GGML_ASSERT(token < n_vocab)` (backend path) | `logit_bias` keys | `sampling.rs` keeps ids in `0..n_vocab` |
//! | `llama_token_to_piece` → `token_get_attr` | `id_to_token.at(id)` throws `std::out_of_range` | BOS/EOS of a model that has none (`-1`) | [`token_in_vocab`] |
//! | `llama_tokenize` (llama-cpp-2) | panics past 2 GiB of text; tokenizing megabytes takes seconds of a caller's thread | a request's message text | [`prompt_text_fits`]: text longer than the context could ever hold is refused before tokenizing |
//! | `llama_tokenize` (SentencePiece byte fallback) | `token_to_id.at("<0xNN>")` throws | a model vocabulary without byte tokens | the GGUF check (`gguf.rs`) |
//! | `ggml_rms_norm` (first decode) | `GGML_ASSERT(eps >= 0.0f)` | a model's `layer_norm_rms_epsilon` | the GGUF check |
//! | `llama_model_load` → vocab | `GGML_ASSERT(id_to_token.size() == token_to_id.size())`; `GGML_ASSERT(type != NONE)` | duplicate token texts; a model without vocabulary | the GGUF check |
//! | `llama_model_load` → hparams | `GGML_ASSERT(0 < n_layer <= 512)` | a model's `block_count` | the GGUF check |
//! | `llama_model_n_ctx_train` (llama-cpp-2) | panics on a negative value | a model's `context_length` above `i32::MAX` | the GGUF check |
//!
//! Each guard has a test below or in `tests/limits.rs`, `tests/guards.rs` and
//! `tests/hostile_models`.

use crate::error::{Error, Result};
use crate::limits::MAX_SLOTS;

/// Most tokens put through one decode step (`n_batch` and `n_ubatch` of every context).
pub(crate) const BATCH_SIZE: u32 = 512;

/// Every slot can add its next token to one step: the worker's room accounting never runs out
/// with sequences still waiting, and a step never needs more than `n_batch` tokens.
pub(crate) const BATCH_FITS_EVERY_SLOT: bool = MAX_SLOTS as u32 <= BATCH_SIZE;
const _: () = assert!(BATCH_FITS_EVERY_SLOT);

/// A sequence id llama.cpp's KV cache accepts: `0 <= seq < slots`.
pub(crate) fn seq_id(seq: i32, slots: usize) -> Result<i32> {
    if seq >= 0 && (seq as usize) < slots {
        Ok(seq)
    } else {
        Err(Error::internal(format!(
            "sequence id {seq} is outside the context's {slots} sequences"
        )))
    }
}

/// A batch index llama.cpp has logits for: one that was added with logits requested.
pub(crate) fn logits_index(at: Option<i32>, n_tokens: i32) -> Option<i32> {
    at.filter(|&i| (0..n_tokens).contains(&i))
}

/// Whether a batch holds anything to decode.
pub(crate) fn batch_has_tokens(n_tokens: i32) -> bool {
    n_tokens > 0
}

/// Whether `token` names an entry of a vocabulary of `n_vocab` tokens.
pub(crate) fn token_in_vocab(token: i32, n_vocab: i32) -> bool {
    (0..n_vocab).contains(&token)
}

/// Refuses a rendered prompt that could not fit the context whatever its tokens: every token
/// covers at most `max_token_bytes` bytes, so a longer text has more tokens than `context`.
/// Checked before tokenizing, which takes time in proportion to the text.
pub(crate) fn prompt_text_fits(
    text_bytes: usize,
    context: u32,
    max_token_bytes: usize,
) -> Result<()> {
    let most = (context as usize)
        .saturating_mul(max_token_bytes.max(1))
        .min(i32::MAX as usize);
    if text_bytes > most {
        return Err(Error::ContextLengthExceeded {
            context_length: context,
            requested: u32::try_from(text_bytes / max_token_bytes.max(1)).unwrap_or(u32::MAX),
            prompt_tokens: u32::try_from(text_bytes / max_token_bytes.max(1)).unwrap_or(u32::MAX),
            completion_tokens: 0,
            param: "messages",
        });
    }
    Ok(())
}

/// Refuses a prompt of no tokens (a chat template that renders nothing, for a model that adds
/// no BOS): there would be nothing to decode and no logits to sample from.
pub(crate) fn prompt_not_empty(tokens: usize) -> Result<()> {
    if tokens == 0 {
        return Err(Error::invalid(
            "messages",
            "The chat template rendered these messages to an empty prompt.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_ids_stay_inside_the_context() {
        assert_eq!(seq_id(0, 4).unwrap(), 0);
        assert_eq!(seq_id(3, 4).unwrap(), 3);
        for bad in [-1, 4, i32::MAX, i32::MIN] {
            let err = seq_id(bad, 4).unwrap_err();
            assert_eq!(err.status(), 500, "an internal error, not an abort");
        }
    }

    #[test]
    fn sampling_only_where_logits_exist() {
        assert_eq!(logits_index(Some(0), 1), Some(0));
        assert_eq!(logits_index(Some(4), 5), Some(4));
        assert_eq!(logits_index(Some(5), 5), None);
        assert_eq!(logits_index(Some(-1), 5), None);
        assert_eq!(logits_index(None, 5), None);
    }

    #[test]
    fn empty_batches_are_not_decoded() {
        assert!(!batch_has_tokens(0));
        assert!(batch_has_tokens(1));
    }

    #[test]
    fn tokens_outside_the_vocabulary_are_never_looked_up() {
        assert!(token_in_vocab(0, 10));
        assert!(!token_in_vocab(-1, 10), "LLAMA_TOKEN_NULL");
        assert!(!token_in_vocab(10, 10));
    }

    #[test]
    fn texts_too_long_for_any_context_are_refused_before_tokenizing() {
        prompt_text_fits(1000, 16, 64).unwrap();
        let err = prompt_text_fits(16 * 64 + 1, 16, 64).unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(err.code(), Some("context_length_exceeded"));
        assert_eq!(err.param(), Some("messages"));
        // Past llama.cpp's 32-bit text length, whatever the context.
        assert!(prompt_text_fits(i32::MAX as usize + 1, u32::MAX, usize::MAX).is_err());
    }

    #[test]
    fn empty_prompts_are_refused() {
        assert_eq!(prompt_not_empty(0).unwrap_err().param(), Some("messages"));
        prompt_not_empty(1).unwrap();
    }

    #[test]
    fn every_slot_fits_one_step() {
        // The room of a step, filled with one token per slot, never runs out.
        let room = BATCH_SIZE as usize;
        assert!(room.checked_sub(MAX_SLOTS).is_some());
    }
}
