//! The conversation as a chat template sees it when tools are involved: calls handed over with
//! their arguments as objects (Hugging Face templates do `arguments | tojson`), and, for
//! templates that ignore tools, the tools described in the system prompt and past calls and
//! results written as the JSON the fallback format uses.

use serde_json::{json, Map, Value};

use super::format::ToolFormat;
use crate::api::{ChatCompletionRequest, ChatMessage, Role, Tool, ToolCall, ToolUse};

/// A call's arguments as an object when they are a JSON object text, else the text itself.
fn arguments_value(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::String(arguments.to_owned()),
    }
}

/// A call id as the format's templates accept it: Mistral's refuse any id but 9 letters and
/// digits, so other ids are mapped to such an id (the same for a call and its result).
fn template_call_id(id: &str, format: ToolFormat) -> String {
    let fits = id.len() == 9 && id.chars().all(|c| c.is_ascii_alphanumeric());
    if format != ToolFormat::MistralNemo || fits {
        return id.to_owned();
    }
    // FNV-1a: stable across runs, so a cached prompt prefix stays the same.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    (0..9)
        .map(|_| {
            let c = ALPHABET[(hash % 62) as usize] as char;
            hash /= 62;
            c
        })
        .collect()
}

/// One message for the template: `content` always a string, absent fields left out.
fn base_message(m: &ChatMessage, format: ToolFormat) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("role".into(), json!(m.role.as_str()));
    out.insert("content".into(), json!(m.text()));
    if let Some(name) = &m.name {
        out.insert("name".into(), json!(name));
    }
    if let Some(id) = &m.tool_call_id {
        out.insert("tool_call_id".into(), json!(template_call_id(id, format)));
    }
    out
}

/// A call as native templates read it.
fn native_call(call: &ToolCall, format: ToolFormat) -> Value {
    json!({
        "id": template_call_id(&call.id, format),
        "type": "function",
        "function": {"name": call.function.name, "arguments": arguments_value(&call.function.arguments)},
    })
}

/// Past calls as the generic format writes them (`name` first, as its grammar orders them).
fn generic_calls(calls: &[ToolCall]) -> String {
    let calls: Vec<String> = calls
        .iter()
        .map(|c| {
            format!(
                r#"{{"name": {}, "arguments": {}}}"#,
                json!(c.function.name),
                arguments_value(&c.function.arguments)
            )
        })
        .collect();
    format!(r#"{{"tool_calls": [{}]}}"#, calls.join(", "))
}

/// The messages as a template renders them under `format`.
pub(crate) fn template_messages(messages: &[ChatMessage], format: ToolFormat) -> Vec<Value> {
    messages
        .iter()
        .map(|m| {
            let mut out = base_message(m, format);
            match (&m.tool_calls, format.is_native()) {
                (Some(calls), true) if !calls.is_empty() => {
                    out.insert(
                        "tool_calls".into(),
                        Value::Array(calls.iter().map(|c| native_call(c, format)).collect()),
                    );
                }
                (Some(calls), false) if !calls.is_empty() => {
                    out.insert("content".into(), json!(generic_calls(calls)));
                }
                _ => {}
            }
            if m.role == Role::Tool && !format.is_native() {
                // Templates that know no tools may refuse a `tool` role: the result goes in a
                // user turn, as the JSON the fallback format names results with.
                let name = call_name(messages, m.tool_call_id.as_deref());
                out.insert("role".into(), json!("user"));
                let result = format!(
                    r#"{{"tool_response": {{"name": {}, "content": {}}}}}"#,
                    json!(name),
                    json!(m.text())
                );
                out.insert("content".into(), json!(result));
                out.remove("tool_call_id");
            }
            Value::Object(out)
        })
        .collect()
}

/// The name of the function the call `id` called, from the conversation's assistant turns.
fn call_name(messages: &[ChatMessage], id: Option<&str>) -> String {
    messages
        .iter()
        .filter_map(|m| m.tool_calls.as_ref())
        .flatten()
        .find(|c| Some(c.id.as_str()) == id)
        .map(|c| c.function.name.clone())
        .unwrap_or_default()
}

/// The tools a request's answer may call: all of them, or the named one.
pub(crate) fn callable_tools(req: &ChatCompletionRequest) -> Vec<&Tool> {
    match req.tool_use() {
        ToolUse::Off => Vec::new(),
        ToolUse::Named(tool) => vec![tool],
        ToolUse::Auto | ToolUse::Required => req.tool_list().iter().collect(),
    }
}

/// What the generic format tells the model, in the system prompt.
fn generic_instructions(req: &ChatCompletionRequest) -> String {
    let tools = callable_tools(req);
    let mut text = String::from("You can call these tools:\n");
    for tool in &tools {
        let f = &tool.function;
        text.push_str(&format!(
            "- {}: {} Arguments (JSON Schema): {}\n",
            f.name,
            f.description.as_deref().unwrap_or(""),
            tool.parameters_schema()
        ));
    }
    let call_form = r#"{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments>}}]}"#;
    match req.tool_use() {
        ToolUse::Auto => text.push_str(&format!(
            "Answer with one JSON object: either {call_form} to call tools, or {{\"response\": \"<your answer>\"}} to answer the user directly."
        )),
        _ => text.push_str(&format!(
            "Answer with one JSON object that calls a tool: {call_form}"
        )),
    }
    text
}

/// The messages (the request's, or those `with_format_guidance` made of them) and the `tools` a
/// request's prompt is rendered from.
pub(crate) fn template_input(
    req: &ChatCompletionRequest,
    messages: &[ChatMessage],
    format: ToolFormat,
) -> (Vec<Value>, Option<Vec<Value>>) {
    let mut messages = template_messages(messages, format);
    if req.tool_use() == ToolUse::Off {
        return (messages, None);
    }
    if format.is_native() {
        let tools = callable_tools(req)
            .into_iter()
            .map(|t| serde_json::to_value(t).unwrap_or(Value::Null))
            .collect();
        return (messages, Some(tools));
    }
    let instructions = generic_instructions(req);
    match messages.first_mut() {
        Some(Value::Object(first)) if first["role"] == "system" => {
            let content = first["content"].as_str().unwrap_or("").to_owned();
            first.insert(
                "content".into(),
                json!(format!("{content}\n\n{instructions}")),
            );
        }
        _ => messages.insert(0, json!({"role": "system", "content": instructions})),
    }
    (messages, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{FunctionCall, ToolKind};

    fn call() -> ToolCall {
        ToolCall {
            id: "call_1".into(),
            kind: ToolKind::Function,
            function: FunctionCall {
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into(),
            },
        }
    }

    #[test]
    fn native_templates_get_arguments_as_objects() {
        let msgs = [
            ChatMessage::user("Weather?"),
            ChatMessage::assistant_tool_calls(vec![call()]),
            ChatMessage::tool("call_1", "sunny"),
        ];
        let out = template_messages(&msgs, ToolFormat::Hermes);
        assert_eq!(out[1]["content"], "");
        assert_eq!(
            out[1]["tool_calls"][0]["function"]["arguments"]["city"],
            "Paris"
        );
        assert_eq!(out[2]["role"], "tool");
        assert_eq!(out[2]["tool_call_id"], "call_1");
    }

    #[test]
    fn mistral_templates_get_nine_character_ids() {
        let msgs = [
            ChatMessage::user("Weather?"),
            ChatMessage::assistant_tool_calls(vec![call()]),
            ChatMessage::tool("call_1", "sunny"),
        ];
        let out = template_messages(&msgs, ToolFormat::MistralNemo);
        let id = out[1]["tool_calls"][0]["id"].as_str().unwrap();
        assert_eq!(id.len(), 9);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(out[2]["tool_call_id"], id);
        assert_eq!(
            template_call_id("a1b2c3d4e", ToolFormat::MistralNemo),
            "a1b2c3d4e"
        );
        assert_eq!(template_call_id("call_1", ToolFormat::Hermes), "call_1");
    }

    #[test]
    fn generic_templates_get_calls_and_results_as_json_text() {
        let msgs = [
            ChatMessage::user("Weather?"),
            ChatMessage::assistant_tool_calls(vec![call()]),
            ChatMessage::tool("call_1", "sunny"),
        ];
        let out = template_messages(&msgs, ToolFormat::Generic);
        assert_eq!(
            out[1]["content"],
            r#"{"tool_calls": [{"name": "get_weather", "arguments": {"city":"Paris"}}]}"#
        );
        assert!(out[1].get("tool_calls").is_none());
        assert_eq!(out[2]["role"], "user");
        assert_eq!(
            out[2]["content"],
            r#"{"tool_response": {"name": "get_weather", "content": "sunny"}}"#
        );
    }
}
