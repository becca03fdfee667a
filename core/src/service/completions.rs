//! Legacy text completions on a service: each prompt tokenized as given (no chat template) and
//! checked against the context. Its sequences then run on the chat pool exactly as a chat
//! request's do (`Service::submit`).

use llama_cpp_2::token::LlamaToken;

use super::{Prepared, Service};
use crate::api::{CompletionRequest, PromptInput, ServiceKind, DEFAULT_COMPLETION_MAX_TOKENS};
use crate::error::{Error, Result};
use crate::guards;

/// One prompt of a completion request, ready to be queued.
pub(crate) struct PreparedPrompt {
    pub prepared: Prepared,
    /// What `echo` puts in front of each of its choices ("" without `echo`).
    pub echo: String,
}

impl Service {
    /// Tokenizes and checks every prompt of a (validated) completion request.
    pub(crate) fn prepare_completion(
        &self,
        req: &CompletionRequest,
    ) -> Result<Vec<PreparedPrompt>> {
        self.expect_kind(ServiceKind::Chat)?;
        req.prompt
            .inputs()
            .into_iter()
            .map(|input| self.prepare_prompt(req, input))
            .collect()
    }

    fn prepare_prompt(
        &self,
        req: &CompletionRequest,
        input: PromptInput<'_>,
    ) -> Result<PreparedPrompt> {
        let (tokens, echo) = match input {
            PromptInput::Text(text) => {
                guards::prompt_text_fits(text.len(), self.slot_context, self.max_token_bytes)
                    .map_err(blame_prompt)?;
                let echo = if req.echoes() {
                    text.to_owned()
                } else {
                    String::new()
                };
                (self.tokenize(text), echo)
            }
            PromptInput::Tokens(ids) => {
                let tokens = self.prompt_tokens(ids)?;
                let echo = if req.echoes() {
                    self.detokenize(&tokens)
                } else {
                    String::new()
                };
                (tokens, echo)
            }
        };
        if tokens.is_empty() {
            return Err(Error::invalid("prompt", "A prompt tokenized to no tokens."));
        }
        let budget =
            self.completion_budget(tokens.len() as u32, req.max_tokens, "prompt", "max_tokens")?;
        // Without `max_tokens` the default of 16 applies, shortened where the context ends.
        let max_tokens = match req.max_tokens {
            Some(_) => budget,
            None => budget.min(DEFAULT_COMPLETION_MAX_TOKENS),
        };
        Ok(PreparedPrompt {
            prepared: Prepared {
                prompt: tokens.into(),
                max_tokens,
                grammar: None,
                tool_grammar: None,
                tool_reading: None,
                visible_tokens: Vec::new(),
            },
            echo,
        })
    }

    /// Token ids given as the prompt, each checked against the vocabulary (llama.cpp refuses
    /// or asserts on an id outside it).
    fn prompt_tokens(&self, ids: &[u32]) -> Result<Vec<LlamaToken>> {
        let n_vocab = self.model.n_vocab();
        ids.iter()
            .map(|&id| {
                i32::try_from(id)
                    .ok()
                    .filter(|&t| guards::token_in_vocab(t, n_vocab))
                    .map(LlamaToken)
                    .ok_or_else(|| {
                        Error::invalid(
                            "prompt",
                            format!("Token id {id} is not in the model's vocabulary of {n_vocab} tokens."),
                        )
                    })
            })
            .collect()
    }

    /// The text of prompt tokens, special tokens included (what `echo` shows for token ids).
    fn detokenize(&self, tokens: &[LlamaToken]) -> String {
        let vocab = self.model.vocab();
        let bytes: Vec<u8> = tokens
            .iter()
            .flat_map(|&t| vocab.token_to_piece(t, true, None))
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A too-long prompt is blamed on `prompt` (the shared check speaks of chat `messages`).
fn blame_prompt(error: Error) -> Error {
    match error {
        Error::ContextLengthExceeded {
            context_length,
            requested,
            prompt_tokens,
            completion_tokens,
            ..
        } => Error::ContextLengthExceeded {
            context_length,
            requested,
            prompt_tokens,
            completion_tokens,
            param: "prompt",
        },
        other => other,
    }
}
