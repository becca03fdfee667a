//! The JSON Schema of the wire types, derived from the serde types of this module (schemars):
//! the one source from which the Python and TypeScript wire types are generated
//! (`scripts/gen-wire-types`). It is committed as `core/schema/wire.schema.json`; a test fails
//! when the committed file is not what the code derives.

use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use crate::api::*;
use crate::error::ErrorEnvelope;
use crate::ops::Operation;

/// Where the committed schema lives, relative to the package root.
pub const WIRE_SCHEMA_PATH: &str = "core/schema/wire.schema.json";

/// The schema of every wire type (`$defs`) and of every operation (its request, answer and
/// chunk types by name).
pub fn wire_schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    macro_rules! define {
        ($($t:ty),* $(,)?) => { $( generator.subschema_for::<$t>(); )* };
    }
    define!(
        ChatCompletionRequest,
        ChatCompletion,
        ChatCompletionChunk,
        CompletionRequest,
        Completion,
        EmbeddingRequest,
        EmbeddingResponse,
        NoParams,
        Model,
        ModelList,
        ModelRetrieveRequest,
        ServiceSpec,
        ServiceInfo,
        ServiceList,
        ServiceRetrieveRequest,
        ServiceScaleRequest,
        ServiceDeleteRequest,
        ServiceMetricsRequest,
        ServiceMetricsList,
        ErrorEnvelope,
    );
    let operations: serde_json::Map<String, Value> = Operation::ALL
        .iter()
        .map(|op| {
            let (request, response, chunk) = op.wire_types();
            (
                op.name().to_owned(),
                json!({"request": request, "response": response, "chunk": chunk}),
            )
        })
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "modelservice wire types",
        "description": "Derived from core/src/api by schemars; regenerate with `make schema`, never edit by hand.",
        "operations": operations,
        "$defs": generator.take_definitions(true),
    })
}

/// The schema as the committed file holds it (pretty JSON, one trailing newline).
pub fn wire_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&wire_schema()).expect("a schema serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `UPDATE_WIRE_SCHEMA=1 cargo test -p modelservice --lib schema` rewrites the file.
    #[test]
    fn committed_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(WIRE_SCHEMA_PATH);
        let derived = wire_schema_text();
        if std::env::var_os("UPDATE_WIRE_SCHEMA").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &derived).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == derived,
            "{} is out of date: run `make schema` and commit it",
            path.display()
        );
    }

    #[test]
    fn every_operation_names_defined_types() {
        let schema = wire_schema();
        for op in Operation::ALL {
            let (request, response, chunk) = op.wire_types();
            for name in [Some(request), Some(response), chunk].into_iter().flatten() {
                assert!(
                    schema["$defs"][name].is_object(),
                    "{op}: {name} is not defined"
                );
            }
        }
    }
}
