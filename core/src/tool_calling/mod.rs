//! Tool calling: the format a model writes calls in (`format`), the prompt that offers the
//! tools (`prompt`), the grammar that keeps calls well-formed (`grammar`) and the parser that
//! reads them back out of the generated text (`parse`).

mod format;
mod grammar;
mod parse;
mod prompt;

pub(crate) use format::ToolFormat;
pub(crate) use grammar::{marker_token, tool_grammar, ToolGrammar};
pub(crate) use parse::{Parsed, ToolParser};
pub(crate) use prompt::template_input;
#[cfg(test)]
pub(crate) use prompt::template_messages;

use crate::api::{ChatCompletionRequest, ToolUse};

/// How a request's answers are read for calls.
#[derive(Debug, Clone)]
pub(crate) struct ToolReading {
    pub format: ToolFormat,
    /// Names of the tools the answer may call.
    pub names: Vec<String>,
    /// A named `tool_choice`: OpenAI then reports `finish_reason: "stop"`.
    pub named: bool,
}

impl ToolReading {
    /// `None` when the request's answer is plain text.
    pub(crate) fn for_request(req: &ChatCompletionRequest, format: ToolFormat) -> Option<Self> {
        let named = match req.tool_use() {
            ToolUse::Off => return None,
            ToolUse::Named(_) => true,
            ToolUse::Auto | ToolUse::Required => false,
        };
        Some(ToolReading {
            format,
            names: prompt::callable_tools(req)
                .iter()
                .map(|t| t.function.name.clone())
                .collect(),
            named,
        })
    }

    pub(crate) fn parser(&self) -> ToolParser {
        ToolParser::new(self.format, self.names.clone())
    }
}
