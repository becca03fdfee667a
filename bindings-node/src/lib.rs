//! Node.js bindings of modelservice (napi-rs): the native half of the `modelservice` npm
//! package. Thin wrappers over `Arc`-shared core handles; requests and results cross as JSON
//! strings of the core's serde types, and the JavaScript half (`index.js`) shapes them into
//! the `openai` SDK's `OpenAI` client.

mod error;
mod registry;
mod stream;

pub use registry::Registry;
pub use stream::ChatStream;

/// The marker that prefixes the message of every native error carrying an OpenAI error
/// envelope (read by `index.js`).
#[napi_derive::napi]
pub const ERROR_PREFIX: &str = error::PREFIX;
