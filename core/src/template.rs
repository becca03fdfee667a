//! Chat templates: the GGUF's `tokenizer.chat_template` (Jinja) rendered with minijinja under
//! the Hugging Face conventions, a per-service override, and a fallback for files without one.

use minijinja::{context, Environment, ErrorKind};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::tool_calling::ToolFormat;

/// ChatML, the fallback for models that carry no template.
const CHATML: &str = "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}\
{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// Gemma's turn format, the fallback for Gemma-family files without a template: system text
/// goes in front of the first user turn, and the assistant is called `model`.
const GEMMA: &str = "{{ bos_token }}{% set ns = namespace(prefix='') %}{% for message in messages %}\
{% if message.role in ['system', 'developer'] %}{% set ns.prefix = ns.prefix + message.content + '\n\n' %}\
{% else %}<start_of_turn>{{ 'model' if message.role == 'assistant' else 'user' }}\n\
{% if message.role != 'assistant' %}{{ ns.prefix }}{% set ns.prefix = '' %}{% endif %}{{ message.content | trim }}<end_of_turn>\n\
{% endif %}{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}";

/// Instructions one rendering may run: thousands of times what a long conversation takes, and
/// still a fraction of a second, so a template that loops for good (a hostile model file can
/// carry one) fails the request instead of hanging it.
const TEMPLATE_FUEL: u64 = 10_000_000;

/// Which template a service renders with, and where it came from.
pub(crate) struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    /// How the model writes tool calls, read from the template.
    tool_format: ToolFormat,
}

impl ChatTemplate {
    /// Picks the override, else the file's template, else the fallback for the architecture.
    pub(crate) fn new(
        override_source: Option<&str>,
        file_source: Option<String>,
        architecture: &str,
        bos_token: String,
        eos_token: String,
    ) -> Result<Self> {
        let source = match (override_source, file_source) {
            (Some(s), _) => s.to_owned(),
            (None, Some(s)) => s,
            (None, None) if architecture.starts_with("gemma") => GEMMA.to_owned(),
            (None, None) => CHATML.to_owned(),
        };
        let mut env = Environment::new();
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        minijinja_contrib::add_to_environment(&mut env);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_function("strftime_now", |fmt: String| -> String {
            // Templates use it to date the system prompt; a fixed clock keeps prompts cacheable.
            let _ = fmt;
            String::new()
        });
        env.add_template_owned("chat", source.clone())
            .map_err(|e| {
                Error::invalid(
                    "chat_template",
                    format!("The chat template does not compile: {e}"),
                )
            })?;
        let mut template = ChatTemplate {
            env,
            bos_token,
            eos_token,
            tool_format: ToolFormat::Generic,
        };
        template.tool_format = template.detect_tool_format(&source);
        Ok(template)
    }

    /// The family the source names, if rendering a sample tool shows the template reads
    /// `tools` (else the generic fallback).
    fn detect_tool_format(&self, source: &str) -> ToolFormat {
        let family = ToolFormat::sniff(source);
        if family == ToolFormat::Generic {
            return family;
        }
        let messages = [json!({"role": "user", "content": "x"})];
        let tool = json!({"type": "function", "function": {"name": "tool_format_probe", "parameters": {"type": "object", "properties": {}}}});
        let with = self.render_values(&messages, Some(&[tool]));
        let without = self.render_values(&messages, None);
        match (with, without) {
            (Ok(with), Ok(without)) if with != without => family,
            _ => ToolFormat::Generic,
        }
    }

    /// How the model writes tool calls.
    pub(crate) fn tool_format(&self) -> ToolFormat {
        self.tool_format
    }

    /// Renders the conversation, ending with the assistant's turn opened.
    #[cfg(test)]
    pub(crate) fn render(&self, messages: &[crate::api::ChatMessage]) -> Result<String> {
        let messages = crate::tool_calling::template_messages(messages, self.tool_format);
        self.render_values(&messages, None)
    }

    /// Renders messages already in the template's shape (`crate::tool_calling::template_input`), with
    /// `tools` when the template is to offer them.
    pub(crate) fn render_values(
        &self,
        messages: &[Value],
        tools: Option<&[Value]>,
    ) -> Result<String> {
        let template = self.env.get_template("chat").map_err(Error::internal)?;
        template
            .render(context! {
                messages => messages,
                tools => tools,
                add_generation_prompt => true,
                bos_token => self.bos_token,
                eos_token => self.eos_token,
            })
            .map_err(|e| match e.kind() {
                // The template itself refused the conversation (e.g. roles out of order).
                ErrorKind::InvalidOperation => Error::invalid(
                    "messages",
                    format!(
                        "The chat template rejected the messages: {}",
                        e.detail().unwrap_or("invalid conversation")
                    ),
                ),
                _ => Error::invalid(
                    "messages",
                    format!("The chat template failed to render the messages: {e}"),
                ),
            })
    }

    /// The BOS token's text, to avoid adding a second BOS when the template already wrote one.
    pub(crate) fn bos_token(&self) -> &str {
        &self.bos_token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ChatMessage;

    #[test]
    fn fallbacks_render_a_generation_prompt() {
        let msgs = [ChatMessage::system("Be brief."), ChatMessage::user("Hi")];
        let chatml = ChatTemplate::new(None, None, "llama", "<s>".into(), "</s>".into()).unwrap();
        assert_eq!(
            chatml.render(&msgs).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let gemma =
            ChatTemplate::new(None, None, "gemma3", "<bos>".into(), "<eos>".into()).unwrap();
        assert_eq!(
            gemma.render(&msgs).unwrap(),
            "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn hugging_face_conventions() {
        let src = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first must be user') }}{% endif %}\
                   {{ bos_token }}{% for m in messages %}{{ m['content'].strip() }}{% endfor %}";
        let t = ChatTemplate::new(Some(src), None, "llama", "<s>".into(), "</s>".into()).unwrap();
        assert_eq!(t.render(&[ChatMessage::user("  x ")]).unwrap(), "<s>x");
        let err = t.render(&[ChatMessage::assistant("y")]).unwrap_err();
        assert!(err.to_string().contains("first must be user"), "{err}");
        assert_eq!(err.param(), Some("messages"));
    }

    #[test]
    fn tool_format_is_read_from_the_template() {
        let new = |src: Option<&str>| {
            ChatTemplate::new(src, None, "llama", String::new(), String::new()).unwrap()
        };
        let hermes = "{% if tools %}<tools>{{ tools | tojson }}</tools>{% endif %}\
                      {% for m in messages %}{{ m.content }}{% endfor %}<tool_call>";
        assert_eq!(new(Some(hermes)).tool_format(), ToolFormat::Hermes);
        // Naming a marker is not enough: the template must read `tools`.
        let ignores = "{% for m in messages %}{{ m.content }}{% endfor %}<tool_call>";
        assert_eq!(new(Some(ignores)).tool_format(), ToolFormat::Generic);
        assert_eq!(new(None).tool_format(), ToolFormat::Generic);
        // A Mistral template refuses ids other than 9 letters and digits: ours are mapped.
        let mistral = "{% if tools %}[AVAILABLE_TOOLS]{% endif %}{% for m in messages %}\
            {% for c in m.tool_calls or [] %}{% if c.id | length != 9 %}\
            {{ raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}\
            {% endif %}[TOOL_CALLS]{{ c.function.arguments | tojson }}{% endfor %}\
            {% if m.role == 'tool' %}[TOOL_RESULTS]{{ m.tool_call_id }}{% endif %}{% endfor %}";
        let t = new(Some(mistral));
        assert_eq!(t.tool_format(), ToolFormat::MistralNemo);
        let call: crate::api::ToolCall =
            serde_json::from_value(json!({"id": "call_0123456789abcdef01234567",
            "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}))
            .unwrap();
        let text = t
            .render(&[
                ChatMessage::user("x"),
                ChatMessage::assistant_tool_calls(vec![call]),
                ChatMessage::tool("call_0123456789abcdef01234567", "2"),
            ])
            .unwrap();
        assert!(
            text.starts_with("[TOOL_CALLS]{\"a\":1}[TOOL_RESULTS]"),
            "{text}"
        );
    }

    #[test]
    fn a_template_that_never_ends_fails_the_request() {
        let src =
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        let t = ChatTemplate::new(Some(src), None, "llama", "<s>".into(), "</s>".into()).unwrap();
        let started = std::time::Instant::now();
        let err = t.render(&[ChatMessage::user("hi")]).unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(err.param(), Some("messages"));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{err}"
        );
        // A long conversation renders well within the budget.
        let long: Vec<ChatMessage> = (0..2000)
            .map(|i| ChatMessage::user(format!("message {i}")))
            .collect();
        let chatml = ChatTemplate::new(None, None, "llama", "<s>".into(), "</s>".into()).unwrap();
        chatml.render(&long).unwrap();
    }
}
