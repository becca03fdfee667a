//! `/v1/completions` (legacy text completions): request, response and streaming chunk.
//!
//! The prompt is tokenized as given, with no chat template. Sampling, stop sequences and log
//! probabilities mean what they mean for chat completions, and the request is validated through
//! the chat request's own checks ([`CompletionRequest::sampling_view`]) so both name the same
//! fields the same way.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::chat::{ChatCompletionRequest, FinishReason, StopSequences, StreamOptions, Usage};
use crate::error::{Error, Result};

/// Most alternatives the legacy integer `logprobs` may ask for, as OpenAI allows.
pub const MAX_COMPLETION_LOGPROBS: u32 = 5;

/// Most prompts one request may carry (each gets `n` choices).
pub const MAX_PROMPTS: usize = 64;

/// `max_tokens` when a request leaves it out, as OpenAI defines it for this endpoint.
pub const DEFAULT_COMPLETION_MAX_TOKENS: u32 = 16;

/// What to complete: a string, strings, one token-id array, or token-id arrays. Token ids are
/// decoded as given (no BOS is added to them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "a string, an array of strings, an array of token ids, or an array of token-id arrays"
)]
pub enum CompletionPrompt {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

/// One prompt of a request, as the engine takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptInput<'a> {
    Text(&'a str),
    Tokens(&'a [u32]),
}

impl CompletionPrompt {
    /// The prompts, in order (a batch gives choices prompt-major, then by `n`).
    pub fn inputs(&self) -> Vec<PromptInput<'_>> {
        match self {
            CompletionPrompt::Text(s) => vec![PromptInput::Text(s)],
            CompletionPrompt::Texts(v) => v.iter().map(|s| PromptInput::Text(s)).collect(),
            CompletionPrompt::Tokens(t) => vec![PromptInput::Tokens(t)],
            CompletionPrompt::TokenLists(v) => v.iter().map(|t| PromptInput::Tokens(t)).collect(),
        }
    }
}

impl From<&str> for CompletionPrompt {
    fn from(s: &str) -> Self {
        CompletionPrompt::Text(s.to_owned())
    }
}

impl From<Vec<&str>> for CompletionPrompt {
    fn from(v: Vec<&str>) -> Self {
        CompletionPrompt::Texts(v.into_iter().map(str::to_owned).collect())
    }
}

/// The body of `POST /v1/completions`. Unknown fields are refused, as OpenAI refuses them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompletionRequest {
    /// The service's access name, e.g. `u-8105f7322477/test`.
    pub model: String,
    pub prompt: CompletionPrompt,
    /// Default 16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Must equal `n` when given: candidates are not ranked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_of: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Log probabilities of each output token and of the 0 to 5 most likely tokens there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u32>,
    /// Put the prompt in front of the completion (not together with `logprobs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopSequences>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    /// Token id (as a string, as in OpenAI's JSON) to a bias from -100 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<BTreeMap<String, f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Text after the insertion point: refused, the models served do not fill in the middle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// llama.cpp extra: keep only the k most likely tokens (0 disables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i32>,
    /// llama.cpp extra: drop tokens below `min_p` times the top probability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f32>,
    /// llama.cpp extra: multiplicative penalty on repeated tokens (1.0 disables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f32>,
}

impl CompletionRequest {
    /// A request for `model` with this prompt and every other field at its default.
    pub fn new(model: impl Into<String>, prompt: impl Into<CompletionPrompt>) -> Self {
        CompletionRequest {
            model: model.into(),
            prompt: prompt.into(),
            max_tokens: None,
            temperature: None,
            top_p: None,
            n: None,
            best_of: None,
            stream: None,
            stream_options: None,
            logprobs: None,
            echo: None,
            stop: None,
            presence_penalty: None,
            frequency_penalty: None,
            logit_bias: None,
            seed: None,
            suffix: None,
            user: None,
            top_k: None,
            min_p: None,
            repeat_penalty: None,
        }
    }

    /// Parses a JSON body; a malformed field is reported with its path as `param`.
    pub fn from_json(json: &str) -> Result<Self> {
        super::from_json(json, "request body")
    }

    /// Whether the prompt goes in front of each choice's text.
    pub fn echoes(&self) -> bool {
        self.echo == Some(true)
    }

    /// The same sampling, stop, choice and log-probability settings as a chat request (with
    /// no messages): what the engine and the chat request's checks take.
    pub fn sampling_view(&self) -> ChatCompletionRequest {
        ChatCompletionRequest {
            model: self.model.clone(),
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens: self.max_tokens,
            stop: self.stop.clone(),
            seed: self.seed,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            logit_bias: self.logit_bias.clone(),
            n: self.n,
            user: self.user.clone(),
            stream: self.stream,
            stream_options: self.stream_options.clone(),
            top_k: self.top_k,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            logprobs: self.logprobs.map(|_| true),
            top_logprobs: self.logprobs,
            ..Default::default()
        }
    }

    /// Checks every parameter's value; the error names the first one at fault.
    pub fn validate(&self) -> Result<()> {
        if self.model.trim().is_empty() {
            return Err(Error::invalid(
                "model",
                "`model` must name a deployed service's access name.",
            ));
        }
        self.validate_prompt()?;
        if let Some(k) = self.logprobs {
            if k > MAX_COMPLETION_LOGPROBS {
                return Err(Error::invalid(
                    "logprobs",
                    format!("`logprobs` must be between 0 and {MAX_COMPLETION_LOGPROBS}, got {k}."),
                ));
            }
            if self.echoes() {
                return Err(Error::invalid(
                    "echo",
                    "`echo` together with `logprobs` is not supported: the prompt tokens' log probabilities are not computed.",
                ));
            }
        }
        if self.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(Error::invalid(
                "suffix",
                "`suffix` is not supported: the models served do not insert text between a prompt and a suffix.",
            ));
        }
        let n = self.n.unwrap_or(1);
        if let Some(best_of) = self.best_of {
            if best_of != n {
                return Err(Error::invalid(
                    "best_of",
                    format!("`best_of` must equal `n` ({n}): generating extra candidates and ranking them is not supported, got {best_of}."),
                ));
            }
        }
        let view = self.sampling_view();
        view.validate_sampling()?;
        view.validate_limits()
    }

    /// One to [`MAX_PROMPTS`] prompts, none of them empty.
    fn validate_prompt(&self) -> Result<()> {
        let inputs = self.prompt.inputs();
        if inputs.is_empty() || inputs.len() > MAX_PROMPTS {
            return Err(Error::invalid(
                "prompt",
                format!(
                    "`prompt` must hold 1 to {MAX_PROMPTS} prompts, got {}.",
                    inputs.len()
                ),
            ));
        }
        let empty = inputs.iter().position(|p| match p {
            PromptInput::Text(s) => s.is_empty(),
            PromptInput::Tokens(t) => t.is_empty(),
        });
        if let Some(i) = empty {
            return Err(Error::invalid(
                "prompt",
                format!("`prompt` item {i} is empty; every prompt must have content."),
            ));
        }
        Ok(())
    }
}

/// A choice's log probabilities in the legacy shape: one entry per output token in each list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CompletionLogprobs {
    /// Each token's text.
    pub tokens: Vec<String>,
    /// Each token's log probability.
    pub token_logprobs: Vec<f32>,
    /// At each position, the most likely tokens (and the chosen one) by text.
    pub top_logprobs: Vec<BTreeMap<String, f32>>,
    /// Where each token starts in the choice's text, in characters.
    pub text_offset: Vec<u32>,
}

impl CompletionLogprobs {
    fn extend(&mut self, more: CompletionLogprobs) {
        self.tokens.extend(more.tokens);
        self.token_logprobs.extend(more.token_logprobs);
        self.top_logprobs.extend(more.top_logprobs);
        self.text_offset.extend(more.text_offset);
    }
}

/// One generated text; in a stream, one piece of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CompletionChoice {
    /// Prompt-major: choice `j` of prompt `i` has index `i * n + j`.
    pub index: u32,
    pub text: String,
    /// Set when the request asked for `logprobs`.
    pub logprobs: Option<CompletionLogprobs>,
    /// Set once the choice has ended (null on the chunks before).
    pub finish_reason: Option<FinishReason>,
}

/// A text completion (`text_completion`), and each chunk of a streamed one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Completion {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<CompletionChoice>,
    /// Always set on a whole completion; on a stream, only on the final chunk when
    /// `stream_options.include_usage` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl Completion {
    pub const OBJECT: &'static str = "text_completion";

    /// Gathers the chunks of a stream into the whole completion (`choices` choices): the
    /// texts and log probabilities concatenated, the last finish reason and the usage kept.
    pub fn gather(
        first: &Completion,
        choices: usize,
        chunks: impl IntoIterator<Item = Completion>,
    ) -> Completion {
        let mut whole = Completion {
            choices: (0..choices as u32)
                .map(|index| CompletionChoice {
                    index,
                    text: String::new(),
                    logprobs: None,
                    finish_reason: None,
                })
                .collect(),
            usage: None,
            ..first.clone()
        };
        for chunk in chunks {
            for c in chunk.choices {
                let Some(choice) = whole.choices.get_mut(c.index as usize) else {
                    continue;
                };
                choice.text.push_str(&c.text);
                if let Some(more) = c.logprobs {
                    choice
                        .logprobs
                        .get_or_insert_with(Default::default)
                        .extend(more);
                }
                if c.finish_reason.is_some() {
                    choice.finish_reason = c.finish_reason;
                }
            }
            if chunk.usage.is_some() {
                whole.usage = chunk.usage;
            }
        }
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<CompletionRequest> {
        CompletionRequest::from_json(json)
    }

    #[test]
    fn prompts_of_every_shape() {
        for (json, count) in [
            (r#""a""#, 1),
            (r#"["a","b","c"]"#, 3),
            ("[1,2,3]", 1),
            ("[[1],[2,3]]", 2),
        ] {
            let req = parse(&format!(r#"{{"model":"m","prompt":{json}}}"#)).unwrap();
            req.validate().unwrap();
            assert_eq!(req.prompt.inputs().len(), count, "{json}");
        }
        let err = parse(r#"{"model":"m","prompt":{"text":"a"}}"#).unwrap_err();
        assert_eq!(err.param(), Some("prompt"));
        let err = parse(r#"{"model":"m","prompt":[]}"#)
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err.param(), Some("prompt"));
        let err = parse(r#"{"model":"m","prompt":["a",""]}"#)
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err.param(), Some("prompt"));
    }

    #[test]
    fn unserved_and_out_of_range_values_name_their_field() {
        for (extra, param) in [
            (r#""suffix":"end""#, "suffix"),
            (r#""best_of":3"#, "best_of"),
            (r#""n":2,"best_of":3"#, "best_of"),
            (r#""echo":true,"logprobs":1"#, "echo"),
            (r#""logprobs":6"#, "logprobs"),
            (r#""temperature":3"#, "temperature"),
            (r#""n":17"#, "n"),
            (r#""max_tokens":0"#, "max_tokens"),
            (
                r#""stream_options":{"include_usage":true}"#,
                "stream_options",
            ),
            (r#""logit_bias":{"x":1}"#, "logit_bias"),
        ] {
            let req = parse(&format!(r#"{{"model":"m","prompt":"a",{extra}}}"#)).unwrap();
            assert_eq!(req.validate().unwrap_err().param(), Some(param), "{extra}");
        }
        let err = parse(r#"{"model":"m","prompt":"a","messages":[]}"#).unwrap_err();
        assert_eq!(err.param(), Some("messages"));
        let ok = parse(
            r#"{"model":"m","prompt":"a","n":2,"best_of":2,"echo":true,"suffix":"","logprobs":null}"#,
        )
        .unwrap();
        ok.validate().unwrap();
    }

    #[test]
    fn chunks_gather_into_the_whole_completion() {
        let chunk = |index, text: &str, finish| Completion {
            id: "cmpl-1".into(),
            object: Completion::OBJECT.into(),
            created: 1,
            model: "m".into(),
            choices: vec![CompletionChoice {
                index,
                text: text.into(),
                logprobs: None,
                finish_reason: finish,
            }],
            usage: None,
        };
        let chunks = vec![
            chunk(1, "b", None),
            chunk(0, "a", None),
            chunk(0, "c", Some(FinishReason::Length)),
            chunk(1, "", Some(FinishReason::Stop)),
        ];
        let whole = Completion::gather(&chunks[0].clone(), 2, chunks);
        assert_eq!(whole.choices[0].text, "ac");
        assert_eq!(whole.choices[1].text, "b");
        assert_eq!(whole.choices[0].finish_reason, Some(FinishReason::Length));
    }
}
