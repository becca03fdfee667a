//! A chat completion in progress: the per-choice event streams of the instances turned into
//! OpenAI `chat.completion.chunk`s, or gathered into one `chat.completion`.
//! Dropping it cancels generation: the instance sees the closed channel within one step.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc::UnboundedReceiver;

use crate::api::{
    AssistantMessage, ChatCompletion, ChatCompletionChunk, Choice, ChoiceLogprobs, ChunkChoice,
    Delta, FinishReason, FunctionCall, FunctionCallDelta, Role, ToolCall, ToolCallDelta, ToolKind,
    Usage,
};
use crate::error::{Error, Result};
use crate::instance::Event;
use crate::metrics::RequestTimer;
use crate::tool_calling::{Parsed, ToolParser, ToolReading};

struct ChoiceStream {
    events: UnboundedReceiver<Event>,
    finished: bool,
    /// Prompt tokens its sequence took from the KV cache (known once it finished).
    cached_tokens: u32,
    /// Reads tool calls out of the text, when the request offers tools.
    tools: Option<ToolParser>,
    /// Calls emitted so far.
    calls: u32,
}

/// The chunks of one chat completion. Implements [`futures_core::Stream`]; also usable from
/// blocking code with [`ChatCompletionStream::next_blocking`].
pub struct ChatCompletionStream {
    id: String,
    created: u64,
    model: String,
    prompt_tokens: u32,
    completion_tokens: u32,
    /// Consecutive choices that answer the same prompt (`n`): a legacy completion's prompts
    /// each have `n` choices, prompt-major.
    choices_per_prompt: usize,
    include_usage: bool,
    /// Whether chunks carry log probabilities (`logprobs: true` in the request).
    logprobs: bool,
    choices: Vec<ChoiceStream>,
    ready: VecDeque<ChatCompletionChunk>,
    done: bool,
    /// A named `tool_choice`: a call then finishes with `stop`, as OpenAI reports it.
    named_tool: bool,
    /// The service's clock on this request (first token, outcome, latency).
    timer: Option<RequestTimer>,
}

impl std::fmt::Debug for ChatCompletionStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatCompletionStream")
            .field("id", &self.id)
            .field("model", &self.model)
            .finish()
    }
}

impl ChatCompletionStream {
    pub(crate) fn new(
        id: String,
        created: u64,
        model: String,
        prompt_tokens: u32,
        include_usage: bool,
        logprobs: bool,
        receivers: Vec<UnboundedReceiver<Event>>,
    ) -> Self {
        let mut stream = ChatCompletionStream {
            id,
            created,
            model,
            prompt_tokens,
            completion_tokens: 0,
            choices_per_prompt: receivers.len().max(1),
            include_usage,
            logprobs,
            choices: receivers
                .into_iter()
                .map(|events| ChoiceStream {
                    events,
                    finished: false,
                    cached_tokens: 0,
                    tools: None,
                    calls: 0,
                })
                .collect(),
            ready: VecDeque::new(),
            done: false,
            named_tool: false,
            timer: None,
        };
        // As OpenAI does, every choice opens with a delta that carries the role.
        for index in 0..stream.choices.len() as u32 {
            let delta = Delta {
                role: Some(Role::Assistant),
                content: Some(String::new()),
                ..Delta::default()
            };
            let chunk = stream.chunk(index, delta, None);
            stream.ready.push_back(chunk);
        }
        stream
    }

    /// Reads each choice's text for tool calls (a request with tools in use).
    pub(crate) fn with_tools(mut self, reading: Option<&ToolReading>) -> Self {
        if let Some(reading) = reading {
            for choice in &mut self.choices {
                choice.tools = Some(reading.parser());
            }
            self.named_tool = reading.named;
        }
        self
    }

    /// Queues the chunks of parsed text: content deltas, for each call a delta that opens it
    /// (id, type, name, empty arguments), then deltas with its argument fragments.
    fn emit_parsed(&mut self, index: u32, parsed: Vec<Parsed>) {
        for item in parsed {
            let delta = match item {
                Parsed::Content(text) => Delta {
                    content: Some(text),
                    ..Delta::default()
                },
                Parsed::CallStart(name) => {
                    let choice = &mut self.choices[index as usize];
                    let call_index = choice.calls;
                    choice.calls += 1;
                    Delta {
                        tool_calls: Some(vec![ToolCallDelta {
                            index: call_index,
                            id: Some(crate::ids::tool_call_id()),
                            kind: Some(ToolKind::Function),
                            function: Some(FunctionCallDelta {
                                name: Some(name),
                                arguments: Some(String::new()),
                            }),
                        }]),
                        ..Delta::default()
                    }
                }
                Parsed::CallArgs(fragment) => Delta {
                    tool_calls: Some(vec![ToolCallDelta {
                        index: self.choices[index as usize].calls.saturating_sub(1),
                        function: Some(FunctionCallDelta {
                            name: None,
                            arguments: Some(fragment),
                        }),
                        ..ToolCallDelta::default()
                    }]),
                    ..Delta::default()
                },
            };
            let chunk = self.chunk(index, delta, None);
            self.ready.push_back(chunk);
        }
    }

    /// The same stream, reporting its first token, outcome and latency to `timer`.
    pub(crate) fn timed(mut self, timer: RequestTimer) -> Self {
        self.timer = Some(timer);
        self
    }

    /// Reports the request's outcome to its timer, if it has one.
    fn finish_timer(&mut self, status: u16) {
        if let Some(timer) = &mut self.timer {
            timer.finish(status);
        }
    }

    /// The completion's ID (`chatcmpl-...`), shared by all its chunks.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Tokens in the rendered prompt.
    pub fn prompt_tokens(&self) -> u32 {
        self.prompt_tokens
    }

    /// Says that each of the prompts has `n` consecutive choices (a legacy completion).
    pub(crate) fn with_choices_per_prompt(mut self, n: usize) -> Self {
        self.choices_per_prompt = n.max(1);
        self
    }

    /// The request's usage. A prompt's cached tokens are those none of its choices decoded: with
    /// `n` > 1 one sequence decodes the prompt and the others copy it, which is not a cache hit.
    pub(crate) fn usage(&self) -> Usage {
        let cached = self
            .choices
            .chunks(self.choices_per_prompt)
            .map(|same| same.iter().map(|c| c.cached_tokens).min().unwrap_or(0))
            .sum();
        Usage::new(self.prompt_tokens, self.completion_tokens, cached)
    }

    fn chunk(
        &self,
        index: u32,
        delta: Delta,
        finish_reason: Option<FinishReason>,
    ) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: ChatCompletionChunk::OBJECT.into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index,
                delta,
                finish_reason,
                logprobs: None,
            }],
            usage: None,
        }
    }

    /// Polls for the next chunk; `None` after the last one.
    pub fn poll_next_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<ChatCompletionChunk>>> {
        loop {
            if let Some(chunk) = self.ready.pop_front() {
                return Poll::Ready(Some(Ok(chunk)));
            }
            if self.done {
                return Poll::Ready(None);
            }
            let mut pending = false;
            let mut progressed = false;
            for index in 0..self.choices.len() {
                if self.choices[index].finished {
                    continue;
                }
                match self.choices[index].events.poll_recv(cx) {
                    Poll::Pending => pending = true,
                    Poll::Ready(event) => {
                        progressed = true;
                        match self.on_event(index as u32, event) {
                            Ok(()) => {}
                            Err(e) => {
                                self.done = true;
                                self.finish_timer(e.status());
                                return Poll::Ready(Some(Err(e)));
                            }
                        }
                        break;
                    }
                }
            }
            if progressed {
                continue;
            }
            if pending {
                return Poll::Pending;
            }
            // Every choice has finished.
            self.done = true;
            self.finish_timer(200);
            if self.include_usage {
                let mut chunk = self.chunk(0, Delta::default(), None);
                chunk.choices.clear();
                chunk.usage = Some(self.usage());
                self.ready.push_back(chunk);
            }
        }
    }

    fn on_event(&mut self, index: u32, event: Option<Event>) -> Result<()> {
        match event {
            Some(Event::Text { text, logprobs }) => {
                if let Some(timer) = &mut self.timer {
                    timer.output();
                }
                if let Some(parser) = self.choices[index as usize].tools.as_mut() {
                    let parsed = parser.push(&text);
                    self.emit_parsed(index, parsed);
                    return Ok(());
                }
                let mut chunk = self.chunk(
                    index,
                    Delta {
                        content: Some(text),
                        ..Delta::default()
                    },
                    None,
                );
                if self.logprobs {
                    chunk.choices[0].logprobs = Some(ChoiceLogprobs {
                        content: Some(logprobs),
                        refusal: None,
                    });
                }
                self.ready.push_back(chunk);
                Ok(())
            }
            Some(Event::Done {
                finish,
                completion_tokens,
                cached_tokens,
            }) => {
                let choice = &mut self.choices[index as usize];
                choice.finished = true;
                choice.cached_tokens = cached_tokens;
                let rest = choice.tools.as_mut().map(ToolParser::finish);
                self.emit_parsed(index, rest.unwrap_or_default());
                self.completion_tokens += completion_tokens;
                let called = self.choices[index as usize].calls > 0;
                let finish = match finish {
                    FinishReason::Stop if called && !self.named_tool => FinishReason::ToolCalls,
                    other => other,
                };
                let chunk = self.chunk(index, Delta::default(), Some(finish));
                self.ready.push_back(chunk);
                Ok(())
            }
            Some(Event::Failed(e)) => Err(e),
            None => Err(Error::internal(
                "the instance serving this request stopped before it finished",
            )),
        }
    }

    /// The next chunk, waiting as long as needed.
    pub async fn next_chunk(&mut self) -> Option<Result<ChatCompletionChunk>> {
        std::future::poll_fn(|cx| self.poll_next_chunk(cx)).await
    }

    /// The next chunk, blocking the calling thread (not for use inside an async runtime).
    pub fn next_blocking(&mut self) -> Option<Result<ChatCompletionChunk>> {
        crate::wait::block_on(self.next_chunk())
    }

    /// Like [`next_blocking`](Self::next_blocking), but gives up after `timeout` with
    /// `Poll::Pending`, so a binding can check for signals (Ctrl-C) while it waits.
    pub fn next_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> Poll<Option<Result<ChatCompletionChunk>>> {
        crate::wait::poll_for(|cx| self.poll_next_chunk(cx), Some(timeout))
    }

    /// Gathers the rest of the stream into one [`ChatCompletion`].
    pub async fn collect(mut self) -> Result<ChatCompletion> {
        let mut gather = Gather::new(self.choices.len(), self.logprobs);
        while let Some(chunk) = self.next_chunk().await {
            gather.add(chunk?);
        }
        Ok(gather.finish(&self))
    }

    /// Gathers the rest of the stream, blocking the calling thread.
    pub fn collect_blocking(self) -> Result<ChatCompletion> {
        crate::wait::block_on(self.collect())
    }
}

impl futures_core::Stream for ChatCompletionStream {
    type Item = Result<ChatCompletionChunk>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_chunk(cx)
    }
}

/// Builds a [`ChatCompletion`] from chunks, so streamed and whole answers are the same text.
struct Gather {
    content: Vec<String>,
    /// Each choice's tool calls, built from their deltas.
    calls: Vec<Vec<ToolCall>>,
    finish: Vec<FinishReason>,
    /// Each choice's log probabilities, when asked for.
    logprobs: Vec<Option<ChoiceLogprobs>>,
}

impl Gather {
    fn new(n: usize, logprobs: bool) -> Self {
        Gather {
            content: vec![String::new(); n],
            calls: vec![Vec::new(); n],
            finish: vec![FinishReason::Stop; n],
            logprobs: vec![logprobs.then(ChoiceLogprobs::empty); n],
        }
    }

    fn add(&mut self, chunk: ChatCompletionChunk) {
        for c in chunk.choices {
            let i = c.index as usize;
            if let Some(text) = c.delta.content {
                self.content[i].push_str(&text);
            }
            for delta in c.delta.tool_calls.into_iter().flatten() {
                let function = delta.function.unwrap_or_default();
                let fragment = function.arguments.unwrap_or_default();
                match delta.id {
                    Some(id) => self.calls[i].push(ToolCall {
                        id,
                        kind: ToolKind::Function,
                        function: FunctionCall {
                            name: function.name.unwrap_or_default(),
                            arguments: fragment,
                        },
                    }),
                    None => {
                        if let Some(call) = self.calls[i].get_mut(delta.index as usize) {
                            call.function.arguments.push_str(&fragment);
                        }
                    }
                }
            }
            if let (
                Some(all),
                Some(ChoiceLogprobs {
                    content: Some(new), ..
                }),
            ) = (self.logprobs[i].as_mut(), c.logprobs)
            {
                all.content.get_or_insert_with(Vec::new).extend(new);
            }
            if let Some(f) = c.finish_reason {
                self.finish[i] = f;
            }
        }
    }

    fn finish(self, stream: &ChatCompletionStream) -> ChatCompletion {
        ChatCompletion {
            id: stream.id.clone(),
            object: ChatCompletion::OBJECT.into(),
            created: stream.created,
            model: stream.model.clone(),
            choices: self
                .content
                .into_iter()
                .zip(self.calls)
                .zip(self.finish)
                .zip(self.logprobs)
                .enumerate()
                .map(
                    |(i, (((content, calls), finish_reason), logprobs))| Choice {
                        index: i as u32,
                        message: AssistantMessage {
                            role: Role::Assistant,
                            // OpenAI sends null content beside calls.
                            content: (!content.is_empty() || calls.is_empty()).then_some(content),
                            tool_calls: (!calls.is_empty()).then_some(calls),
                        },
                        finish_reason,
                        logprobs,
                    },
                )
                .collect(),
            usage: stream.usage(),
        }
    }
}
