//! `/v1/models`: every running service is listed as a model under its access name.

use serde::{Deserialize, Serialize};

/// One entry of `/v1/models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    /// The service's access name: what a request puts in `model`.
    pub id: String,
    pub object: String,
    pub created: u64,
    pub owned_by: String,
}

/// The `/v1/models` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<Model>,
}
