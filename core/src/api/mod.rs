//! The OpenAI wire types, declared once for every surface (serde).
//!
//! `chat` holds `/v1/chat/completions`, `embeddings` holds `/v1/embeddings`, `models` holds
//! `/v1/models`, and `services` holds the model-service management objects of the product page
//! (spec, info, status) and `metrics` their request metrics; `from_json` parses any of them with the failing field named as `param`.

pub mod chat;
pub mod completions;
pub mod embeddings;
mod json;
pub mod metrics;
pub mod models;
mod schema;
pub mod services;
pub mod tools;

pub use chat::*;
pub use completions::*;
pub use embeddings::*;
pub use json::from_json;
pub use metrics::*;
pub use models::*;
pub use schema::{wire_schema, wire_schema_text, WIRE_SCHEMA_PATH};
pub use services::*;
pub use tools::*;

/// The body of an operation that takes no parameters (`models.list`, `services.list`).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Seconds since the Unix epoch, as OpenAI's `created` fields carry it.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
