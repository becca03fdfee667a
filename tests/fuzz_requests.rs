//! Structure-aware fuzzing of what callers send: valid chat requests, legacy text-completion
//! requests and service specs, mutated (wrong types, huge and negative numbers, NaN and
//! infinities, deep nesting, long strings, lone surrogates, unknown fields, duplicate keys, empty
//! and enormous arrays, cut-off text), through `from_json` and `validate`, and every request that
//! passes them through the engine (`Registry::chat_stream`, or the one entry's
//! `completions.create` stream) on a deployed SmolLM2 service. Every case must end in a success or a typed 4xx: never a
//! panic, a 5xx, a hang or an abort.
//!
//! `make test` runs a short budget; `make fuzz` (`MODELSERVICE_FUZZ=long`) a long one.

mod common;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::*;
use modelservice::{ChatCompletionRequest, CompletionRequest, Error, Registry, ServiceSpec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

const SERVICE: &str = "u/fuzz";
/// The text-completion fuzzer's own service (in its own registry), so the chat test's closing
/// delete does not pull it away mid-run.
const TEXT_SERVICE: &str = "u/fuzz-text";
/// How long one request may take in the engine before it counts as hung.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(120);

fn long_run() -> bool {
    std::env::var("MODELSERVICE_FUZZ").is_ok_and(|v| v == "long")
}

/// Cases to run: `MODELSERVICE_FUZZ_CASES` if set, else the short or long budget.
fn cases(short: u32, long: u32) -> u32 {
    std::env::var("MODELSERVICE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if long_run() { long } else { short })
}

fn registry() -> Arc<Registry> {
    static REGISTRY: OnceLock<Arc<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| Arc::new(registry_with(SERVICE)))
        .clone()
}

fn text_registry() -> Arc<Registry> {
    static REGISTRY: OnceLock<Arc<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| Arc::new(registry_with(TEXT_SERVICE)))
        .clone()
}

/// A request using every parameter, with a placeholder text the textual mutations find.
fn valid_request() -> Value {
    json!({
        "model": SERVICE,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Say PLACEHOLDER."}]},
            {"role": "assistant", "content": null},
            {"role": "user", "content": "Again.", "name": "fuzzer"}
        ],
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 4,
        "stop": ["\n\n", "END"],
        "seed": 7,
        "n": 2,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.1,
        "logit_bias": {"42": -5, "7": 3},
        "top_k": 40,
        "min_p": 0.05,
        "repeat_penalty": 1.1,
        "user": "fuzz",
        "stream": true,
        "stream_options": {"include_usage": true}
    })
}

/// A request with tools and a required call: the tool prompt, grammar and parser paths.
fn valid_tool_request() -> Value {
    json!({
        "model": SERVICE,
        "messages": [
            {"role": "user", "content": "Weather in PLACEHOLDER?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "user", "content": "And tomorrow?"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
                "required": ["city"]}}}],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "temperature": 0.7,
        "max_tokens": 8,
        "seed": 7,
        "stream": true
    })
}

/// A legacy text-completion request using every parameter it accepts (`echo` and `logprobs`
/// are refused together, so it starts with one of them).
fn valid_completion_request() -> Value {
    json!({
        "model": TEXT_SERVICE,
        "prompt": ["Say PLACEHOLDER.", "One, two,"],
        "max_tokens": 4,
        "temperature": 0.7,
        "top_p": 0.9,
        "n": 2,
        "best_of": 2,
        "logprobs": 2,
        "echo": false,
        "suffix": "",
        "stop": ["\n\n", "END"],
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.1,
        "logit_bias": {"42": -5, "7": 3},
        "top_k": 40,
        "min_p": 0.05,
        "repeat_penalty": 1.1,
        "user": "fuzz",
        "stream": true,
        "stream_options": {"include_usage": true}
    })
}

/// Extreme values of the right JSON type for the parameters only text completions have (the
/// shared sampling ones come from [`typed_value`]).
fn typed_completion_value() -> BoxedStrategy<(&'static str, Value)> {
    let prompt = prop_oneof![
        Just(json!("")),
        Just(json!("PLACEHOLDER")),
        Just(json!([])),
        Just(json!([""])),
        Just(json!(["a", ""])),
        Just(json!(vec!["Count:"; 64])),
        Just(json!(vec!["Count:"; 65])),
        Just(json!([1, 2, 3])),
        Just(json!([0])),
        Just(json!([49151, 49152])),
        Just(json!([u32::MAX])),
        Just(json!([-1])),
        Just(json!([[1, 2], [3]])),
        Just(json!([[1, 2], []])),
        Just(json!([[], []])),
        Just(json!([[1], "a"])),
        Just(json!(vec![vec![42u32]; 64])),
        prop::collection::vec(0u32..49152, 1..64).prop_map(|t| json!(t)),
        (1usize..2000).prop_map(|n| json!("word ".repeat(n))),
    ];
    let small_int = prop_oneof![
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(2)),
        Just(json!(5)),
        Just(json!(6)),
        Just(json!(16)),
        Just(json!(17)),
        Just(json!(-1)),
        Just(json!(u32::MAX)),
        Just(json!(null)),
    ];
    let field = prop_oneof![Just("n"), Just("best_of"), Just("logprobs")];
    prop_oneof![
        3 => prompt.prop_map(|v| ("prompt", v)),
        3 => (field, small_int).prop_map(|(f, v)| (f, v)),
        1 => prop_oneof![Just(json!(true)), Just(json!(false)), Just(json!(null))].prop_map(|v| ("echo", v)),
        1 => prop_oneof![Just(json!("")), Just(json!(" ")), Just(json!("end")), Just(json!(null))]
            .prop_map(|v| ("suffix", v)),
        3 => typed_value(),
    ]
    .boxed()
}

fn valid_spec() -> Value {
    json!({
        "name": "PLACEHOLDER",
        "access_name": "u/spec",
        "model": "/nonexistent/model.gguf",
        "instances": 1,
        "context_length": 1024,
        "slots": 4,
        "threads": 1,
        "gpu_layers": 0,
        "chat_template": "{{ messages[0].content }}",
        "queue_size": 64
    })
}

/// JSON values no well-behaved client sends.
fn hostile_value() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just(json!(i64::MIN)),
            Just(json!(u64::MAX)),
            Just(json!(-1)),
            Just(json!(0)),
            Just(json!(1)),
            Just(json!(u32::MAX)),
            Just(json!(u32::MAX as u64 + 1)),
            Just(json!(1e308)),
            Just(json!(-1e308)),
            Just(json!(5e-324)),
            Just(json!(-0.0)),
            Just(json!(2.5)),
        ],
        any::<f64>()
            .prop_filter("JSON holds finite numbers", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[ -~]{0,64}".prop_map(Value::from),
        // Long strings: 64 KiB to 2 MiB.
        (1usize..=32).prop_map(|k| Value::from("long text ".repeat(k * 6554))),
        Just(json!([])),
        Just(json!({})),
        Just(json!([""])),
        prop::collection::vec(any::<i32>().prop_map(Value::from), 0..8).prop_map(Value::from),
        // Enormous arrays.
        (1usize..=4).prop_map(|k| Value::Array(vec![json!("stop"); k * 5000])),
        // Nested arrays and objects, up to well past serde_json's recursion limit.
        (1usize..=300).prop_map(|depth| {
            (0..depth).fold(json!(1), |inner, i| {
                if i % 2 == 0 {
                    json!([inner])
                } else {
                    json!({"k": inner})
                }
            })
        }),
        prop::collection::btree_map("[a-z0-9_]{1,12}", any::<i16>().prop_map(Value::from), 0..6)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        // A valid-looking message, role or content part in the wrong place.
        Just(json!({"role": "user", "content": "hi"})),
        Just(json!({"type": "image_url", "image_url": {"url": "http://x"}})),
        Just(json!("wizard")),
    ]
    .boxed()
}

/// Extreme values of the right JSON type for each numeric or string parameter, so a mutated
/// request gets past parsing and tests validation and the engine.
fn typed_value() -> BoxedStrategy<(&'static str, Value)> {
    let float = prop_oneof![
        Just(json!(0.0)),
        Just(json!(2.0)),
        Just(json!(1e-45)),
        Just(json!(1e39)),
        Just(json!(-1e39)),
        Just(json!(-0.0)),
        Just(json!(1.0000001)),
        (-3.0f64..3.0).prop_map(Value::from),
    ];
    let int = prop_oneof![
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(16)),
        Just(json!(17)),
        Just(json!(1023)),
        Just(json!(1024)),
        Just(json!(u32::MAX)),
        Just(json!(i32::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(i64::MAX)),
        Just(json!(-1)),
    ];
    let float_field = prop_oneof![
        Just("temperature"),
        Just("top_p"),
        Just("presence_penalty"),
        Just("frequency_penalty"),
        Just("min_p"),
        Just("repeat_penalty"),
    ];
    let int_field = prop_oneof![
        Just("max_tokens"),
        Just("max_completion_tokens"),
        Just("n"),
        Just("seed"),
        Just("top_k"),
    ];
    let bias_key = prop_oneof![
        Just("0"),
        Just("49151"),
        Just("49152"),
        Just("4294967295"),
        Just("-1"),
        Just("abc"),
        Just(""),
    ];
    prop_oneof![
        (float_field, float).prop_map(|(f, v)| (f, v)),
        (int_field, int).prop_map(|(f, v)| (f, v)),
        (bias_key, float_bias()).prop_map(|(k, v)| ("logit_bias", json!({ k: v }))),
        prop_oneof![
            Just(json!("")),
            Just(json!(["", "", ""])),
            Just(json!(["a", "b", "c", "d", "e"])),
            Just(json!("<|im_end|>")),
            Just(json!(" ")),
            (1usize..2000).prop_map(|n| json!("s".repeat(n))),
        ]
        .prop_map(|v| ("stop", v)),
        prop_oneof![Just(json!(true)), Just(json!(false))].prop_map(|v| ("stream", v)),
        "[ -~]{0,40}".prop_map(|s| ("model", json!(s))),
        Just(("model", json!(SERVICE))),
    ]
    .boxed()
}

/// Extreme values of a spec's resource fields.
fn typed_spec_value() -> BoxedStrategy<(&'static str, Value)> {
    let field = prop_oneof![
        Just("instances"),
        Just("slots"),
        Just("context_length"),
        Just("threads"),
        Just("queue_size"),
        Just("gpu_layers"),
    ];
    let value = prop_oneof![
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(15)),
        Just(json!(16)),
        Just(json!(64)),
        Just(json!(65)),
        Just(json!(256)),
        Just(json!(257)),
        Just(json!(4096)),
        Just(json!(10_000)),
        Just(json!(1 << 20)),
        Just(json!((1 << 20) + 1)),
        Just(json!(u32::MAX)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(null)),
    ];
    (field, value).boxed()
}

fn float_bias() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!(-100)),
        Just(json!(100)),
        Just(json!(100.5)),
        Just(json!(1e-45)),
        (-100.0f64..100.0).prop_map(Value::from),
    ]
    .boxed()
}

/// One structural change to the JSON tree.
#[derive(Debug, Clone)]
enum Edit {
    /// Sets a parameter to an extreme value of its own type.
    Typed(&'static str, Value),
    /// Sets field `.0` (by index among the body's fields, or a new unknown field) to a value.
    Set(usize, Value),
    Remove(usize),
    /// Sets field `.1` of message `.0` (role, content, name, or an unknown one).
    SetInMessage(usize, usize, Value),
    /// Replaces the messages with this many copies of a valid one (0 = empty).
    Messages(usize),
    /// Replaces the first content part's text.
    PartText(Value),
}

/// One change to the JSON text itself (what a tree cannot hold).
#[derive(Debug, Clone)]
enum TextEdit {
    None,
    /// The field at this index appears twice.
    DuplicateKey(usize),
    /// An escape that is not a Unicode scalar value, in a message text.
    Surrogate(&'static str),
    /// A number JSON does not have, as the first numeric field.
    BadNumber(&'static str),
    /// The text cut at this fraction (in 1/1000).
    Truncate(usize),
    /// Bytes after the closing brace.
    Trailing(&'static str),
}

fn edit(fields: usize, typed: BoxedStrategy<(&'static str, Value)>) -> BoxedStrategy<Edit> {
    prop_oneof![
        8 => typed.prop_map(|(f, v)| Edit::Typed(f, v)),
        4 => (0..fields + 2, hostile_value()).prop_map(|(i, v)| Edit::Set(i, v)),
        1 => (0..fields).prop_map(Edit::Remove),
        2 => (0usize..4, 0usize..5, hostile_value()).prop_map(|(m, f, v)| Edit::SetInMessage(m, f, v)),
        1 => prop_oneof![Just(0usize), Just(1), Just(300), Just(20_000)].prop_map(Edit::Messages),
        1 => hostile_value().prop_map(Edit::PartText),
    ]
    .boxed()
}

fn text_edit(fields: usize) -> BoxedStrategy<TextEdit> {
    prop_oneof![
        16 => Just(TextEdit::None),
        1 => (0..fields).prop_map(TextEdit::DuplicateKey),
        1 => prop_oneof![
            Just("\\ud800"),
            Just("\\udfff"),
            Just("\\ud800\\u0041"),
            Just("\\udbff\\udbff"),
            Just("\\u0000"),
            Just("\\uffff"),
            Just("\\x41"),
        ]
        .prop_map(TextEdit::Surrogate),
        1 => prop_oneof![
            Just("NaN"),
            Just("Infinity"),
            Just("-Infinity"),
            Just("1e999"),
            Just("-1e999"),
            Just("0x10"),
            Just("01"),
            Just("1."),
            Just("99999999999999999999999999999"),
        ]
        .prop_map(TextEdit::BadNumber),
        1 => (0usize..1000).prop_map(TextEdit::Truncate),
        1 => prop_oneof![Just("}"), Just(",{}"), Just(" x"), Just("\u{0}")].prop_map(TextEdit::Trailing),
    ]
    .boxed()
}

/// The body's field names, in order, plus two unknown ones.
fn field_name(body: &Value, i: usize) -> String {
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    match keys.get(i) {
        Some(k) => (*k).clone(),
        None => format!("unknown_field_{}", i - keys.len()),
    }
}

fn apply(body: &mut Value, e: &Edit) {
    let fields = body.as_object().unwrap().len();
    match e {
        Edit::Typed(field, v) => body[*field] = v.clone(),
        Edit::Set(i, v) => {
            let name = field_name(body, (*i).min(fields + 1));
            body[name] = v.clone();
        }
        Edit::Remove(i) => {
            let name = field_name(body, (*i).min(fields.saturating_sub(1)));
            body.as_object_mut().unwrap().remove(&name);
        }
        Edit::SetInMessage(m, f, v) => {
            let field = ["role", "content", "name", "tool_call_id", "unknown"][*f];
            if let Some(Value::Array(messages)) = body.get_mut("messages") {
                let n = messages.len();
                if let Some(Value::Object(message)) = messages.get_mut(m % n.max(1)) {
                    message.insert(field.into(), v.clone());
                }
            }
        }
        Edit::Messages(copies) => {
            body["messages"] =
                Value::Array(vec![json!({"role": "user", "content": "hi"}); *copies]);
        }
        Edit::PartText(v) => {
            // An earlier edit may have made the part something other than an object.
            if let Some(Value::Object(part)) = body.pointer_mut("/messages/1/content/0") {
                part.insert("text".into(), v.clone());
            }
        }
    }
}

fn apply_text(body: &Value, e: &TextEdit) -> String {
    let text = serde_json::to_string(body).unwrap();
    match e {
        TextEdit::None => text,
        TextEdit::DuplicateKey(i) => match body.as_object().unwrap().iter().nth(*i) {
            Some((k, v)) => format!("{{{}:{},{}", json!(k), v, &text[1..]),
            None => text,
        },
        TextEdit::Surrogate(escape) => text.replacen("PLACEHOLDER", escape, 1),
        TextEdit::BadNumber(n) => match text.find(|c: char| c.is_ascii_digit()) {
            // Replaces the first number's first digit run.
            Some(start) => {
                let end = text[start..]
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .map_or(text.len(), |e| start + e);
                format!("{}{n}{}", &text[..start], &text[end..])
            }
            None => text,
        },
        TextEdit::Truncate(per_mille) => {
            let mut at = text.len() * per_mille / 1000;
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text[..at].to_owned()
        }
        TextEdit::Trailing(tail) => text + tail,
    }
}

/// A mutated document: up to four tree edits, then at most one text edit.
fn mutated(base: Value, typed: BoxedStrategy<(&'static str, Value)>) -> BoxedStrategy<String> {
    let fields = base.as_object().unwrap().len();
    (
        prop::collection::vec(edit(fields, typed), 1..=3),
        text_edit(fields),
    )
        .prop_map(move |(edits, text)| {
            let mut body = base.clone();
            for e in &edits {
                apply(&mut body, e);
            }
            apply_text(&body, &text)
        })
        .boxed()
}

/// What became of the cases, by outcome, for the closing tally.
type Tally = Arc<Mutex<BTreeMap<String, usize>>>;

fn count(tally: &Tally, what: impl Into<String>) {
    *tally.lock().unwrap().entry(what.into()).or_default() += 1;
}

/// A refusal must be a typed 4xx: a status below 500 and an OpenAI error code.
fn check_refusal(stage: &str, e: &Error) -> Result<(), TestCaseError> {
    if e.status() >= 500 || e.code().is_none() {
        return Err(TestCaseError::fail(format!(
            "{stage} answered {} {:?}: {e}",
            e.status(),
            e.code()
        )));
    }
    Ok(())
}

/// Runs a valid request through the engine on a helper thread, reading a few chunks (then
/// dropping the stream, which cancels it); a stuck request fails the case.
fn through_engine(request: ChatCompletionRequest) -> Result<String, TestCaseError> {
    served_in_time("chat_stream", move || {
        let mut stream = registry().chat_stream(request)?;
        first_chunks(|| stream.next_blocking())
    })
}

/// The same for a text-completion body, through the core's one entry (`completions.create`).
fn text_through_engine(body: String) -> Result<String, TestCaseError> {
    served_in_time("completions.create", move || {
        let mut stream = text_registry().stream("completions.create", &body)?;
        first_chunks(|| stream.next_blocking())
    })
}

/// Reads up to four chunks; the first error ends the read.
fn first_chunks<T>(mut next: impl FnMut() -> Option<Result<T, Error>>) -> Result<(), Error> {
    for _ in 0..4 {
        if next().transpose()?.is_none() {
            break;
        }
    }
    Ok(())
}

/// Runs `serve` on a helper thread: "served", a typed refusal, or a failure if it hangs.
fn served_in_time(
    stage: &str,
    serve: impl FnOnce() -> Result<(), Error> + Send + 'static,
) -> Result<String, TestCaseError> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(serve());
    });
    match rx.recv_timeout(ENGINE_TIMEOUT) {
        Ok(Ok(())) => Ok("served".into()),
        Ok(Err(e)) => {
            check_refusal(stage, &e)?;
            Ok(format!("engine refused: {}", e.code().unwrap_or("-")))
        }
        Err(_) => Err(TestCaseError::fail("the request hung in the engine")),
    }
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        // Found crashes become named regression tests below, not a file in the tree.
        failure_persistence: None,
        // Shrinking re-runs a failing case many times (a hang costs ENGINE_TIMEOUT each time).
        max_shrink_iters: 32,
        ..Config::default()
    })
}

fn print_tally(what: &str, tally: &Tally) {
    let tally = tally.lock().unwrap();
    let total: usize = tally.values().sum();
    println!("{what}: {total} cases");
    for (outcome, n) in tally.iter() {
        println!("  {n:6}  {outcome}");
    }
}

/// Runs `cases` mutated bodies through the one way in as a caller would: parsed (`parse`), checked
/// (`validate`), then served (`serve`); each stage may refuse only with a typed 4xx. Returns
/// how many cases ended where.
fn fuzz_requests<R>(
    cases: u32,
    strategy: BoxedStrategy<String>,
    parse: impl Fn(&str) -> Result<R, Error>,
    validate: impl Fn(&R) -> Result<(), Error>,
    serve: impl Fn(R, String) -> Result<String, TestCaseError>,
) -> Tally {
    let tally: Tally = Arc::default();
    runner(cases)
        .run(&strategy, |text| {
            let request = match parse(&text) {
                Ok(r) => r,
                Err(e) => {
                    check_refusal("from_json", &e)?;
                    count(&tally, "parse refused");
                    return Ok(());
                }
            };
            if let Err(e) = validate(&request) {
                check_refusal("validate", &e)?;
                count(
                    &tally,
                    format!("validate refused: {}", e.param().unwrap_or("-")),
                );
                return Ok(());
            }
            let outcome = serve(request, text)?;
            count(&tally, outcome);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    tally
}

fn served(tally: &Tally) -> usize {
    tally.lock().unwrap().get("served").copied().unwrap_or(0)
}

#[test]
fn fuzzed_chat_requests_end_in_success_or_a_typed_4xx() {
    let strategy = prop_oneof![
        3 => mutated(valid_request(), typed_value()),
        1 => mutated(valid_tool_request(), typed_value()),
    ]
    .boxed();
    let tally = fuzz_requests(
        cases(200, 3000),
        strategy,
        ChatCompletionRequest::from_json,
        ChatCompletionRequest::validate,
        |request, _| through_engine(request),
    );
    print_tally("chat requests", &tally);
    // Stop the service before the process exits: a worker still decoding a cancelled request
    // while llama.cpp's static objects are destroyed at exit crashed the long run (SIGSEGV).
    registry()
        .delete(SERVICE, "test")
        .expect("the fuzzed service drains and stops");
    assert!(
        served(&tally) > 0,
        "some fuzzed requests reach the model and are served"
    );
}

#[test]
fn fuzzed_completion_requests_end_in_success_or_a_typed_4xx() {
    let tally = fuzz_requests(
        cases(150, 2000),
        mutated(valid_completion_request(), typed_completion_value()),
        CompletionRequest::from_json,
        CompletionRequest::validate,
        |_, text| text_through_engine(text),
    );
    print_tally("completion requests", &tally);
    // Stopped before the process exits, as the chat test's service is.
    text_registry()
        .delete(TEXT_SERVICE, "test")
        .expect("the fuzzed service drains and stops");
    assert!(
        served(&tally) > 0,
        "some fuzzed completion requests reach the model and are served"
    );
}

#[test]
fn fuzzed_service_specs_end_in_success_or_a_typed_4xx() {
    let cases = cases(400, 5000);
    let tally: Tally = Arc::default();
    let strategy = mutated(valid_spec(), typed_spec_value());
    runner(cases)
        .run(&strategy, |text| {
            let spec = match ServiceSpec::from_json(&text) {
                Ok(s) => s,
                Err(e) => {
                    check_refusal("from_json", &e)?;
                    count(&tally, "parse refused");
                    return Ok(());
                }
            };
            match spec.validate() {
                Err(e) => {
                    check_refusal("validate", &e)?;
                    count(
                        &tally,
                        format!("validate refused: {}", e.param().unwrap_or("-")),
                    );
                }
                // The model path does not exist: deploy stops at the file, after every check
                // of the fields.
                Ok(()) => match Registry::new().deploy(spec) {
                    Err(e) => {
                        check_refusal("deploy", &e)?;
                        count(
                            &tally,
                            format!("deploy refused: {}", e.code().unwrap_or("-")),
                        );
                    }
                    Ok(_) => return Err(TestCaseError::fail("deployed a missing file")),
                },
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    print_tally("service specs", &tally);
}
