//! Embeddings on the real all-MiniLM-L6-v2 (converted by scripts/minilm-to-gguf): the conversion
//! against a numpy reference of the original weights, the vectors' properties, batching, and
//! the errors.

mod common;

use std::sync::Arc;
use std::thread;

use common::*;
use modelservice::{
    Client, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingVector, EncodingFormat,
    Error, Registry, ServiceKind,
};

const MODEL: &str = "u-8105f7322477/minilm";

/// A registry with MiniLM deployed under [`MODEL`].
fn minilm_registry() -> Registry {
    let registry = Registry::new();
    registry
        .deploy(spec(MODEL, minilm()))
        .expect("deploy MiniLM");
    registry
}

fn vectors(response: &EmbeddingResponse) -> Vec<Vec<f32>> {
    response
        .data
        .iter()
        .map(|d| d.embedding.to_floats().unwrap())
        .collect()
}

fn embed(registry: &Registry, input: impl Into<EmbeddingInput>) -> Vec<Vec<f32>> {
    vectors(
        &registry
            .embeddings(EmbeddingRequest::new(MODEL, input))
            .unwrap(),
    )
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot = |x: &[f32], y: &[f32]| {
        x.iter()
            .zip(y)
            .map(|(p, q)| f64::from(*p) * f64::from(*q))
            .sum::<f64>()
    };
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt()
}

/// What scripts/minilm-reference computes from the original safetensors with numpy.
struct Reference {
    ids: Vec<i32>,
    embedding: Vec<f32>,
}

fn reference(sentences: &[&str]) -> Vec<Reference> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/minilm-reference");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(sentences)
        .output()
        .expect("python3 runs scripts/minilm-reference");
    assert!(
        out.status.success(),
        "minilm-reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    parsed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Reference {
            ids: serde_json::from_value(r["ids"].clone()).unwrap(),
            embedding: serde_json::from_value(r["embedding"].clone()).unwrap(),
        })
        .collect()
}

#[test]
fn conversion_agrees_with_the_numpy_reference() {
    let sentences = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The quick brown fox jumps over the lazy dog.",
        "Héllo, wörld! Naïve café résumés (approx. $100.50) cost 3x more.",
        "Retrieval-augmented generation combines a search index with a language model.",
        "unbelievably antidisestablishmentarianism",
        "東京 is the capital of Japan; it's huge.",
        "Embeddings map sentences to vectors so that similar meanings land close together, \
         which is what semantic search, clustering and deduplication rely on.",
    ];
    let registry = minilm_registry();
    let expected = reference(&sentences);
    let got = embed(&registry, sentences.to_vec());
    for ((sentence, want), vector) in sentences.iter().zip(&expected).zip(&got) {
        let ids = registry.tokenize(MODEL, sentence).unwrap();
        assert_eq!(ids, want.ids, "token ids of {sentence:?}");
        let cos = cosine(vector, &want.embedding);
        eprintln!("cosine to the numpy reference {cos:.7}: {sentence}");
        assert!(cos >= 0.999, "cosine {cos} < 0.999 for {sentence:?}");
    }
}

#[test]
fn vectors_have_the_models_width_unit_norm_and_meaning() {
    let registry = minilm_registry();
    let info = registry.retrieve(MODEL).unwrap();
    assert_eq!(info.kind, ServiceKind::Embedding);
    assert_eq!(info.base_model.architecture, "bert");
    assert_eq!(info.context_length, 512, "capped by the trained context");
    assert_eq!(info.slots_per_instance, 64, "inputs per batch");

    let response = registry
        .embeddings(EmbeddingRequest::new(
            MODEL,
            vec![
                "A man is eating food.",
                "A man is eating a piece of bread.",
                "A man is riding a horse.",
            ],
        ))
        .unwrap();
    assert_eq!(response.object, "list");
    assert_eq!(response.model, MODEL);
    let indices: Vec<u32> = response.data.iter().map(|d| d.index).collect();
    assert_eq!(indices, [0, 1, 2]);
    assert!(response.data.iter().all(|d| d.object == "embedding"));
    // [CLS] + 6 + [SEP], [CLS] + 9 + [SEP], [CLS] + 7 + [SEP]
    assert_eq!(response.usage.prompt_tokens, 8 + 11 + 9);
    assert_eq!(response.usage.total_tokens, response.usage.prompt_tokens);

    let v = vectors(&response);
    for vector in &v {
        assert_eq!(vector.len(), 384);
        assert!((norm(vector) - 1.0).abs() < 1e-5, "norm {}", norm(vector));
    }
    let paraphrase = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[2]);
    eprintln!("paraphrase {paraphrase:.4}, unrelated {unrelated:.4}");
    assert!(
        paraphrase > unrelated + 0.1,
        "paraphrase {paraphrase} vs unrelated {unrelated}"
    );

    let usage = registry.retrieve(MODEL).unwrap().usage;
    assert_eq!(
        (usage.requests, usage.prompt_tokens),
        (1, u64::from(response.usage.prompt_tokens))
    );
}

#[test]
fn a_batch_equals_its_inputs_one_at_a_time() {
    let registry = minilm_registry();
    let inputs = [
        "A man is eating food.",
        "Someone is playing a guitar on a stage in front of a large crowd.",
        "Cats sleep.",
        "The stock market fell sharply after the announcement of new tariffs.",
        "How do I reset my password?",
    ];
    let batched = embed(&registry, inputs.to_vec());
    for (input, together) in inputs.iter().zip(&batched) {
        let alone = &embed(&registry, *input)[0];
        let cos = cosine(alone, together);
        assert!(cos > 0.9999, "{input:?}: cosine {cos}");
    }
}

#[test]
fn token_ids_base64_and_the_async_client_give_the_same_vectors() {
    let client = Client::new();
    client
        .registry()
        .deploy(spec(MODEL, minilm()))
        .expect("deploy MiniLM");
    let registry = client.registry();
    let text = "A man is eating food.";
    let floats = embed(registry, text).remove(0);

    let ids: Vec<u32> = registry
        .tokenize(MODEL, text)
        .unwrap()
        .into_iter()
        .map(|t| t as u32)
        .collect();
    let from_ids = embed(registry, EmbeddingInput::Tokens(ids.clone()));
    assert!(from_ids[0] == floats, "token ids are fed as given");
    let lists = embed(registry, EmbeddingInput::TokenLists(vec![ids.clone(), ids]));
    assert_eq!(lists.len(), 2);
    for v in &lists {
        // Batched with another input: the same up to summation order.
        assert!(cosine(v, &floats) > 0.9999, "cosine {}", cosine(v, &floats));
    }

    let mut request = EmbeddingRequest::new(MODEL, text);
    request.encoding_format = Some(EncodingFormat::Base64);
    let response = registry.embeddings(request.clone()).unwrap();
    assert!(matches!(
        response.data[0].embedding,
        EmbeddingVector::Base64(_)
    ));
    assert!(response.data[0].embedding.to_floats().unwrap() == floats);
    let json = serde_json::to_value(&response).unwrap();
    assert!(json["data"][0]["embedding"].is_string());

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let from_async = runtime
        .block_on(
            client
                .embeddings()
                .create(EmbeddingRequest::new(MODEL, text)),
        )
        .unwrap();
    assert!(vectors(&from_async)[0] == floats);
}

#[test]
fn concurrent_requests_are_batched_and_all_answered() {
    let registry = Arc::new(minilm_registry());
    let reference = embed(&registry, "Request number 7 of many.").remove(0);
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let registry = registry.clone();
            thread::spawn(move || {
                let text = format!("Request number {i} of many.");
                (i, embed(&registry, text.as_str()).remove(0))
            })
        })
        .collect();
    for handle in handles {
        let (i, vector) = handle.join().unwrap();
        assert_eq!(vector.len(), 384);
        if i == 7 {
            let cos = cosine(&vector, &reference);
            assert!(cos > 0.9999, "batched with others: cosine {cos}");
        }
    }
    let info = registry.retrieve(MODEL).unwrap();
    eprintln!("64 concurrent requests: {:?}", info.stats);
    assert_eq!(info.usage.requests, 65);
    assert!(
        info.stats.peak_batch_sequences > 1 && info.stats.decode_steps < 65,
        "concurrent requests were not batched together: {:?}",
        info.stats
    );
}

#[test]
fn scaling_and_deleting_an_embedding_service() {
    let registry = Arc::new(minilm_registry());
    let info = registry.scale(MODEL, 2).unwrap();
    assert_eq!(info.instances, 2);
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let registry = registry.clone();
            thread::spawn(move || embed(&registry, format!("sentence {i}").as_str()).remove(0))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().len(), 384);
    }
    assert_eq!(registry.scale(MODEL, 1).unwrap().instances, 1);
    assert_eq!(embed(&registry, "still serving")[0].len(), 384);
    registry.delete(MODEL, "test").unwrap();
    assert!(matches!(
        registry.embeddings(EmbeddingRequest::new(MODEL, "gone")),
        Err(Error::ModelNotFound { .. })
    ));
}

fn param_of(result: modelservice::Result<impl std::fmt::Debug>) -> Option<String> {
    match result {
        Err(e) => {
            assert_eq!(e.status(), 400, "{e:?}");
            e.param().map(str::to_owned)
        }
        Ok(v) => panic!("expected a 400, got {v:?}"),
    }
}

#[test]
fn refused_requests_name_the_field_at_fault() {
    let registry = minilm_registry();
    registry
        .deploy(spec("u-8105f7322477/chat", smollm2()))
        .unwrap();
    assert_eq!(
        registry.retrieve("u-8105f7322477/chat").unwrap().kind,
        ServiceKind::Chat
    );

    // A chat setting on an embedding model is refused, not ignored.
    let mut templated = spec("u-8105f7322477/templated", minilm());
    templated.chat_template = Some("{{ messages }}".into());
    assert_eq!(
        param_of(registry.deploy(templated)).as_deref(),
        Some("chat_template")
    );

    // The wrong kind of request, both ways.
    let chat = registry.chat_blocking(greedy(MODEL, "hi", 4));
    let message = chat.as_ref().unwrap_err().to_string();
    assert!(message.contains("embedding model"), "{message}");
    assert_eq!(param_of(chat).as_deref(), Some("model"));
    let on_chat = registry.embeddings(EmbeddingRequest::new("u-8105f7322477/chat", "hi"));
    let message = on_chat.as_ref().unwrap_err().to_string();
    assert!(message.contains("does not serve embeddings"), "{message}");
    assert_eq!(param_of(on_chat).as_deref(), Some("model"));

    // Longer than the model's 512 positions: refused, never truncated.
    let long = "word ".repeat(600);
    let too_long = registry.embeddings(EmbeddingRequest::new(MODEL, vec!["short", &long]));
    let message = too_long.as_ref().unwrap_err().to_string();
    assert!(
        message.contains("512") && message.contains("input 1"),
        "{message}"
    );
    assert_eq!(param_of(too_long).as_deref(), Some("input"));
    // Exactly the context fits: 510 words + [CLS] + [SEP].
    let fits = "word ".repeat(510);
    assert_eq!(embed(&registry, fits.as_str())[0].len(), 384);

    let mut request = EmbeddingRequest::new(MODEL, "hi");
    request.dimensions = Some(128);
    assert_eq!(
        param_of(registry.embeddings(request.clone())).as_deref(),
        Some("dimensions")
    );
    request.dimensions = Some(384);
    assert!(
        registry.embeddings(request).is_ok(),
        "the model's own width"
    );

    for bad in [
        EmbeddingInput::Texts(vec![]),
        EmbeddingInput::Text(String::new()),
        EmbeddingInput::Tokens(vec![30522]),
        EmbeddingInput::Texts(vec!["a".into(); 2049]),
    ] {
        let r = registry.embeddings(EmbeddingRequest::new(MODEL, bad));
        assert_eq!(param_of(r).as_deref(), Some("input"));
    }
    let format = EmbeddingRequest::from_json(&format!(
        r#"{{"model": "{MODEL}", "input": "hi", "encoding_format": "hex"}}"#
    ));
    assert_eq!(param_of(format).as_deref(), Some("encoding_format"));

    // Nothing above reached llama.cpp in a way that hurt the service.
    assert_eq!(embed(&registry, "still serving")[0].len(), 384);
}
