//! The corpus of bad requests (`tests/corpus/bad_requests.json`) through the core's one entry,
//! `Registry::call`: each case ends in the error the corpus names (status, type, code, param),
//! and the service keeps serving. Every binding runs the same corpus to prove its mapping.
//! Also the parity of the entry: every operation is served.

mod common;

use std::sync::Arc;

use common::*;
use modelservice::{Operation, Registry};
use serde_json::{json, Value};

fn corpus() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/bad_requests.json"
    ))
    .expect("the corpus is readable");
    serde_json::from_str(&text).expect("the corpus is JSON")
}

/// The corpus's service spec, with the real model path.
fn service_spec(corpus: &Value) -> Value {
    let mut spec = corpus["service"].clone();
    spec["model"] = json!(smollm2());
    spec
}

#[test]
fn every_bad_request_gets_its_error_and_the_service_keeps_serving() {
    let corpus = corpus();
    let registry = Arc::new(Registry::new());
    let spec = service_spec(&corpus).to_string();
    registry.call_blocking("services.deploy", &spec).unwrap();

    let cases = corpus["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let body = match (&case["body"], &case["body_text"]) {
            (Value::String(s), _) if s == "$service" => spec.clone(),
            (Value::Null, Value::String(text)) => text.clone(),
            (body, _) => body.to_string(),
        };
        let op = case["op"].as_str().unwrap();
        let err = registry
            .call_blocking(op, &body)
            .expect_err(&format!("{name}: must fail"));
        let envelope: Value = serde_json::from_str(&err.to_json()).unwrap();
        let got = json!({
            "status": err.status(),
            "type": envelope["error"]["type"],
            "code": envelope["error"]["code"],
            "param": envelope["error"]["param"],
        });
        let want = json!({
            "status": case["status"],
            "type": case["type"],
            "code": case["code"],
            "param": case["param"],
        });
        assert_eq!(got, want, "{name}: {err}");
        assert!(!err.to_string().is_empty());
    }

    let answer = registry
        .call_blocking(
            "chat.completions.create",
            r#"{"model": "corpus/smol", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4, "temperature": 0}"#,
        )
        .unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(
        registry.list().data.len(),
        1,
        "no bad deploy left a service"
    );
}

/// Every operation answers through `call` (and the streamable ones through `stream`) with the
/// shape its name promises, on a real service.
#[test]
fn every_operation_is_served() {
    let registry = Arc::new(Registry::new());
    let embedder =
        json!({"name": "e", "access_name": "ops/minilm", "model": minilm(), "threads": 1});
    registry
        .call_blocking("services.deploy", &embedder.to_string())
        .unwrap();
    let body_of = |op: Operation| -> String {
        match op {
            Operation::ChatCompletionsCreate => json!({
                "model": "ops/smol",
                "messages": [{"role": "user", "content": "Say hi."}],
                "max_tokens": 4,
                "temperature": 0,
            }),
            Operation::ServicesDeploy => json!({
                "name": "ops", "access_name": "ops/smol", "model": smollm2(),
                "threads": 1, "context_length": 256,
            }),
            Operation::ModelsRetrieve => json!({"model": "ops/smol"}),
            Operation::ServicesRetrieve => json!({"access_name": "ops/smol"}),
            Operation::ServicesScale => json!({"access_name": "ops/smol", "instances": 2}),
            Operation::ServicesDelete => json!({"access_name": "ops/smol", "confirm": "ops"}),
            Operation::ModelsList | Operation::ServicesList => json!({}),
            Operation::EmbeddingsCreate => json!({"model": "ops/minilm", "input": ["a", "b"]}),
            Operation::CompletionsCreate => json!({
                "model": "ops/smol", "prompt": ["Say", "hi"], "max_tokens": 3, "temperature": 0,
            }),
            Operation::ServicesMetrics => json!({"access_name": "ops/smol"}),
            other => panic!("no test body for {other}: add one"),
        }
        .to_string()
    };
    // Deploy first and delete last; the rest in the documented order.
    let mut order: Vec<Operation> = Operation::ALL.to_vec();
    order.sort_by_key(|op| match op {
        Operation::ServicesDeploy => 0,
        Operation::ServicesDelete => 2,
        _ => 1,
    });
    for op in order {
        let json = registry.call_blocking(op.name(), &body_of(op)).unwrap();
        let value: Value = serde_json::from_str(&json).unwrap();
        let object = value["object"].as_str().unwrap_or("");
        match op {
            Operation::ChatCompletionsCreate => assert_eq!(object, "chat.completion"),
            Operation::CompletionsCreate => {
                assert_eq!(object, "text_completion");
                assert_eq!(value["choices"].as_array().unwrap().len(), 2);
            }
            Operation::ModelsList | Operation::ServicesList => assert_eq!(object, "list"),
            Operation::ModelsRetrieve => assert_eq!(object, "model"),
            Operation::ServicesMetrics => {
                // Runs after the chat and text completions above (whole and streamed).
                assert_eq!(object, "list");
                let service = &value["data"][0];
                assert_eq!(service["access_name"], "ops/smol", "{json}");
                assert!(service["requests"]["200"].as_u64() >= Some(4), "{json}");
            }
            Operation::EmbeddingsCreate => {
                assert_eq!(object, "list");
                assert_eq!(value["data"][1]["embedding"].as_array().unwrap().len(), 384);
            }
            _ => assert!(
                value["id"].as_str().unwrap().starts_with("svc-"),
                "{op}: {json}"
            ),
        }
        if op.can_stream() {
            let mut stream = registry.stream(op.name(), &body_of(op)).unwrap();
            let mut chunks = 0;
            while let Some(chunk) = stream.next_blocking() {
                let chunk: Value = serde_json::from_str(&chunk.unwrap()).unwrap();
                assert_eq!(chunk["id"], stream.id());
                chunks += 1;
            }
            assert!(chunks >= 2, "{op}: {chunks} chunks");
        }
    }
    let names: Vec<String> = registry
        .list()
        .data
        .into_iter()
        .map(|s| s.access_name)
        .collect();
    assert_eq!(names, ["ops/minilm"], "only the embedding service is left");
}
