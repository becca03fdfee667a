//! `/v1/models`: every running service is listed as a model under its access name.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One entry of `/v1/models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Model {
    /// The service's access name: what a request puts in `model`.
    pub id: String,
    pub object: String,
    pub created: u64,
    pub owned_by: String,
}

/// The `/v1/models` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<Model>,
}

/// `models.retrieve`: one model by id (a service's access name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelRetrieveRequest {
    pub model: String,
}
