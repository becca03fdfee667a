//! Node.js bindings of modelservice (napi-rs): the native half of the `modelservice` npm
//! package. One entry into the core, by operation name with JSON in and out
//! (`Registry.call`, `Registry.stream`); the JavaScript half (`index.js`) maps the `openai`
//! SDK's methods onto it and shapes the answers into the SDK's objects and errors.

mod abort;
mod error;
mod registry;
mod stream;

pub use registry::Registry;
pub use stream::ResponseStream;

/// The marker that prefixes the message of every native error carrying an OpenAI error
/// envelope (read by `index.js`).
#[napi_derive::napi]
pub const ERROR_PREFIX: &str = error::PREFIX;
