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
//! The data flow: [`Registry`] (routes by access name) → service (one loaded model) → pool
//! (scheduler, bounded queue) → instance (a worker thread owning one llama context with
//! several slots, decoding one batch per step) → [`ChatCompletionStream`].

pub mod api;
mod backend;
mod client;
mod detokenize;
pub mod error;
mod gguf;
mod guards;
mod ids;
mod instance;
pub mod limits;
mod pool;
mod registry;
pub mod sampling;
mod service;
mod stop;
mod stream;
mod template;

pub use api::*;
pub use client::{Chat, Client, Completions, Models, Services};
pub use error::{Error, ErrorBody, ErrorEnvelope, Result};
pub use registry::Registry;
pub use stream::ChatCompletionStream;
