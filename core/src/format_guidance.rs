//! `response_format.json_schema.description`, which OpenAI documents as guidance for the model
//! ("used by the model to determine how to respond in the format"), put where the model reads
//! it: at the end of the first system (or developer) message, or in a system message of its own.

use std::borrow::Cow;

use crate::api::{ChatMessage, MessageContent, ResponseFormat, Role};

/// The messages the chat template renders: `messages`, with the description of a `json_schema`
/// response format added to the system prompt. Unchanged without a description.
pub(crate) fn with_format_guidance<'a>(
    messages: &'a [ChatMessage],
    format: Option<&ResponseFormat>,
) -> Cow<'a, [ChatMessage]> {
    let Some(ResponseFormat::JsonSchema { json_schema }) = format else {
        return Cow::Borrowed(messages);
    };
    let Some(description) = json_schema
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    else {
        return Cow::Borrowed(messages);
    };
    let guidance = format!(
        "Answer in JSON following the `{}` format: {description}",
        json_schema.name
    );
    let mut messages = messages.to_vec();
    match messages.first_mut() {
        Some(first) if matches!(first.role, Role::System | Role::Developer) => {
            let text = first.text();
            let joined = if text.trim().is_empty() {
                guidance
            } else {
                format!("{text}\n\n{guidance}")
            };
            first.content = Some(MessageContent::Text(joined));
        }
        _ => messages.insert(0, ChatMessage::system(guidance)),
    }
    Cow::Owned(messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::JsonSchemaFormat;

    fn format(description: Option<&str>) -> ResponseFormat {
        ResponseFormat::JsonSchema {
            json_schema: JsonSchemaFormat {
                name: "person".into(),
                description: description.map(str::to_owned),
                schema: None,
                strict: None,
            },
        }
    }

    #[test]
    fn the_description_joins_the_system_prompt() {
        let user = vec![ChatMessage::user("Hi")];
        let guided = with_format_guidance(&user, Some(&format(Some("A person we met."))));
        assert_eq!(guided.len(), 2);
        assert_eq!(guided[0].role, Role::System);
        assert_eq!(
            guided[0].text(),
            "Answer in JSON following the `person` format: A person we met."
        );

        let with_system = vec![ChatMessage::system("Be brief."), ChatMessage::user("Hi")];
        let guided = with_format_guidance(&with_system, Some(&format(Some("A person."))));
        assert_eq!(guided.len(), 2);
        assert!(guided[0].text().starts_with("Be brief.\n\nAnswer in JSON"));

        for unchanged in [
            with_format_guidance(&user, Some(&format(None))),
            with_format_guidance(&user, Some(&format(Some("  ")))),
            with_format_guidance(&user, Some(&ResponseFormat::JsonObject)),
            with_format_guidance(&user, None),
        ] {
            assert!(matches!(unchanged, Cow::Borrowed(_)));
        }
    }
}
