//! Tool calling on the wire: `tools`, `tool_choice`, the calls an assistant message carries and
//! their streamed deltas, as OpenAI defines them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::chat::{ChatCompletionRequest, ResponseFormat, Role};
use crate::error::{Error, Result};

/// The kind of a tool: only functions exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolKind {
    #[default]
    Function,
}

/// One tool the model may call (`tools[i]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tool {
    #[serde(rename = "type")]
    pub kind: ToolKind,
    pub function: FunctionDefinition,
}

/// A function's name, what it does, and the JSON Schema of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FunctionDefinition {
    /// `^[a-zA-Z0-9_-]{1,64}$`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A JSON Schema object; absent means no arguments (`{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
    /// Accepted as OpenAI defines it: the tool grammar enforces the schema of every call. Under
    /// `auto` on Llama 3 templates, whose calls open with no marker for a lazy grammar, only a
    /// `strict` tool puts the answer under a grammar (a call, or text that does not open like one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

impl Tool {
    /// A function tool.
    pub fn function(name: impl Into<String>, parameters: serde_json::Value) -> Self {
        Tool {
            kind: ToolKind::Function,
            function: FunctionDefinition {
                name: name.into(),
                description: None,
                parameters: Some(parameters),
                strict: None,
            },
        }
    }

    /// The JSON Schema of the arguments (an empty argument list when none was given).
    pub fn parameters_schema(&self) -> serde_json::Value {
        self.function
            .parameters
            .clone()
            .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}))
    }
}

/// `tool_choice`: whether, and which, tool the model must call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ToolChoice {
    Mode(ToolChoiceMode),
    Named(NamedToolChoice),
}

/// `none` (never call), `auto` (the model decides) or `required` (at least one call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoiceMode {
    None,
    Auto,
    Required,
}

/// `{"type": "function", "function": {"name": ...}}`: call this tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NamedToolChoice {
    #[serde(rename = "type")]
    pub kind: ToolKind,
    pub function: FunctionName,
}

/// A function named by a [`NamedToolChoice`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FunctionName {
    pub name: String,
}

/// A call the assistant made (`message.tool_calls[i]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolCall {
    /// `call_…`; a `tool` message answers it by this id.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ToolKind,
    pub function: FunctionCall,
}

/// The function a [`ToolCall`] calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FunctionCall {
    pub name: String,
    /// The arguments as a JSON text.
    pub arguments: String,
}

/// A streamed piece of a tool call: the first carries `id`, `type`, `function.name` and
/// `function.arguments: ""`; later ones carry argument fragments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolCallDelta {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ToolKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
}

/// The function part of a [`ToolCallDelta`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FunctionCallDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// What a request asks of its tools, once `tools` and `tool_choice` are read together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ToolUse<'a> {
    /// No tools, or `tool_choice: "none"`: plain text.
    Off,
    /// The model may answer or call tools.
    Auto,
    /// The model must call at least one tool.
    Required,
    /// The model must call this tool.
    Named(&'a Tool),
}

impl ChatCompletionRequest {
    /// The tools given (none when `tools` is absent or empty).
    pub fn tool_list(&self) -> &[Tool] {
        self.tools.as_deref().unwrap_or(&[])
    }

    /// How the request uses its tools (after [`ChatCompletionRequest::validate`]).
    pub fn tool_use(&self) -> ToolUse<'_> {
        let tools = self.tool_list();
        if tools.is_empty() {
            return ToolUse::Off;
        }
        match &self.tool_choice {
            None | Some(ToolChoice::Mode(ToolChoiceMode::Auto)) => ToolUse::Auto,
            Some(ToolChoice::Mode(ToolChoiceMode::None)) => ToolUse::Off,
            Some(ToolChoice::Mode(ToolChoiceMode::Required)) => ToolUse::Required,
            Some(ToolChoice::Named(named)) => tools
                .iter()
                .find(|t| t.function.name == named.function.name)
                .map_or(ToolUse::Off, ToolUse::Named),
        }
    }

    /// Whether several calls may come in one answer (`parallel_tool_calls`, default true).
    pub fn parallel_calls(&self) -> bool {
        self.parallel_tool_calls.unwrap_or(true)
    }

    /// Tool names, schemas, the choice, and the messages that carry calls and results.
    pub(crate) fn validate_tools(&self) -> Result<()> {
        let tools = self.tool_list();
        for (i, tool) in tools.iter().enumerate() {
            let name = &tool.function.name;
            let name_ok = (1..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !name_ok {
                return Err(Error::invalid(
                    format!("tools[{i}].function.name"),
                    format!("`tools[{i}].function.name` must be 1 to 64 letters, digits, `_` or `-`, got `{name}`."),
                ));
            }
            if tools[..i].iter().any(|t| &t.function.name == name) {
                return Err(Error::invalid(
                    format!("tools[{i}].function.name"),
                    format!("Tool names must be unique; `{name}` is given twice."),
                ));
            }
            if let Some(p) = &tool.function.parameters {
                if !p.is_object() {
                    return Err(Error::invalid(
                        format!("tools[{i}].function.parameters"),
                        format!("`tools[{i}].function.parameters` must be a JSON Schema object."),
                    ));
                }
            }
        }
        match &self.tool_choice {
            Some(ToolChoice::Named(named))
                if !tools.iter().any(|t| t.function.name == named.function.name) =>
            {
                return Err(Error::invalid(
                    "tool_choice",
                    format!(
                        "`tool_choice` names the function `{}`, which is not in `tools`.",
                        named.function.name
                    ),
                ));
            }
            Some(ToolChoice::Mode(ToolChoiceMode::Required)) if tools.is_empty() => {
                return Err(Error::invalid(
                    "tool_choice",
                    "`tool_choice` `required` needs at least one tool in `tools`.",
                ));
            }
            _ => {}
        }
        if self.tool_use() != ToolUse::Off {
            if matches!(
                self.response_format,
                Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. })
            ) {
                return Err(Error::invalid(
                    "response_format",
                    "`response_format` cannot be combined with `tools` here (unless `tool_choice` is `none`): both constrain the answer.",
                ));
            }
            if self.logprobs == Some(true) {
                return Err(Error::invalid(
                    "logprobs",
                    "`logprobs` cannot be combined with `tools` here (unless `tool_choice` is `none`).",
                ));
            }
        }
        for (i, m) in self.messages.iter().enumerate() {
            if m.role == Role::Tool && m.tool_call_id.as_deref().is_none_or(str::is_empty) {
                return Err(Error::invalid(
                    format!("messages[{i}].tool_call_id"),
                    format!("`messages[{i}].tool_call_id` is required for role `tool`: it names the call this result answers."),
                ));
            }
            if m.tool_calls.is_some() && m.role != Role::Assistant {
                return Err(Error::invalid(
                    format!("messages[{i}].tool_calls"),
                    format!("`messages[{i}].tool_calls` is only allowed on `assistant` messages."),
                ));
            }
        }
        Ok(())
    }
}
