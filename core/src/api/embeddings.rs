//! `/v1/embeddings`: request and response.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

/// Most inputs one request may carry, as OpenAI allows.
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

/// What to embed: a string, strings, one token-id array, or token-id arrays. Token ids are
/// fed as given: no `[CLS]`/`[SEP]` or other special tokens are added to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "a string, an array of strings, an array of token ids, or an array of token-id arrays"
)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    /// How many inputs (and so embeddings) there are.
    pub fn len(&self) -> usize {
        match self {
            EmbeddingInput::Text(_) | EmbeddingInput::Tokens(_) => 1,
            EmbeddingInput::Texts(v) => v.len(),
            EmbeddingInput::TokenLists(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<&str> for EmbeddingInput {
    fn from(s: &str) -> Self {
        EmbeddingInput::Text(s.to_owned())
    }
}

impl From<Vec<String>> for EmbeddingInput {
    fn from(v: Vec<String>) -> Self {
        EmbeddingInput::Texts(v)
    }
}

impl From<Vec<&str>> for EmbeddingInput {
    fn from(v: Vec<&str>) -> Self {
        EmbeddingInput::Texts(v.into_iter().map(str::to_owned).collect())
    }
}

/// How the vectors are sent back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    /// A JSON array of floats.
    #[default]
    Float,
    /// The little-endian `f32` bytes, base64-encoded (what the `openai` Python SDK asks for).
    Base64,
}

/// The body of `POST /v1/embeddings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingRequest {
    /// The service's access name; it must serve an embedding model.
    pub model: String,
    pub input: EmbeddingInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<EncodingFormat>,
    /// Must equal the model's width when given (the test model is not trained to be truncated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl EmbeddingRequest {
    /// A request for `model` with every optional field unset.
    pub fn new(model: impl Into<String>, input: impl Into<EmbeddingInput>) -> Self {
        EmbeddingRequest {
            model: model.into(),
            input: input.into(),
            encoding_format: None,
            dimensions: None,
            user: None,
        }
    }

    /// Parses a JSON body; a malformed field is reported with its path as `param`.
    pub fn from_json(json: &str) -> Result<Self> {
        super::from_json(json, "request body")
    }

    /// Checks what can be checked without the model; the error names the field at fault.
    pub fn validate(&self) -> Result<()> {
        if self.model.trim().is_empty() {
            return Err(Error::invalid(
                "model",
                "`model` must name a deployed service's access name.",
            ));
        }
        let n = self.input.len();
        if n == 0 {
            return Err(Error::invalid("input", "`input` must not be empty."));
        }
        if n > MAX_EMBEDDING_INPUTS {
            return Err(Error::invalid(
                "input",
                format!("`input` has {n} items; at most {MAX_EMBEDDING_INPUTS} are allowed."),
            ));
        }
        let empty = match &self.input {
            EmbeddingInput::Text(s) => s.is_empty().then_some(0),
            EmbeddingInput::Texts(v) => v.iter().position(String::is_empty),
            EmbeddingInput::Tokens(v) => v.is_empty().then_some(0),
            EmbeddingInput::TokenLists(v) => v.iter().position(Vec::is_empty),
        };
        if let Some(i) = empty {
            return Err(Error::invalid(
                "input",
                format!("`input` item {i} is empty; every input must have content."),
            ));
        }
        if self.dimensions == Some(0) {
            return Err(Error::invalid(
                "dimensions",
                "`dimensions` must be at least 1.",
            ));
        }
        Ok(())
    }
}

/// One vector: floats, or base64 of its little-endian `f32` bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EmbeddingVector {
    Float(Vec<f32>),
    Base64(String),
}

impl EmbeddingVector {
    /// The vector in the requested format.
    pub fn encode(vector: Vec<f32>, format: EncodingFormat) -> Self {
        match format {
            EncodingFormat::Float => EmbeddingVector::Float(vector),
            EncodingFormat::Base64 => {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                EmbeddingVector::Base64(BASE64.encode(&bytes))
            }
        }
    }

    /// The floats, decoding base64 if that is what was sent.
    pub fn to_floats(&self) -> Result<Vec<f32>> {
        match self {
            EmbeddingVector::Float(v) => Ok(v.clone()),
            EmbeddingVector::Base64(s) => {
                let bytes = BASE64
                    .decode(s)
                    .ok()
                    .filter(|b| b.len() % 4 == 0)
                    .ok_or_else(|| Error::internal("the embedding is not base64 of f32 values"))?;
                Ok(bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect())
            }
        }
    }
}

/// One entry of the response's `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Embedding {
    /// Always `embedding`.
    pub object: String,
    /// The position of its input in the request.
    pub index: u32,
    pub embedding: EmbeddingVector,
}

/// Tokens fed to the model (special tokens included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EmbeddingUsage {
    pub prompt_tokens: u32,
    pub total_tokens: u32,
}

/// The response of `POST /v1/embeddings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EmbeddingResponse {
    /// Always `list`.
    pub object: String,
    pub data: Vec<Embedding>,
    pub model: String,
    pub usage: EmbeddingUsage,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param_of(json: &str) -> Option<String> {
        let parsed = EmbeddingRequest::from_json(json).and_then(|r| r.validate());
        match parsed {
            Err(Error::InvalidRequest { param, .. }) => param,
            other => panic!("expected an invalid-request error, got {other:?}"),
        }
    }

    #[test]
    fn every_input_shape_parses() {
        for (json, n) in [
            (r#""a""#, 1),
            (r#"["a", "b"]"#, 2),
            ("[1, 2, 3]", 1),
            ("[[1, 2], [3]]", 2),
        ] {
            let body = format!(r#"{{"model": "m", "input": {json}}}"#);
            let r = EmbeddingRequest::from_json(&body).unwrap();
            r.validate().unwrap();
            assert_eq!(r.input.len(), n, "{json}");
        }
    }

    #[test]
    fn bad_requests_name_their_field() {
        let cases = [
            (r#"{"model": "m", "input": []}"#, "input"),
            (r#"{"model": "m", "input": ""}"#, "input"),
            (r#"{"model": "m", "input": ["a", ""]}"#, "input"),
            (r#"{"model": "m", "input": [[1], []]}"#, "input"),
            (r#"{"model": "m", "input": 5}"#, "input"),
            (r#"{"model": "m", "input": [-1]}"#, "input"),
            (
                r#"{"model": "m", "input": "a", "dimensions": 0}"#,
                "dimensions",
            ),
            (
                r#"{"model": "m", "input": "a", "encoding_format": "hex"}"#,
                "encoding_format",
            ),
        ];
        for (json, param) in cases {
            assert_eq!(param_of(json).as_deref(), Some(param), "{json}");
        }
        let many = serde_json::json!({"model": "m", "input": vec!["a"; MAX_EMBEDDING_INPUTS + 1]});
        assert_eq!(param_of(&many.to_string()).as_deref(), Some("input"));
    }

    #[test]
    fn base64_round_trips_little_endian_floats() {
        let v = vec![1.0f32, -0.5, 3.25e-8, f32::MAX];
        let encoded = EmbeddingVector::encode(v.clone(), EncodingFormat::Base64);
        let EmbeddingVector::Base64(s) = &encoded else {
            panic!("asked for base64")
        };
        assert_eq!(&s[..8], "AACAPwAA", "1.0f32 is 00 00 80 3f");
        assert_eq!(encoded.to_floats().unwrap(), v);
    }
}
