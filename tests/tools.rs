//! Tool calling on the real SmolLM2 at temperature 0: its ChatML template ignores `tools`, so
//! the generic fallback serves it (tools in the system prompt, a grammar for the answer); the
//! native Hermes path is served by deploying it with a Hermes-style `chat_template`. Calls
//! parse, their arguments validate against the tool's schema (an independent validator), and
//! streamed deltas reassemble to the non-streamed call.

mod common;

use std::sync::Arc;

use common::*;
use modelservice::Registry;
use serde_json::{json, Value};

const MODEL: &str = "tools/smol";
const HERMES: &str = "tools/hermes";

/// A Qwen 2.5-style template: tools in a `<tools>` block of the system turn, calls as
/// `<tool_call>` blocks, results as `<tool_response>` blocks in a user turn.
const HERMES_TEMPLATE: &str = r#"{%- if tools %}<|im_start|>system
{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}

{% endif %}You may call one or more functions to assist with the user query. You are provided with function signatures within <tools></tools> XML tags:
<tools>
{%- for tool in tools %}
{{ tool | tojson }}
{%- endfor %}
</tools>
For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
{% elif messages[0]['role'] == 'system' %}<|im_start|>system
{{ messages[0]['content'] }}<|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'system' %}
{%- elif message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant
{%- for tool_call in message.tool_calls %}
<tool_call>
{"name": "{{ tool_call.function.name }}", "arguments": {{ tool_call.function.arguments | tojson }}}
</tool_call>
{%- endfor %}<|im_end|>
{% elif message.role == 'tool' %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% else %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"#;

fn registry() -> Arc<Registry> {
    let registry = registry_with(MODEL);
    let mut hermes = spec(HERMES, smollm2());
    hermes.chat_template = Some(HERMES_TEMPLATE.into());
    registry
        .deploy(hermes)
        .expect("deploy SmolLM2 with a Hermes template");
    Arc::new(registry)
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 30},
                "unit": {"enum": ["celsius", "fahrenheit"]}
            },
            "required": ["city", "unit"]
        }
    }})
}

fn time_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_time",
        "description": "Get the current time in a time zone.",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string", "maxLength": 30}},
            "required": ["timezone"]
        }
    }})
}

fn request(model: &str, messages: Value, tools: Value, extra: Value) -> Value {
    let mut body = json!({
        "model": model,
        "messages": messages,
        "tools": tools,
        "temperature": 0,
        "max_tokens": 120,
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

fn ask_weather() -> Value {
    json!([{"role": "user", "content": "What is the weather like in Paris today?"}])
}

fn create(registry: &Arc<Registry>, body: &Value) -> Value {
    let text = registry
        .call_blocking("chat.completions.create", &body.to_string())
        .unwrap_or_else(|e| panic!("{e}: {body}"));
    serde_json::from_str(&text).unwrap()
}

/// Checks a call's shape and that its arguments validate against the named tool's schema.
fn check_call(call: &Value, tools: &Value) {
    let id = call["id"].as_str().unwrap();
    assert!(id.starts_with("call_") && id.len() == 29, "{call}");
    assert_eq!(call["type"], "function");
    let name = call["function"]["name"].as_str().unwrap();
    let tool = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not a tool: {call}"));
    let arguments = call["function"]["arguments"].as_str().unwrap();
    let args: Value =
        serde_json::from_str(arguments).unwrap_or_else(|e| panic!("{e}: {arguments}"));
    let validator = jsonschema::validator_for(&tool["function"]["parameters"]).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&args)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{arguments}: {errors:?}");
}

fn calls_of(completion: &Value) -> &Vec<Value> {
    completion["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap_or_else(|| panic!("no tool calls: {completion}"))
}

/// Streams `body` and rebuilds the message from the deltas, checking their OpenAI shape.
fn stream_message(registry: &Registry, body: &Value) -> (Option<String>, Vec<Value>, String) {
    let (content, calls, finish, _) = stream_message_counted(registry, body);
    (content, calls, finish)
}

/// [`stream_message`], with the number of argument fragments.
fn stream_message_counted(
    registry: &Registry,
    body: &Value,
) -> (Option<String>, Vec<Value>, String, usize) {
    let mut fragments = 0;
    let mut stream = registry
        .stream("chat.completions.create", &body.to_string())
        .unwrap();
    let mut content = String::new();
    let mut calls: Vec<Value> = Vec::new();
    let mut finish = String::new();
    while let Some(chunk) = stream.next_blocking() {
        let chunk: Value = serde_json::from_str(&chunk.unwrap()).unwrap();
        let choice = &chunk["choices"][0];
        if let Some(text) = choice["delta"]["content"].as_str() {
            content.push_str(text);
        }
        for delta in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = delta["index"].as_u64().unwrap() as usize;
            if delta.get("id").is_some() {
                assert_eq!(index, calls.len(), "{delta}");
                assert_eq!(delta["type"], "function", "{delta}");
                assert_eq!(delta["function"]["arguments"], "", "{delta}");
                calls.push(json!({"id": delta["id"], "type": "function",
                    "function": {"name": delta["function"]["name"], "arguments": ""}}));
            } else {
                assert!(delta.get("type").is_none() && delta["function"].get("name").is_none());
                fragments += 1;
                let args = calls[index]["function"]["arguments"]
                    .as_str()
                    .unwrap()
                    .to_owned()
                    + delta["function"]["arguments"].as_str().unwrap();
                calls[index]["function"]["arguments"] = json!(args);
            }
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = f.to_owned();
        }
    }
    (
        (!content.is_empty()).then_some(content),
        calls,
        finish,
        fragments,
    )
}

#[test]
fn required_and_named_calls_validate_and_stream() {
    let registry = registry();
    for model in [MODEL, HERMES] {
        let tools = json!([weather_tool(), time_tool()]);
        for (choice, finish) in [
            (json!("required"), "tool_calls"),
            (
                json!({"type": "function", "function": {"name": "get_weather"}}),
                "stop",
            ),
        ] {
            let body = request(
                model,
                ask_weather(),
                tools.clone(),
                json!({"tool_choice": choice, "parallel_tool_calls": false}),
            );
            let whole = create(&registry, &body);
            let choice0 = &whole["choices"][0];
            assert_eq!(choice0["finish_reason"], finish, "{model}: {whole}");
            assert!(choice0["message"]["content"].is_null(), "{model}: {whole}");
            let calls = calls_of(&whole);
            assert!(!calls.is_empty());
            for call in calls {
                check_call(call, &tools);
            }
            if finish == "stop" {
                assert_eq!(calls.len(), 1);
                assert_eq!(calls[0]["function"]["name"], "get_weather");
            }
            // Streamed: the same calls (ids aside), argument fragments concatenated.
            let (content, streamed, streamed_finish, fragments) =
                stream_message_counted(&registry, &body);
            // The arguments stream as they are generated, not in one piece.
            assert!(fragments > 2, "{model}: {fragments} fragments");
            assert_eq!(content, None, "{model}");
            assert_eq!(streamed_finish, finish, "{model}");
            assert_eq!(streamed.len(), calls.len());
            for (s, c) in streamed.iter().zip(calls) {
                assert_eq!(s["function"], c["function"], "{model}");
            }
            eprintln!("{model} {choice}: {}", calls[0]["function"]);
        }
    }
}

#[test]
fn none_and_no_tools_answer_in_text() {
    let registry = registry();
    for model in [MODEL, HERMES] {
        let tools = json!([weather_tool()]);
        let body = request(
            model,
            ask_weather(),
            tools.clone(),
            json!({"tool_choice": "none"}),
        );
        let whole = create(&registry, &body);
        let message = &whole["choices"][0]["message"];
        assert!(message.get("tool_calls").is_none(), "{whole}");
        let text = message["content"].as_str().unwrap();
        assert!(!text.is_empty() && !text.contains("tool_call"), "{text}");
        // `none` renders the same prompt as no tools at all.
        let mut plain = body.clone();
        plain.as_object_mut().unwrap().remove("tools");
        plain.as_object_mut().unwrap().remove("tool_choice");
        assert_eq!(
            create(&registry, &plain)["choices"][0]["message"]["content"],
            text
        );
    }
}

#[test]
fn auto_answers_or_calls_and_streams_the_same() {
    let registry = registry();
    let tools = json!([weather_tool(), time_tool()]);
    for model in [MODEL, HERMES] {
        for messages in [
            ask_weather(),
            json!([{"role": "user", "content": "Say hello to me."}]),
        ] {
            let body = request(
                model,
                messages,
                tools.clone(),
                json!({"parallel_tool_calls": false}),
            );
            let whole = create(&registry, &body);
            let choice = &whole["choices"][0];
            let message = &choice["message"];
            eprintln!("{model} auto: {message}");
            let calls: Vec<Value> = message["tool_calls"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for call in &calls {
                check_call(call, &tools);
            }
            let finish = choice["finish_reason"].as_str().unwrap();
            if calls.is_empty() {
                assert!(finish == "stop" || finish == "length", "{whole}");
                assert!(
                    message["content"].as_str().is_some_and(|t| !t.is_empty()),
                    "{whole}"
                );
            } else {
                assert_eq!(finish, "tool_calls", "{whole}");
            }
            let (content, streamed, streamed_finish) = stream_message(&registry, &body);
            assert_eq!(content.as_deref(), message["content"].as_str(), "{model}");
            assert_eq!(streamed_finish, finish);
            let streamed: Vec<&Value> = streamed.iter().map(|c| &c["function"]).collect();
            let calls: Vec<&Value> = calls.iter().map(|c| &c["function"]).collect();
            assert_eq!(streamed, calls);
        }
    }
}

#[test]
fn the_lazy_grammar_fires_on_the_marker() {
    // One earlier call in the conversation: the model opens its answer with `<tool_call>`,
    // and from the marker on the grammar holds the call to the schema.
    let registry = registry();
    let tools = json!([weather_tool()]);
    let messages = json!([
        {"role": "user", "content": "What is the weather like in Rome?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\", \"unit\": \"celsius\"}"}}]},
        {"role": "user", "content": "What is the weather like in Paris?"},
    ]);
    let body = request(HERMES, messages, tools.clone(), json!({}));
    let whole = create(&registry, &body);
    eprintln!("lazy: {whole}");
    let calls = calls_of(&whole);
    assert_eq!(whole["choices"][0]["finish_reason"], "tool_calls");
    for call in calls {
        check_call(call, &tools);
    }
}

#[test]
fn two_tools_in_parallel() {
    let registry = registry();
    let tools = json!([weather_tool(), time_tool()]);
    let messages = json!([{"role": "user", "content": "What is the weather in Paris, and what time is it in Tokyo?"}]);
    for model in [MODEL, HERMES] {
        let body = request(
            model,
            messages.clone(),
            tools.clone(),
            json!({"tool_choice": "required", "max_tokens": 160}),
        );
        let whole = create(&registry, &body);
        eprintln!("{model} parallel: {}", whole["choices"][0]);
        let calls = calls_of(&whole);
        // A 135M model repeats calls until `max_tokens`: the complete ones are kept.
        assert!(calls.len() >= 2, "{whole}");
        for call in calls {
            check_call(call, &tools);
        }
        let finish = whole["choices"][0]["finish_reason"].as_str().unwrap();
        assert!(finish == "tool_calls" || finish == "length", "{finish}");
        let (_, streamed, streamed_finish) = stream_message(&registry, &body);
        assert_eq!(streamed_finish, finish);
        let streamed: Vec<&Value> = streamed.iter().map(|c| &c["function"]).collect();
        let calls: Vec<&Value> = calls.iter().map(|c| &c["function"]).collect();
        assert_eq!(streamed, calls);
    }
}

#[test]
fn a_tool_result_round_trip_ends_in_an_answer() {
    let registry = registry();
    let tools = json!([weather_tool()]);
    for model in [MODEL, HERMES] {
        let first = create(
            &registry,
            &request(
                model,
                ask_weather(),
                tools.clone(),
                json!({"tool_choice": "required"}),
            ),
        );
        let message = first["choices"][0]["message"].clone();
        let call = &calls_of(&first)[0];
        let mut messages = ask_weather();
        let messages = messages.as_array_mut().unwrap();
        messages.push(message.clone());
        messages.push(json!({"role": "tool", "tool_call_id": call["id"],
            "content": "{\"temperature\": 18, \"sky\": \"cloudy\"}"}));
        let body = request(
            model,
            json!(messages),
            tools.clone(),
            json!({"tool_choice": "none"}),
        );
        let answer = create(&registry, &body);
        let text = answer["choices"][0]["message"]["content"].as_str().unwrap();
        eprintln!("{model} round trip: {text}");
        assert!(!text.trim().is_empty());
        assert_eq!(answer["choices"][0]["finish_reason"], "stop");
        // The call and its result are in the prompt: it is longer than without them.
        let mut without = body.clone();
        without["messages"] = ask_weather();
        let with_tokens = answer["usage"]["prompt_tokens"].as_u64().unwrap();
        let without_tokens = create(&registry, &without)["usage"]["prompt_tokens"]
            .as_u64()
            .unwrap();
        assert!(
            with_tokens > without_tokens + 20,
            "{with_tokens} vs {without_tokens}"
        );
    }
}

#[test]
fn tool_errors_name_the_field() {
    let registry = registry();
    let cases = [
        (
            json!({"tools": [weather_tool()], "tool_choice": {"type": "function", "function": {"name": "nope"}}}),
            "tool_choice",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": ""}}]}),
            "tools[0].function.name",
        ),
        (
            json!({"tools": [{"type": "function", "function": {}}]}),
            "tools[0].function.name",
        ),
        (
            json!({"tools": [{"type": "retrieval", "function": {"name": "f"}}]}),
            "tools[0].type",
        ),
        (
            json!({"tools": [weather_tool(), {"type": "function", "function": {"name": "g", "parameters": {"type": "object", "properties": {"x": {"$ref": "https://example.com/x"}}}}}]}),
            "tools[1].function.parameters",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": 3}}]}),
            "tools[0].function.parameters",
        ),
        (json!({"tool_choice": "required"}), "tool_choice"),
        (
            json!({"tool_choice": "sometimes", "tools": [weather_tool()]}),
            "tool_choice",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}]}),
            "messages[1].tool_call_id",
        ),
        (
            json!({"tools": [weather_tool()], "response_format": {"type": "json_object"}, "messages": [{"role": "user", "content": "json"}]}),
            "response_format",
        ),
    ];
    for (extra, param) in cases {
        let mut body = json!({"model": MODEL, "messages": ask_weather()});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let err = registry
            .call_blocking("chat.completions.create", &body.to_string())
            .expect_err(&body.to_string());
        assert_eq!(err.status(), 400, "{err}");
        assert_eq!(err.param(), Some(param), "{body}: {err}");
    }
}

/// A Llama 3.1-style template: tools in the last user turn, calls as a bare
/// `{"name", "parameters"}` object (no marker a lazy grammar could wait for).
const LLAMA3_TEMPLATE: &str = r#"{%- for message in messages %}<|start_header_id|>{{ message.role }}<|end_header_id|>

{% if tools and loop.last and message.role == 'user' %}Given the following functions, respond with a JSON for a function call with its proper arguments that best answers the given prompt.

Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}. Do not use variables.

{% for tool in tools %}{{ tool | tojson }}

{% endfor %}{% endif %}{{ message.content }}<|eot_id|>{% endfor %}
{%- if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>

{% endif %}"#;

/// Under `auto`, a Llama 3 call opens with no marker, so a `strict` tool puts the whole answer
/// under a grammar (a call, or text that does not open like one; its acceptance is unit-tested
/// in tool_calling::grammar). An answer in text is the same as without `strict`.
#[test]
fn strict_tools_leave_text_answers_alone_on_llama_3_templates() {
    let registry = Registry::new();
    let mut llama3 = spec("tools/llama3", smollm2());
    llama3.chat_template = Some(LLAMA3_TEMPLATE.into());
    registry.deploy(llama3).expect("deploy a Llama 3 template");
    let registry = Arc::new(registry);
    let ask = |strict: bool| {
        let mut tool = weather_tool();
        tool["function"]["strict"] = json!(strict);
        tool["function"]["parameters"]["additionalProperties"] = json!(false);
        let body = request(
            "tools/llama3",
            ask_weather(),
            json!([tool]),
            json!({"tool_choice": "auto"}),
        );
        create(&registry, &body)["choices"][0]["message"].clone()
    };
    let (strict, loose) = (ask(true), ask(false));
    assert!(strict["tool_calls"].is_null(), "{strict}");
    let text = strict["content"].as_str().unwrap();
    assert!(
        !text.trim().is_empty() && !text.trim_start().starts_with('{'),
        "{strict}"
    );
    assert_eq!(strict, loose);
}
