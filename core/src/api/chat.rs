//! `/v1/chat/completions`: request, response and streaming chunk.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::tools::{Tool, ToolCall, ToolCallDelta, ToolChoice};
use crate::error::{Error, Result};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

impl Role {
    /// The role name as templates and the wire see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One content part of a message given as an array. Only `text` parts are served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A message's content: a string, or an array of parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl MessageContent {
    /// The text of the content; parts are joined without separator, as OpenAI does.
    pub fn text(&self) -> String {
        match self {
            MessageContent::Text(s) => s.clone(),
            MessageContent::Parts(parts) => {
                parts.iter().filter_map(|p| p.text.as_deref()).collect()
            }
        }
    }
}

impl From<&str> for MessageContent {
    fn from(s: &str) -> Self {
        MessageContent::Text(s.to_owned())
    }
}

impl From<String> for MessageContent {
    fn from(s: String) -> Self {
        MessageContent::Text(s)
    }
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatMessage {
    pub role: Role,
    #[serde(default)]
    pub content: Option<MessageContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The calls an assistant turn made; rendered back into the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// On a `tool` message: the call this result answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A message with a role and text content.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: Some(MessageContent::Text(content.into())),
            name: None,
            tool_calls: None,
            tool_call_id: None,
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
    /// An assistant turn that made these calls (no text).
    pub fn assistant_tool_calls(calls: Vec<ToolCall>) -> Self {
        ChatMessage {
            content: None,
            tool_calls: Some(calls),
            ..Self::new(Role::Assistant, "")
        }
    }
    /// The result of call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            tool_call_id: Some(tool_call_id.into()),
            ..Self::new(Role::Tool, content)
        }
    }
    /// The message text ("" when content is null).
    pub fn text(&self) -> String {
        self.content
            .as_ref()
            .map(MessageContent::text)
            .unwrap_or_default()
    }
}

/// `stop`: one string or a list of up to 4.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StopSequences {
    One(String),
    Many(Vec<String>),
}

impl StopSequences {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            StopSequences::One(s) => vec![s.clone()],
            StopSequences::Many(v) => v.clone(),
        }
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// The body of `POST /v1/chat/completions`. Unknown fields are refused, as OpenAI refuses them.
/// OpenAI parameters the engine does not implement yet are declared (as raw JSON) so that their
/// no-op values (`tools: []`, `response_format: {"type": "text"}` ...) pass and any other value
/// is refused with a 400 naming the parameter, never silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatCompletionRequest {
    /// The service's access name, e.g. `u-8105f7322477/test`.
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopSequences>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    /// Token id (as a string, as in OpenAI's JSON) to a bias from -100 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<BTreeMap<String, f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// llama.cpp extra: keep only the k most likely tokens (0 disables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i32>,
    /// llama.cpp extra: drop tokens below `min_p` times the top probability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f32>,
    /// llama.cpp extra: multiplicative penalty on repeated tokens (1.0 disables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f32>,
    /// Return the log probability of each output token (from the model's distribution before
    /// sampling, as llama.cpp's `n_probs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    /// With `logprobs`: also the 0 to 20 most likely tokens at each position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    /// `text` (the default), `json_object` (any JSON object) or `json_schema` (JSON valid
    /// against a schema): enforced by a grammar while sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// Functions the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// `none`, `auto` (the default with tools), `required`, or one named function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether one answer may make several calls (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,

    // OpenAI parameters accepted only in their no-op form (`functions: []`, `audio: null`
    // ...): a value that would change the answer on OpenAI is refused by `validate` with a
    // 400 naming it, never ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modalities: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_search_options: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_retention: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_identifier: Option<String>,
}

impl ChatCompletionRequest {
    /// Refuses every value of an OpenAI-only parameter that would change the answer on OpenAI.
    fn validate_openai_only(&self) -> Result<()> {
        use serde_json::Value;
        let empty = |v: &Option<Value>| match v {
            None | Some(Value::Null) => true,
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            _ => false,
        };
        let refuse = |param: &str, what: &str| -> Result<()> {
            Err(Error::invalid(
                param,
                format!("`{param}`: {what} is not supported by this server yet."),
            ))
        };
        if !empty(&self.functions) || !empty(&self.function_call) {
            return refuse("functions", "function calling");
        }
        if let Some(m) = &self.modalities {
            if m.iter().any(|m| m != "text") {
                return refuse("modalities", "an output modality other than `text`");
            }
        }
        if !empty(&self.audio) {
            return refuse("audio", "audio output");
        }
        if !empty(&self.prediction) {
            return refuse("prediction", "predicted output");
        }
        if self.reasoning_effort.is_some() {
            return refuse(
                "reasoning_effort",
                "reasoning effort (these are not reasoning models)",
            );
        }
        if self.verbosity.is_some() {
            return refuse("verbosity", "a verbosity setting");
        }
        if !empty(&self.web_search_options) {
            return refuse("web_search_options", "web search");
        }
        if self.store == Some(true) {
            return refuse("store", "storing completions");
        }
        Ok(())
    }
}

/// `response_format`: what shape the answer must have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON valid against `json_schema.schema`.
    JsonSchema { json_schema: JsonSchemaFormat },
}

/// The schema of a `json_schema` response format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonSchemaFormat {
    /// `^[a-zA-Z0-9_-]{1,64}$`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A JSON Schema; absent means any JSON value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
    /// Accepted as OpenAI defines it: the grammar enforces the schema either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

impl ResponseFormat {
    /// The JSON Schema the answer must satisfy, as text; `None` for free text.
    pub fn schema_json(&self) -> Option<String> {
        match self {
            ResponseFormat::Text => None,
            ResponseFormat::JsonObject => Some(r#"{"type":"object"}"#.to_owned()),
            ResponseFormat::JsonSchema { json_schema } => Some(
                json_schema
                    .schema
                    .as_ref()
                    .map_or_else(|| "{}".to_owned(), |s| s.to_string()),
            ),
        }
    }
}

/// Most alternatives `top_logprobs` may ask for, as OpenAI allows.
pub const MAX_TOP_LOGPROBS: u32 = 20;

/// Most choices a request may ask for with `n`.
pub const MAX_CHOICES: u32 = 16;
/// Most stop sequences a request may give, as OpenAI allows.
pub const MAX_STOP_SEQUENCES: usize = 4;

impl ChatCompletionRequest {
    /// A request for `model` with these messages and every other field at its default.
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        ChatCompletionRequest {
            model: model.into(),
            messages,
            ..Default::default()
        }
    }

    /// Parses a JSON body; a malformed field is reported with its path as `param`.
    pub fn from_json(json: &str) -> Result<Self> {
        super::from_json(json, "request body")
    }

    /// Whether the caller asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// The completion budget: `max_completion_tokens`, else `max_tokens`.
    pub fn completion_limit(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// The stop sequences, empty ones dropped.
    pub fn stop_sequences(&self) -> Vec<String> {
        let mut v = self
            .stop
            .as_ref()
            .map(StopSequences::to_vec)
            .unwrap_or_default();
        v.retain(|s| !s.is_empty());
        v
    }

    /// Checks every parameter's value; the error names the first one at fault.
    pub fn validate(&self) -> Result<()> {
        if self.model.trim().is_empty() {
            return Err(Error::invalid(
                "model",
                "`model` must name a deployed service's access name.",
            ));
        }
        self.validate_messages()?;
        self.validate_sampling()?;
        self.validate_limits()?;
        self.validate_response_format()?;
        self.validate_tools()?;
        self.validate_openai_only()
    }

    /// A schema's `name` as OpenAI constrains it; JSON mode asks for "JSON" in the messages, as
    /// OpenAI requires (a model told nothing about JSON may emit whitespace until `max_tokens`).
    fn validate_response_format(&self) -> Result<()> {
        match &self.response_format {
            None | Some(ResponseFormat::Text) => Ok(()),
            Some(ResponseFormat::JsonObject) => {
                let mentions_json = self
                    .messages
                    .iter()
                    .any(|m| m.text().to_ascii_lowercase().contains("json"));
                if mentions_json {
                    Ok(())
                } else {
                    Err(Error::invalid(
                        "messages",
                        "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                    ))
                }
            }
            Some(ResponseFormat::JsonSchema { json_schema }) => {
                let name_ok = (1..=64).contains(&json_schema.name.len())
                    && json_schema
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !name_ok {
                    return Err(Error::invalid(
                        "response_format.json_schema.name",
                        format!(
                            "`response_format.json_schema.name` must be 1 to 64 letters, digits, `_` or `-`, got `{}`.",
                            json_schema.name
                        ),
                    ));
                }
                match &json_schema.schema {
                    None | Some(serde_json::Value::Object(_)) => Ok(()),
                    Some(_) => Err(Error::invalid(
                        "response_format.json_schema.schema",
                        "`response_format.json_schema.schema` must be a JSON Schema object.",
                    )),
                }
            }
        }
    }

    /// At least one message; text content only; content present except on assistant turns.
    fn validate_messages(&self) -> Result<()> {
        if self.messages.is_empty() {
            return Err(Error::invalid(
                "messages",
                "`messages` must contain at least one message.",
            ));
        }
        for (i, m) in self.messages.iter().enumerate() {
            if let Some(MessageContent::Parts(parts)) = &m.content {
                for (j, p) in parts.iter().enumerate() {
                    if p.kind != "text" || p.text.is_none() {
                        return Err(Error::invalid(
                            format!("messages[{i}].content[{j}]"),
                            format!(
                                "Content parts of type `{}` are not supported; only `text` parts with a `text` field are.",
                                p.kind
                            ),
                        ));
                    }
                }
            }
            if m.content.is_none() && m.role != Role::Assistant {
                return Err(Error::invalid(
                    format!("messages[{i}].content"),
                    format!(
                        "`messages[{i}].content` is required for role `{}`.",
                        m.role.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The sampling parameters' ranges, as OpenAI (and llama.cpp for its extras) define them.
    pub(crate) fn validate_sampling(&self) -> Result<()> {
        check_range("temperature", self.temperature, 0.0, 2.0)?;
        check_range("top_p", self.top_p, 0.0, 1.0)?;
        check_range("presence_penalty", self.presence_penalty, -2.0, 2.0)?;
        check_range("frequency_penalty", self.frequency_penalty, -2.0, 2.0)?;
        check_range("min_p", self.min_p, 0.0, 1.0)?;
        if let Some(r) = self.repeat_penalty {
            if !(r.is_finite() && r > 0.0) {
                return Err(Error::invalid(
                    "repeat_penalty",
                    format!("`repeat_penalty` must be greater than 0, got {r}."),
                ));
            }
        }
        if let Some(k) = self.top_k {
            if k < 0 {
                return Err(Error::invalid(
                    "top_k",
                    format!("`top_k` must be 0 (disabled) or more, got {k}."),
                ));
            }
        }
        if let Some(bias) = &self.logit_bias {
            for (token, value) in bias {
                if token.parse::<u32>().is_err() {
                    return Err(Error::invalid(
                        "logit_bias",
                        format!("`logit_bias` keys must be token ids, got `{token}`."),
                    ));
                }
                if !(-100.0..=100.0).contains(value) {
                    return Err(Error::invalid(
                        "logit_bias",
                        format!("`logit_bias` values must be between -100 and 100, got {value}."),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Token budgets, choices, stop sequences and stream options.
    pub(crate) fn validate_limits(&self) -> Result<()> {
        for (name, v) in [
            ("max_tokens", self.max_tokens),
            ("max_completion_tokens", self.max_completion_tokens),
        ] {
            if v == Some(0) {
                return Err(Error::invalid(
                    name,
                    format!("`{name}` must be at least 1."),
                ));
            }
        }
        if let Some(n) = self.n {
            if !(1..=MAX_CHOICES).contains(&n) {
                return Err(Error::invalid(
                    "n",
                    format!("`n` must be between 1 and {MAX_CHOICES}, got {n}."),
                ));
            }
        }
        if let Some(stop) = &self.stop {
            if stop.to_vec().len() > MAX_STOP_SEQUENCES {
                return Err(Error::invalid(
                    "stop",
                    format!("`stop` takes at most {MAX_STOP_SEQUENCES} sequences."),
                ));
            }
        }
        if self.stream_options.is_some() && !self.is_stream() {
            return Err(Error::invalid(
                "stream_options",
                "`stream_options` is only allowed when `stream` is true.",
            ));
        }
        if let Some(k) = self.top_logprobs {
            if self.logprobs != Some(true) {
                return Err(Error::invalid(
                    "top_logprobs",
                    "`top_logprobs` requires `logprobs` to be true.",
                ));
            }
            if k > MAX_TOP_LOGPROBS {
                return Err(Error::invalid(
                    "top_logprobs",
                    format!("`top_logprobs` must be between 0 and {MAX_TOP_LOGPROBS}, got {k}."),
                ));
            }
        }
        Ok(())
    }

    /// How many alternatives each token's log probability comes with; `None` when not asked.
    pub fn logprobs_wanted(&self) -> Option<u32> {
        (self.logprobs == Some(true)).then(|| self.top_logprobs.unwrap_or(0))
    }
}

fn check_range(name: &str, value: Option<f32>, min: f32, max: f32) -> Result<()> {
    match value {
        Some(v) if !(v.is_finite() && (min..=max).contains(&v)) => Err(Error::invalid(
            name,
            format!("`{name}` must be between {min} and {max}, got {v}."),
        )),
        _ => Ok(()),
    }
}

/// A choice's log probabilities (`choices[i].logprobs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChoiceLogprobs {
    /// One entry per output token, in order.
    pub content: Option<Vec<TokenLogprob>>,
    /// Always null: refusals are not generated.
    pub refusal: Option<Vec<TokenLogprob>>,
}

impl ChoiceLogprobs {
    /// No tokens yet.
    pub fn empty() -> Self {
        ChoiceLogprobs {
            content: Some(Vec::new()),
            refusal: None,
        }
    }
}

/// One output token's log probability and its most likely alternatives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TokenLogprob {
    /// The token's text (invalid UTF-8 replaced; `bytes` has the exact bytes).
    pub token: String,
    pub logprob: f32,
    pub bytes: Option<Vec<u8>>,
    pub top_logprobs: Vec<TopLogprob>,
}

/// One of the most likely tokens at a position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Option<Vec<u8>>,
}

/// Why a choice stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its turn or a stop sequence matched.
    Stop,
    /// `max_tokens` or the context length was reached.
    Length,
    /// The model called tools (`message.tool_calls`).
    ToolCalls,
}

/// Token counts of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    /// What became of the prompt tokens, as OpenAI reports it.
    pub prompt_tokens_details: PromptTokensDetails,
}

/// The prompt tokens' breakdown in [`Usage`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PromptTokensDetails {
    /// Prompt tokens served from the KV cache (a prefix an earlier request left in the slot, or
    /// copied from another slot) instead of being decoded for this request.
    pub cached_tokens: u32,
}

impl Usage {
    pub fn new(prompt_tokens: u32, completion_tokens: u32, cached_tokens: u32) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            prompt_tokens_details: PromptTokensDetails { cached_tokens },
        }
    }
}

/// The assistant's reply in a [`Choice`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AssistantMessage {
    pub role: Role,
    /// The text; null when the answer is only tool calls.
    pub content: Option<String>,
    /// The calls the model made, when it made any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
}

/// One generated answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    pub finish_reason: FinishReason,
    /// The output tokens' log probabilities, when the request asked for `logprobs`.
    pub logprobs: Option<ChoiceLogprobs>,
}

/// The response of a non-streamed chat completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatCompletion {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: Usage,
}

/// The incremental message of a [`ChunkChoice`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

/// One choice's part of a streamed chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub finish_reason: Option<FinishReason>,
    /// This chunk's tokens' log probabilities, when the request asked for `logprobs`.
    pub logprobs: Option<ChoiceLogprobs>,
}

/// One event of a streamed chat completion (`chat.completion.chunk`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    /// Set only on the final chunk when `stream_options.include_usage` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl ChatCompletion {
    pub const OBJECT: &'static str = "chat.completion";
}

impl ChatCompletionChunk {
    pub const OBJECT: &'static str = "chat.completion.chunk";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_the_parameter() {
        let err = ChatCompletionRequest::from_json(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}"#,
        )
        .unwrap_err();
        assert_eq!(err.param(), Some("temperature"));
        let err = ChatCompletionRequest::from_json(
            r#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.param(), Some("messages[0].role"));
        let err = ChatCompletionRequest::from_json("{not json").unwrap_err();
        assert_eq!(err.param(), None);
        let err = ChatCompletionRequest::from_json(r#"{"messages":[]}"#).unwrap_err();
        assert_eq!(err.param(), Some("model"));
        let err = ChatCompletionRequest::from_json(r#"{"model":"m","messages":[{"content":"x"}]}"#)
            .unwrap_err();
        assert_eq!(err.param(), Some("messages[0].role"));
    }

    #[test]
    fn validation_names_the_parameter() {
        let ok = ChatCompletionRequest::new("m", vec![ChatMessage::user("hi")]);
        ok.validate().unwrap();
        let bad = ChatCompletionRequest {
            temperature: Some(3.0),
            ..ok.clone()
        };
        assert_eq!(bad.validate().unwrap_err().param(), Some("temperature"));
        let empty = ChatCompletionRequest {
            messages: vec![],
            ..ok.clone()
        };
        assert_eq!(empty.validate().unwrap_err().param(), Some("messages"));
        let no_op_sdk_values = ChatCompletionRequest::from_json(
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"}]}],"tools":[],"tool_choice":"auto","response_format":{"type":"text"},"logprobs":false,"metadata":{"k":"v"},"store":false}"#,
        )
        .unwrap();
        assert_eq!(no_op_sdk_values.messages[0].text(), "a");
        no_op_sdk_values.validate().unwrap();
    }

    #[test]
    fn unknown_fields_and_unserved_values_are_refused() {
        let err = ChatCompletionRequest::from_json(
            r#"{"model":"m","messages":[{"role":"user","content":"a"}],"temprature":1}"#,
        )
        .unwrap_err();
        assert_eq!(err.param(), Some("temprature"));
        for (field, value) in [("tool_choice", r#""required""#), ("store", "true")] {
            let req = ChatCompletionRequest::from_json(&format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"a"}}],"{field}":{value}}}"#
            ))
            .unwrap();
            assert_eq!(req.validate().unwrap_err().param(), Some(field));
        }
    }
}
