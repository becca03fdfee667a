//! Which tool-call format a chat template speaks, read from the template itself: a table of
//! known families (their marker in the template source), confirmed by rendering with and
//! without a sample tool. A template that never reads `tools` gets the generic fallback.

/// How a model writes tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToolFormat {
    /// Hermes 2 Pro, Qwen 2.5, SmolLM3: `<tool_call>{"name", "arguments"}</tool_call>`, one
    /// block per call.
    Hermes,
    /// Mistral Nemo: `[TOOL_CALLS][{"name", "arguments", "id"}, ...]`.
    MistralNemo,
    /// Llama 3.x: a bare `{"name", "parameters"}` object (after `<|python_tag|>` or not).
    Llama3,
    /// Templates that ignore `tools`: the tools are described in the system prompt and the
    /// answer is `{"tool_calls": [{"name", "arguments"}]}` or `{"response": "..."}`.
    Generic,
}

impl ToolFormat {
    /// The format family the template source names, before checking that it reads `tools`.
    pub(crate) fn sniff(source: &str) -> ToolFormat {
        if source.contains("<tool_call>") {
            ToolFormat::Hermes
        } else if source.contains("[TOOL_CALLS]") {
            ToolFormat::MistralNemo
        } else if source.contains("<|python_tag|>")
            || (source.contains("<|start_header_id|>") && source.contains("parameters"))
        {
            ToolFormat::Llama3
        } else {
            ToolFormat::Generic
        }
    }

    /// The text that opens the tool-call section, when the format has one.
    pub(crate) fn marker(self) -> Option<&'static str> {
        match self {
            ToolFormat::Hermes => Some("<tool_call>"),
            ToolFormat::MistralNemo => Some("[TOOL_CALLS]"),
            ToolFormat::Llama3 => Some("<|python_tag|>"),
            ToolFormat::Generic => None,
        }
    }

    /// The key a call's arguments go under.
    pub(crate) fn arguments_key(self) -> &'static str {
        match self {
            ToolFormat::Llama3 => "parameters",
            _ => "arguments",
        }
    }

    /// Whether the template itself renders `tools` and `tool_calls` (native formats).
    pub(crate) fn is_native(self) -> bool {
        self != ToolFormat::Generic
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            ToolFormat::Hermes => "hermes",
            ToolFormat::MistralNemo => "mistral-nemo",
            ToolFormat::Llama3 => "llama3",
            ToolFormat::Generic => "generic",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_by_marker() {
        assert_eq!(
            ToolFormat::sniff("{% for t in tools %}<tool_call>{% endfor %}"),
            ToolFormat::Hermes
        );
        assert_eq!(
            ToolFormat::sniff("{{ '[TOOL_CALLS]' }}"),
            ToolFormat::MistralNemo
        );
        assert_eq!(
            ToolFormat::sniff("<|start_header_id|>ipython {\"name\": ..., \"parameters\": ...}"),
            ToolFormat::Llama3
        );
        assert_eq!(
            ToolFormat::sniff("<|im_start|>{{ m.content }}"),
            ToolFormat::Generic
        );
    }
}
