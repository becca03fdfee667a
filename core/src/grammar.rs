//! Grammars for constrained answers: a `response_format` schema converted to GBNF by llama.cpp's
//! own converter (`json_schema_to_grammar`), checked to compile, and cached per schema (requests
//! with the same schema skip the conversion).

use std::collections::HashMap;
use std::sync::Arc;

use llama_cpp_2::model::LlamaModel;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::sampling::compile_grammar;

/// Schemas kept; the cache is cleared when it would grow past this.
const CAPACITY: usize = 256;

/// The GBNF grammar of each JSON Schema seen, by the schema's JSON text.
#[derive(Default)]
pub(crate) struct GrammarCache {
    grammars: Mutex<HashMap<String, Arc<str>>>,
}

impl GrammarCache {
    /// The grammar for `schema_json`, converting (and checking) it the first time.
    pub(crate) fn grammar_for(&self, model: &LlamaModel, schema_json: &str) -> Result<Arc<str>> {
        self.convert(model, schema_json, "response_format.json_schema.schema")
    }

    /// The grammar for `schema_json`; a schema that cannot be enforced is a 400 naming `param`.
    pub(crate) fn convert(
        &self,
        model: &LlamaModel,
        schema_json: &str,
        param: &str,
    ) -> Result<Arc<str>> {
        self.cached(schema_json, || {
            let bad_schema = |detail: String| {
                Error::invalid(
                    param,
                    format!("The JSON Schema cannot be enforced: {detail}"),
                )
            };
            let gbnf = llama_cpp_2::json_schema_to_grammar(schema_json)
                .map_err(|e| bad_schema(format!("llama.cpp's converter refused it ({e})")))?;
            // The converter's output must also compile, or sampling could not start.
            compile_grammar(model, &gbnf).map_err(|e| bad_schema(e.to_string()))?;
            Ok(gbnf)
        })
    }

    /// The grammar cached under `key`, made by `make` the first time.
    pub(crate) fn cached(
        &self,
        key: &str,
        make: impl FnOnce() -> Result<String>,
    ) -> Result<Arc<str>> {
        if let Some(gbnf) = self.grammars.lock().get(key) {
            return Ok(gbnf.clone());
        }
        let gbnf: Arc<str> = make()?.into();
        let mut grammars = self.grammars.lock();
        if grammars.len() >= CAPACITY {
            grammars.clear();
        }
        grammars.insert(key.to_owned(), gbnf.clone());
        Ok(gbnf)
    }
}
