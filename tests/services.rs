//! Service management on real models: deploy, list, get, refused deploys, scale, delete.

mod common;

use std::sync::Arc;
use std::thread;

use common::*;
use modelservice::{Error, FinishReason, Registry, ServiceStatus};

#[test]
fn deploy_list_get_on_both_models() {
    let registry = Registry::new();
    let smol = registry
        .deploy(spec("u-8105f7322477/test", smollm2()))
        .unwrap();
    let mut gemma_spec = spec("u-8105f7322477/gemma", gemma3());
    gemma_spec.name = "gemma".into();
    gemma_spec.context_length = Some(512);
    let gemma = registry.deploy(gemma_spec).unwrap();

    assert!(smol.id.starts_with("svc-") && smol.id != gemma.id);
    assert_eq!(smol.status, ServiceStatus::Running);
    assert_eq!(smol.instances, 1);
    assert_eq!(smol.base_model.architecture, "llama");
    assert_eq!(smol.base_model.quantization, "Q4_1");
    assert!(smol.base_model.has_chat_template);
    assert_eq!(smol.base_model.trained_context_length, 8192);
    assert_eq!(smol.context_length, 1024);
    assert_eq!(gemma.base_model.architecture, "gemma3");
    assert!(
        !gemma.base_model.has_chat_template,
        "the Gemma test file carries no template"
    );
    assert!(
        gemma.base_model.quantization.starts_with("Q4_K"),
        "{}",
        gemma.base_model.quantization
    );

    let listed: Vec<String> = registry
        .list()
        .data
        .into_iter()
        .map(|s| s.access_name)
        .collect();
    assert_eq!(listed, ["u-8105f7322477/gemma", "u-8105f7322477/test"]);
    let got = registry.retrieve("u-8105f7322477/test").unwrap();
    assert_eq!(got.id, smol.id, "the service ID is stable");
    let models: Vec<String> = registry.models().data.into_iter().map(|m| m.id).collect();
    assert_eq!(models, listed);
    assert!(matches!(
        registry.retrieve("nope"),
        Err(Error::ModelNotFound { .. })
    ));
}

#[test]
fn refused_deploys_leave_the_registry_serving() {
    let registry = registry_with("svc/ok");
    let dir = std::env::temp_dir().join(format!("modelservice-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_gguf = dir.join("notes.gguf");
    std::fs::write(&not_gguf, "these are not weights").unwrap();
    let corrupt = dir.join("corrupt.gguf");
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(std::iter::repeat_n(0xA5u8, 4096));
    std::fs::write(&corrupt, bytes).unwrap();
    let truncated = dir.join("truncated.gguf");
    let full = std::fs::read(smollm2()).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();

    let cases = [
        (dir.join("missing.gguf"), "cannot read the file"),
        (not_gguf, "not a GGUF file"),
        (corrupt, "corrupt or truncated GGUF header"),
        (truncated, "truncated file"),
    ];
    for (path, reason) in cases {
        let err = registry.deploy(spec("svc/bad", path.clone())).unwrap_err();
        assert!(matches!(err, Error::ModelLoad { .. }), "{path:?}: {err:?}");
        assert!(err.to_string().contains(reason), "{path:?}: {err}");
        assert_eq!(err.param(), Some("model"));
        assert!(matches!(
            registry.retrieve("svc/bad"),
            Err(Error::ModelNotFound { .. })
        ));
    }

    let dup = registry.deploy(spec("svc/ok", smollm2())).unwrap_err();
    assert!(matches!(dup, Error::ServiceExists { .. }), "{dup:?}");
    assert_eq!(dup.status(), 409);
    let bad_name = registry.deploy(spec("bad name", smollm2())).unwrap_err();
    assert_eq!(bad_name.param(), Some("access_name"));

    assert_eq!(registry.list().data.len(), 1);
    let answer = registry
        .chat_blocking(greedy("svc/ok", "Say hi.", 8))
        .unwrap();
    assert!(!content(&answer).is_empty());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn scale_up_and_down_with_requests_in_flight() {
    let registry = Arc::new(registry_with("svc/scale"));
    let loads = Registry::model_loads();
    let prompts = [
        "Name a fruit.",
        "Name a color.",
        "Name an animal.",
        "Name a city.",
        "Count to five.",
        "Say hello.",
        "Name a planet.",
        "Name a tree.",
    ];
    let workers: Vec<_> = prompts
        .iter()
        .map(|p| {
            let registry = registry.clone();
            let req = greedy("svc/scale", p, 40);
            thread::spawn(move || registry.chat_blocking(req))
        })
        .collect();
    let up = registry.scale("svc/scale", 3).unwrap();
    assert_eq!(up.instances, 3);
    assert_eq!(up.status, ServiceStatus::Running);
    assert_eq!(
        Registry::model_loads(),
        loads,
        "scaling up must not reload the weights"
    );
    let down = registry.scale("svc/scale", 1).unwrap();
    assert_eq!(down.instances, 1);
    for w in workers {
        let done = w
            .join()
            .unwrap()
            .expect("every request completes across scaling");
        assert!(!content(&done).is_empty());
    }
    // The service still serves after scaling down.
    registry
        .chat_blocking(greedy("svc/scale", "Say yes.", 4))
        .unwrap();
    assert_eq!(Registry::model_loads(), loads);
    assert_eq!(
        registry.scale("svc/scale", 0).unwrap_err().param(),
        Some("instances")
    );
}

#[test]
fn delete_confirms_drains_then_forgets() {
    let registry = Arc::new(registry_with("svc/delete"));
    let wrong = registry.delete("svc/delete", "not-the-name").unwrap_err();
    assert_eq!(wrong.param(), Some("confirm"));
    assert!(
        registry.retrieve("svc/delete").is_ok(),
        "a refused delete keeps the service"
    );

    // Two requests are running when the delete comes: both finish whole.
    let mut streams: Vec<_> = (0..2)
        .map(|i| {
            registry
                .chat_stream(greedy(
                    "svc/delete",
                    &format!("Write a story number {i}."),
                    48,
                ))
                .unwrap()
        })
        .collect();
    for s in &mut streams {
        s.next_blocking().unwrap().unwrap(); // the role chunk: the request is in
    }
    let deleter = {
        let registry = registry.clone();
        thread::spawn(move || registry.delete("svc/delete", "test"))
    };
    for s in streams {
        let done = s
            .collect_blocking()
            .expect("in-flight requests finish during a delete");
        assert_eq!(done.choices[0].finish_reason, FinishReason::Length);
        assert_eq!(done.usage.completion_tokens, 48);
    }
    let info = deleter.join().unwrap().unwrap();
    assert_eq!(info.status, ServiceStatus::Deleting);
    let gone = registry
        .chat_blocking(greedy("svc/delete", "hi", 4))
        .unwrap_err();
    assert!(matches!(gone, Error::ModelNotFound { .. }), "{gone:?}");
    assert_eq!(gone.status(), 404);
}
