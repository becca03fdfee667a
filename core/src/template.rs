//! Chat templates: the GGUF's `tokenizer.chat_template` (Jinja) rendered with minijinja under
//! the Hugging Face conventions, a per-service override, and a fallback for files without one.

use minijinja::{context, Environment, ErrorKind};
use serde::Serialize;

use crate::api::ChatMessage;
use crate::error::{Error, Result};

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
}

/// A message as templates see it: `content` is always a string.
#[derive(Serialize)]
struct TemplateMessage<'a> {
    role: &'a str,
    content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
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
        env.add_template_owned("chat", source).map_err(|e| {
            Error::invalid(
                "chat_template",
                format!("The chat template does not compile: {e}"),
            )
        })?;
        Ok(ChatTemplate {
            env,
            bos_token,
            eos_token,
        })
    }

    /// Renders the conversation, ending with the assistant's turn opened.
    pub(crate) fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        let messages: Vec<TemplateMessage<'_>> = messages
            .iter()
            .map(|m| TemplateMessage {
                role: m.role.as_str(),
                content: m.text(),
                name: m.name.as_deref(),
                tool_calls: m.tool_calls.as_ref(),
                tool_call_id: m.tool_call_id.as_deref(),
            })
            .collect();
        let template = self.env.get_template("chat").map_err(Error::internal)?;
        template
            .render(context! {
                messages => messages,
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
