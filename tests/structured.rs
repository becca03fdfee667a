//! Structured output (`response_format`) on the real SmolLM2: answers that parse and satisfy
//! their JSON Schema (checked by an independent validator), streamed and not, with `n` > 1;
//! schema errors named; and no combination of sampling parameters takes the process down.

mod common;

use std::sync::Arc;

use common::*;
use modelservice::{FinishReason, Registry};
use serde_json::{json, Value};

fn registry() -> Arc<Registry> {
    Arc::new(registry_with("json/smol"))
}

fn request(format: Value, prompt: &str, extra: Value) -> String {
    let mut body = json!({
        "model": "json/smol",
        // One example turn: a 135M model then answers in one short object and ends its turn.
        "messages": [
            {"role": "system", "content": "Reply with one short JSON object."},
            {"role": "user", "content": "A dog named Rex, 2 years old."},
            {"role": "assistant", "content": "{\"name\": \"Rex\", \"age\": 2}"},
            {"role": "user", "content": prompt},
        ],
        "response_format": format,
        "temperature": 0,
        "max_tokens": 200,
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body.to_string()
}

fn person_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 20},
            "age": {"type": "integer"},
            "mood": {"enum": ["happy", "sad", "calm"]},
            "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 16}, "maxItems": 3},
            "address": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 20}, "zip": {"type": "integer"}},
                "required": ["city", "zip"]
            }
        },
        "required": ["name", "age", "mood", "hobbies", "address"]
    })
}

fn json_schema_format(schema: Value) -> Value {
    json!({"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": true}})
}

fn answers(completion: &str) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(completion).unwrap();
    v["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["message"]["content"].as_str().unwrap().to_owned(),
                c["finish_reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn json_object_and_json_schema_answers_parse_and_validate() {
    let registry = registry();
    let object = registry
        .call_blocking(
            "chat.completions.create",
            &request(
                json!({"type": "json_object"}),
                "A cat named Felix, 4 years old.",
                json!({}),
            ),
        )
        .unwrap();
    for (text, finish) in answers(&object) {
        assert_eq!(finish, "stop", "{text}");
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert!(value.is_object(), "{text}");
    }

    let schema = person_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let body = request(
        json_schema_format(schema.clone()),
        "Invent a person.",
        json!({"n": 3, "seed": 7, "temperature": 0.8}),
    );
    let whole = registry
        .call_blocking("chat.completions.create", &body)
        .unwrap();
    let choices = answers(&whole);
    assert_eq!(choices.len(), 3);
    for (text, finish) in &choices {
        assert_eq!(finish, "stop", "{text}");
        let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{text}: {errors:?}");
    }

    // Streamed, the same seed gives the same three answers, chunk by chunk.
    let mut stream = registry.stream("chat.completions.create", &body).unwrap();
    let mut streamed = vec![String::new(); 3];
    while let Some(chunk) = stream.next_blocking() {
        let chunk: Value = serde_json::from_str(&chunk.unwrap()).unwrap();
        for c in chunk["choices"].as_array().unwrap() {
            if let Some(text) = c["delta"]["content"].as_str() {
                streamed[c["index"].as_u64().unwrap() as usize].push_str(text);
            }
        }
    }
    let whole_texts: Vec<String> = choices.into_iter().map(|(t, _)| t).collect();
    assert_eq!(streamed, whole_texts);
}

#[test]
fn a_cut_answer_says_length_and_schema_errors_name_the_field() {
    let registry = registry();
    let cut = registry
        .call_blocking(
            "chat.completions.create",
            &request(
                json_schema_format(person_schema()),
                "Invent a person.",
                json!({"max_tokens": 5}),
            ),
        )
        .unwrap();
    assert_eq!(answers(&cut)[0].1, "length");

    let cases = [
        (
            json!({"type": "json_schema", "json_schema": {"name": "bad name!", "schema": {"type": "object"}}}),
            "response_format.json_schema.name",
        ),
        (
            json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}}}),
            "response_format.json_schema.schema",
        ),
        (
            json!({"type": "json_schema", "json_schema": {"name": "x", "schema": ["not", "a", "schema"]}}),
            "response_format.json_schema.schema",
        ),
        (json!({"type": "xml"}), "response_format.type"),
    ];
    for (format, param) in cases {
        let err = registry
            .call_blocking(
                "chat.completions.create",
                &request(format.clone(), "Say hi in JSON.", json!({})),
            )
            .unwrap_err();
        assert_eq!(err.status(), 400, "{format}: {err}");
        assert_eq!(err.param(), Some(param), "{format}: {err}");
    }
    // OpenAI's rule for JSON mode: the messages must mention JSON.
    let err = registry
        .call_blocking(
            "chat.completions.create",
            &json!({
                "model": "json/smol",
                "messages": [{"role": "user", "content": "Describe a cat."}],
                "response_format": {"type": "json_object"},
            })
            .to_string(),
        )
        .unwrap_err();
    assert_eq!(err.param(), Some("messages"));
}

/// Every combination of sampling parameters that could mask the grammar's tokens ends the
/// request with an answer or a clear error; the process survives and keeps serving.
#[test]
fn no_sampling_combination_aborts_the_process() {
    let registry = registry();
    let brace = *registry.tokenize("json/smol", "{").unwrap().last().unwrap();
    let quote = *registry
        .tokenize("json/smol", "\"")
        .unwrap()
        .last()
        .unwrap();
    let ban = json!({brace.to_string(): -100, quote.to_string(): -100});
    let samplings = [
        json!({"temperature": 0}),
        json!({"temperature": 1.0, "seed": 1}),
        json!({"temperature": 1.5, "top_k": 1, "seed": 2}),
        json!({"temperature": 1.0, "min_p": 0.9, "seed": 3}),
        json!({"temperature": 1.0, "top_p": 0.01, "seed": 4}),
        json!({"temperature": 0, "logit_bias": ban}),
        json!({"temperature": 1.0, "logit_bias": ban, "top_k": 1, "seed": 5}),
        json!({"temperature": 1.0, "presence_penalty": 2, "frequency_penalty": 2, "repeat_penalty": 3.0, "seed": 6}),
        json!({"temperature": 0, "stop": ["{", "\""]}),
        json!({"temperature": 0, "max_tokens": 1}),
    ];
    let formats = [
        json!({"type": "json_object"}),
        json_schema_format(person_schema()),
        json_schema_format(
            json!({"type": "object", "properties": {"ok": {"const": true}}, "required": ["ok"]}),
        ),
    ];
    let mut answered = 0;
    for format in &formats {
        for sampling in &samplings {
            let body = request(
                format.clone(),
                "Reply in JSON.",
                json!({"max_tokens": 40})
                    .as_object()
                    .unwrap()
                    .clone()
                    .into_iter()
                    .chain(sampling.as_object().unwrap().clone())
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
            );
            match registry.call_blocking("chat.completions.create", &body) {
                Ok(json) => {
                    answered += 1;
                    let (_, finish) = &answers(&json)[0];
                    assert!(["stop", "length"].contains(&finish.as_str()), "{finish}");
                }
                Err(e) => assert!((400..500).contains(&e.status()), "{format} {sampling}: {e}"),
            }
        }
    }
    assert!(answered > 0);
    let alive = registry
        .chat_blocking(greedy("json/smol", "Say hi.", 4))
        .unwrap();
    assert!(alive.choices[0].finish_reason == FinishReason::Length || !content(&alive).is_empty());
}

/// `json_schema.description` is guidance for the model (as OpenAI documents it): it joins the
/// system prompt, so the prompt grows by its tokens, and the answer still follows the schema.
#[test]
fn the_schema_description_reaches_the_model() {
    let registry = registry();
    let schema = json!({
        "type": "object",
        "properties": {"colour": {"enum": ["red", "green", "blue"]}},
        "required": ["colour"],
        "additionalProperties": false
    });
    let description = "The colour of a clear daytime sky.";
    let with = |description: Option<&str>| {
        let mut format = json_schema_format(schema.clone());
        if let Some(d) = description {
            format["json_schema"]["description"] = json!(d);
        }
        modelservice::ChatCompletionRequest::from_json(&request(
            format,
            "Pick a colour.",
            json!({}),
        ))
        .unwrap()
    };
    let plain = registry.count_prompt_tokens(&with(None)).unwrap();
    let guided = registry
        .count_prompt_tokens(&with(Some(description)))
        .unwrap();
    let guidance = format!("\n\nAnswer in JSON following the `person` format: {description}");
    let added = registry.tokenize("json/smol", &guidance).unwrap().len() as u32;
    assert!(
        guided > plain && guided.abs_diff(plain + added) <= 2,
        "{plain} + {added} vs {guided}"
    );
    let answer = registry.chat_blocking(with(Some(description))).unwrap();
    let content = content(&answer);
    let value: Value = serde_json::from_str(content).unwrap();
    assert!(
        ["red", "green", "blue"].contains(&value["colour"].as_str().unwrap()),
        "{content}"
    );
    println!("with the description: {content}");
}
