//! # modelservice
//!
//! Runs GGUF models through llama.cpp as named, OpenAI-compatible *model services* inside
//! your own process.
//!
//! ```no_run
//! # async fn demo() -> modelservice::Result<()> {
//! use modelservice::{ChatCompletionRequest, ChatMessage, Client, ServiceSpec};
//!
//! let client = Client::new();
//! client.services().deploy(ServiceSpec::new("test", "u-8105f7322477/test", "smollm2.gguf")).await?;
//! let request = ChatCompletionRequest::new("u-8105f7322477/test", vec![ChatMessage::user("Say this is a test!")]);
//! let response = client.chat().completions().create(request).await?;
//! println!("{}", response.choices[0].message.content.as_deref().unwrap_or(""));
//! # Ok(()) }
//! ```
//!
//! Every surface (Python, Node, C, HTTP) enters through one door: [`Registry::call`] with an
//! [`Operation`] name and a JSON body, or [`Registry::stream`] for streamed answers.
//!
//! The data flow: [`Registry`] (routes by access name) → service (one loaded model) → pool
//! (scheduler, bounded queue) → instance (a worker thread owning one llama context with
//! several slots, decoding one batch per step) → [`ChatCompletionStream`]. A service whose
//! model is an embedding model (an encoder such as BERT) runs embedding instances instead,
//! which pack the inputs of concurrent requests into one batch.

pub mod api;
mod backend;
mod client;
mod completion_stream;
pub mod cpu_backend;
mod detokenize;
mod embed;
mod embed_pool;
pub mod error;
mod format_guidance;
mod gguf;
mod grammar;
mod guards;
mod ids;
mod instance;
pub mod limits;
/// The build script's check of llama.cpp's build, here for its tests.
#[cfg(test)]
#[path = "../build/llama_cpp_check.rs"]
mod llama_cpp_check;
mod llama_log;
mod logprobs;
pub mod metrics;
mod ops;
mod pool;
mod registry;
pub mod sampling;
mod service;
mod shutdown;
mod stop;
mod stream;
mod template;
pub mod threads;
mod tool_calling;
pub mod wait;

pub use api::*;
pub use client::{Chat, Client, Completions, Embeddings, Models, Services, TextCompletions};
pub use completion_stream::CompletionStream;
pub use error::{Error, ErrorBody, ErrorEnvelope, Result};
pub use ops::{wants_stream, CallFuture, Operation, ResponseStream};
pub use registry::Registry;
pub use stream::ChatCompletionStream;
