//! Model services as the product page describes them: a spec to deploy, and the info a
//! service reports (ID, name, access name, base model, instance count, status, usage).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Defaults of a [`ServiceSpec`], in one place.
pub mod defaults {
    /// Instances (llama contexts) a service starts with.
    pub const INSTANCES: usize = 1;
    /// Sequence slots (parallel requests) per instance.
    pub const SLOTS: usize = 4;
    /// Context length, in tokens, of each slot (capped by the model's trained context).
    pub const CONTEXT_LENGTH: u32 = 4096;
    /// Requests that may wait for a free slot before new ones are refused as overloaded.
    pub const QUEUE_SIZE: usize = 64;
}

/// What to deploy: the product page's "deploy a model as a service". Unknown fields are
/// refused (a misspelt `slotz` must not deploy with the default silently).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Display name (the delete confirmation must repeat it).
    pub name: String,
    /// Unique access name, used as `model` in requests, e.g. `u-8105f7322477/test`.
    pub access_name: String,
    /// Path of the GGUF file.
    pub model: PathBuf,
    #[serde(default = "default_instances")]
    pub instances: usize,
    /// Context length per slot; `None` takes the default capped by the model's trained context.
    #[serde(default)]
    pub context_length: Option<u32>,
    #[serde(default = "default_slots")]
    pub slots: usize,
    /// CPU threads for the whole service, shared out across its instances; `None` = all cores.
    #[serde(default)]
    pub threads: Option<usize>,
    #[serde(default)]
    pub gpu_layers: u32,
    /// A Jinja chat template that replaces the one in the GGUF file.
    #[serde(default)]
    pub chat_template: Option<String>,
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
}

fn default_instances() -> usize {
    defaults::INSTANCES
}
fn default_slots() -> usize {
    defaults::SLOTS
}
fn default_queue_size() -> usize {
    defaults::QUEUE_SIZE
}

/// Longest access name accepted.
const MAX_ACCESS_NAME: usize = 128;

impl ServiceSpec {
    /// A spec with every optional field at its default.
    pub fn new(
        name: impl Into<String>,
        access_name: impl Into<String>,
        model: impl Into<PathBuf>,
    ) -> Self {
        ServiceSpec {
            name: name.into(),
            access_name: access_name.into(),
            model: model.into(),
            instances: defaults::INSTANCES,
            context_length: None,
            slots: defaults::SLOTS,
            threads: None,
            gpu_layers: 0,
            chat_template: None,
            queue_size: defaults::QUEUE_SIZE,
        }
    }

    /// Parses a JSON spec; a malformed field is reported with its path as `param`.
    pub fn from_json(json: &str) -> Result<Self> {
        super::from_json(json, "service spec")
    }

    /// Checks the fields that do not need the model file.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(Error::invalid(
                "name",
                "A service needs a non-empty `name`.",
            ));
        }
        validate_access_name(&self.access_name)?;
        // Every resource field within its bound (see `crate::limits` for each bound's reason).
        crate::limits::check_spec(self)
    }
}

/// An access name is one or more path segments of `[A-Za-z0-9._-]`, joined by `/`
/// (e.g. `u-8105f7322477/test`), so it is safe in URLs and logs.
pub fn validate_access_name(access_name: &str) -> Result<()> {
    let ok_segment = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    if access_name.len() > MAX_ACCESS_NAME || !access_name.split('/').all(ok_segment) {
        return Err(Error::invalid(
            "access_name",
            format!(
                "Invalid access name `{access_name}`: use segments of letters, digits, `.`, `_` or `-` joined by `/` \
                 (e.g. `u-8105f7322477/test`), at most {MAX_ACCESS_NAME} characters."
            ),
        ));
    }
    Ok(())
}

/// A service's life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceStatus {
    Loading,
    Running,
    Scaling,
    Failed,
    Deleting,
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Loading => "loading",
            ServiceStatus::Running => "running",
            ServiceStatus::Scaling => "scaling",
            ServiceStatus::Failed => "failed",
            ServiceStatus::Deleting => "deleting",
        }
    }
}

/// What a service serves, decided by its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// A generative model: chat completions.
    Chat,
    /// An embedding model (an encoder such as BERT, or a GGUF declaring a pooling type):
    /// embeddings.
    Embedding,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Chat => "chat",
            ServiceKind::Embedding => "embedding",
        }
    }
}

/// The base model, read from the GGUF metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BaseModel {
    /// `general.name`, else the file name.
    pub name: String,
    pub architecture: String,
    /// `general.size_label`, e.g. `135M`.
    pub size_label: Option<String>,
    /// The weights' type, e.g. `Q4_1`.
    pub quantization: String,
    /// The context length the model was trained with.
    pub trained_context_length: u32,
    pub parameters: u64,
    pub file_size: u64,
    pub path: PathBuf,
    /// Whether the file carries a chat template (`tokenizer.chat_template`).
    pub has_chat_template: bool,
}

/// Token and request counters, for usage tracking by service ID.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceUsage {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// What the engine did for a service: how well it batched and reused prompts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EngineStats {
    /// `llama_decode` calls made by the service's instances.
    pub decode_steps: u64,
    /// Tokens put through those calls (prompt and generated).
    pub tokens_decoded: u64,
    /// The most sequences that were ever in one decode step.
    pub peak_batch_sequences: u64,
    /// Prompt tokens taken from a slot's cache instead of being decoded again.
    pub prompt_tokens_reused: u64,
    /// Cached prompt prefixes copied from one slot's KV cache to another's (counted in
    /// `prompt_tokens_reused` too).
    pub prefix_copies: u64,
    /// Decode steps stopped for running far past their usual time and redone on one thread:
    /// an instance's thread pool lacked free cores (a busy host, or more `threads` than cores).
    pub stopped_steps: u64,
}

/// The build of llama.cpp's CPU backend that runs the services of this process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CpuBackend {
    /// The variant picked at run time for this processor (e.g. `sapphirerapids`, `haswell`),
    /// or `built-in` when one CPU backend is compiled into the library.
    pub variant: String,
    /// Instruction-set features that backend was built with (e.g. `AVX512`, `AMX_INT8`), then our
    /// own kernels built into it (`MODELSERVICE_Q4_1_GEMM`: batches of Q4_1 weights, AVX2 and up;
    /// listed for variant modules only, since a built-in backend's symbols cannot be looked up).
    pub features: Vec<String>,
}

/// A service as the product page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceInfo {
    /// Stable for the service's life; used for usage tracking.
    pub id: String,
    pub name: String,
    pub access_name: String,
    /// `chat` or `embedding`: which requests the service answers.
    pub kind: ServiceKind,
    pub base_model: BaseModel,
    pub instances: usize,
    pub status: ServiceStatus,
    /// Why the service failed, when `status` is `failed`.
    pub status_reason: Option<String>,
    pub slots_per_instance: usize,
    pub context_length: u32,
    pub threads_per_instance: usize,
    pub queue_size: usize,
    /// Unix seconds.
    pub created: u64,
    pub usage: ServiceUsage,
    pub stats: EngineStats,
    /// The CPU backend its instances decode with.
    pub cpu_backend: CpuBackend,
}

/// `services.retrieve`: one service by access name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceRetrieveRequest {
    pub access_name: String,
}

/// `services.scale`: the instance count a service should have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceScaleRequest {
    pub access_name: String,
    pub instances: usize,
}

/// `services.delete`: `confirm` must repeat the service's display name, as the product's delete
/// dialog asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceDeleteRequest {
    pub access_name: String,
    pub confirm: String,
}

/// The services, shaped like OpenAI lists (`{"object": "list", "data": [...]}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceList {
    pub object: String,
    pub data: Vec<ServiceInfo>,
}

impl ServiceList {
    pub fn new(data: Vec<ServiceInfo>) -> Self {
        ServiceList {
            object: "list".into(),
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_names() {
        validate_access_name("u-8105f7322477/test").unwrap();
        validate_access_name("smollm2").unwrap();
        for bad in ["", "a//b", "/a", "a/", "a b", "../x", "a?b"] {
            assert!(validate_access_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn spec_defaults_from_json() {
        let spec: ServiceSpec =
            serde_json::from_str(r#"{"name":"t","access_name":"u/t","model":"/m.gguf"}"#).unwrap();
        assert_eq!(spec, ServiceSpec::new("t", "u/t", "/m.gguf"));
    }
}
