//! A legacy text completion in progress: the chat engine's chunks of its choices (one per
//! prompt and `n`, prompt-major) turned into `text_completion` chunks, or gathered into one
//! `text_completion`. The generation itself is the chat path's; only the shape differs.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::api::{
    ChatCompletionChunk, Completion, CompletionChoice, CompletionLogprobs, TokenLogprob,
};
use crate::error::Result;
use crate::stream::ChatCompletionStream;

/// The chunks of one text completion. Dropping it cancels the generation.
pub struct CompletionStream {
    inner: ChatCompletionStream,
    /// What `echo` puts in front of each choice (empty strings without `echo`).
    echoes: Vec<String>,
    /// Whether chunks carry log probabilities.
    logprobs: bool,
    /// Characters of each choice's text so far, for `text_offset` (`echo` is never combined
    /// with `logprobs`, so the text is the generated tokens').
    offsets: Vec<u32>,
}

impl std::fmt::Debug for CompletionStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompletionStream")
            .field("id", &self.id())
            .finish()
    }
}

impl CompletionStream {
    pub(crate) fn new(inner: ChatCompletionStream, echoes: Vec<String>, logprobs: bool) -> Self {
        CompletionStream {
            offsets: vec![0; echoes.len()],
            inner,
            echoes,
            logprobs,
        }
    }

    /// The completion's ID (`cmpl-...`), shared by all its chunks.
    pub fn id(&self) -> &str {
        self.inner.id()
    }

    /// Polls for the next chunk; `None` after the last one.
    pub fn poll_next_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Completion>>> {
        loop {
            match self.inner.poll_next_chunk(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Some(chunk) = self.convert(chunk) {
                        return Poll::Ready(Some(Ok(chunk)));
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// A chat chunk as a completion chunk; `None` for the role-only opening of a choice
    /// that has no echo.
    fn convert(&mut self, chunk: ChatCompletionChunk) -> Option<Completion> {
        let mut choices = Vec::with_capacity(chunk.choices.len());
        for c in chunk.choices {
            let i = c.index as usize;
            let text = if c.delta.role.is_some() {
                // The opening of a choice: its echo, if any.
                let echo = std::mem::take(&mut self.echoes[i]);
                if echo.is_empty() {
                    continue;
                }
                echo
            } else {
                c.delta.content.unwrap_or_default()
            };
            let logprobs = self.logprobs.then(|| {
                let entries = c.logprobs.and_then(|l| l.content).unwrap_or_default();
                legacy_logprobs(entries, &mut self.offsets[i])
            });
            choices.push(CompletionChoice {
                index: c.index,
                text,
                logprobs,
                finish_reason: c.finish_reason,
            });
        }
        if choices.is_empty() && chunk.usage.is_none() {
            return None;
        }
        Some(Completion {
            id: chunk.id,
            object: Completion::OBJECT.into(),
            created: chunk.created,
            model: chunk.model,
            choices,
            usage: chunk.usage,
        })
    }

    /// The next chunk, waiting as long as needed.
    pub async fn next_chunk(&mut self) -> Option<Result<Completion>> {
        std::future::poll_fn(|cx| self.poll_next_chunk(cx)).await
    }

    /// Gathers the rest of the stream into one [`Completion`].
    pub async fn collect(mut self) -> Result<Completion> {
        let mut chunks = Vec::new();
        while let Some(chunk) = self.next_chunk().await {
            chunks.push(chunk?);
        }
        let first = Completion {
            id: self.id().to_owned(),
            object: Completion::OBJECT.into(),
            created: chunks.first().map_or(0, |c| c.created),
            model: chunks.first().map_or_else(String::new, |c| c.model.clone()),
            choices: Vec::new(),
            usage: None,
        };
        let mut whole = Completion::gather(&first, self.echoes.len(), chunks);
        if self.logprobs {
            for choice in &mut whole.choices {
                choice.logprobs.get_or_insert_with(Default::default);
            }
        }
        whole.usage = Some(self.inner.usage());
        Ok(whole)
    }

    /// Gathers the rest of the stream, blocking the calling thread.
    pub fn collect_blocking(self) -> Result<Completion> {
        crate::wait::block_on(self.collect())
    }
}

impl futures_core::Stream for CompletionStream {
    type Item = Result<Completion>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_chunk(cx)
    }
}

/// Chat-shaped token entries in the legacy shape. Each position's `top_logprobs` holds the
/// most likely tokens and the chosen one (so up to `logprobs` + 1, as OpenAI documents).
fn legacy_logprobs(entries: Vec<TokenLogprob>, offset: &mut u32) -> CompletionLogprobs {
    let mut out = CompletionLogprobs::default();
    for entry in entries {
        let mut top: BTreeMap<String, f32> = entry
            .top_logprobs
            .into_iter()
            .map(|t| (t.token, t.logprob))
            .collect();
        top.entry(entry.token.clone()).or_insert(entry.logprob);
        out.text_offset.push(*offset);
        *offset += entry.token.chars().count() as u32;
        out.tokens.push(entry.token);
        out.token_logprobs.push(entry.logprob);
        out.top_logprobs.push(top);
    }
    out
}
