//! The grammar a tool-calling answer follows: one call object per callable tool (its name as a
//! constant, its `parameters` schema for the arguments), converted by llama.cpp's own JSON
//! Schema converter, framed by the format's marker. `auto` on a native format is lazy: free
//! text until the marker, then the calls.

use std::sync::Arc;

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use serde_json::{json, Value};

use super::format::ToolFormat;
use super::prompt::callable_tools;
use crate::api::{ChatCompletionRequest, Tool, ToolUse};
use crate::error::{Error, Result};
use crate::grammar::GrammarCache;

/// The root rule of a framed grammar (the converter's own `root` is one call).
const FRAME_ROOT: &str = "tool-frame";

/// A request's tool grammar, ready to compile per choice.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolGrammar {
    pub gbnf: Arc<str>,
    pub root: &'static str,
    /// Lazy: free text until one of the trigger words or tokens, then the grammar.
    pub lazy: bool,
    pub trigger_words: Vec<String>,
    pub trigger_tokens: Vec<LlamaToken>,
}

impl ToolGrammar {
    /// The grammar sampler (llama.cpp's parser errors are caught by the shim).
    pub(crate) fn compile(&self, model: &LlamaModel) -> Result<LlamaSampler> {
        let made = if self.lazy {
            LlamaSampler::grammar_lazy(
                model,
                &self.gbnf,
                self.root,
                &self.trigger_words,
                &self.trigger_tokens,
            )
        } else {
            LlamaSampler::grammar(model, &self.gbnf, self.root)
        };
        made.map_err(|e| {
            Error::invalid("tools", format!("The tools' grammar does not compile: {e}"))
        })
    }
}

/// A schema's local `$ref`s (`#/...`) pointed into `$defs/<def>`, where the schema is moved.
fn rebase_refs(schema: &mut Value, def: &str) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(r) if key == "$ref" && r.starts_with("#/") => {
                        *r = format!("#/$defs/{def}{}", &r[1..]);
                    }
                    _ => rebase_refs(value, def),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rebase_refs(v, def)),
        _ => {}
    }
}

/// One call object: `name` (constant) first, then the arguments, then (Mistral) an id.
fn call_schema(tool: &Tool, def: &str, format: ToolFormat) -> String {
    let args = format.arguments_key();
    let name = json!({ "const": tool.function.name });
    let (id, id_required) = if format == ToolFormat::MistralNemo {
        (
            r#","id":{"type":"string","pattern":"^[a-zA-Z0-9]{9}$"}"#,
            r#","id""#,
        )
    } else {
        ("", "")
    };
    format!(
        r##"{{"type":"object","properties":{{"name":{name},"{args}":{{"$ref":"#/$defs/{def}"}}{id}}},"required":["name","{args}"{id_required}],"additionalProperties":false}}"##
    )
}

/// The JSON Schema of the answer: the calls (native formats: one call; the frame repeats it),
/// or for the generic format `{"tool_calls": [...]}`, or `{"response": "..."}` under `auto`.
fn answer_schema(tools: &[&Tool], format: ToolFormat, parallel: bool, may_answer: bool) -> String {
    let mut defs = serde_json::Map::new();
    let mut calls = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let def = format!("tool{i}");
        let mut params = tool.parameters_schema();
        rebase_refs(&mut params, &def);
        calls.push(call_schema(tool, &def, format));
        defs.insert(def, params);
    }
    let call = if calls.len() == 1 {
        calls.remove(0)
    } else {
        format!(r#"{{"anyOf":[{}]}}"#, calls.join(","))
    };
    let defs = Value::Object(defs);
    if format.is_native() {
        // The call's own keywords plus `$defs`, at the root.
        let call = call.strip_suffix('}').expect("an object");
        return format!(r#"{call},"$defs":{defs}}}"#);
    }
    let max = if parallel { "" } else { r#","maxItems":1"# };
    let tool_calls = format!(
        r#"{{"type":"object","properties":{{"tool_calls":{{"type":"array","items":{call},"minItems":1{max}}}}},"required":["tool_calls"],"additionalProperties":false}}"#
    );
    if may_answer {
        let response = r#"{"type":"object","properties":{"response":{"type":"string"}},"required":["response"],"additionalProperties":false}"#;
        format!(r#"{{"anyOf":[{tool_calls},{response}],"$defs":{defs}}}"#)
    } else {
        let tool_calls = tool_calls.strip_suffix('}').expect("an object");
        format!(r#"{tool_calls},"$defs":{defs}}}"#)
    }
}

/// The rules that frame the converter's `root` (one call) in a native format's markers; with
/// `or_text` (Llama 3 under `auto`), the answer may instead be text that does not open like a
/// call: after any white space, its first character is not `{`, and it does not open with `<|`
/// (`<|python_tag|>`, the other way a Llama 3 call opens).
fn frame_rules(format: ToolFormat, parallel: bool, or_text: bool) -> Option<String> {
    let more = |call: &str| {
        if parallel {
            format!("({call} (tool-frame-ws {call})*)")
        } else {
            call.to_owned()
        }
    };
    let rules = match format {
        ToolFormat::Hermes => format!(
            "{FRAME_ROOT} ::= {}\ntool-frame-call ::= \"<tool_call>\" tool-frame-ws root tool-frame-ws \"</tool_call>\"\n",
            more("tool-frame-call")
        ),
        ToolFormat::MistralNemo => format!(
            "{FRAME_ROOT} ::= \"[TOOL_CALLS]\" tool-frame-ws \"[\" tool-frame-ws root {}tool-frame-ws \"]\"\n",
            if parallel {
                "(tool-frame-ws \",\" tool-frame-ws root)* "
            } else {
                ""
            }
        ),
        ToolFormat::Llama3 if or_text => format!(
            "{FRAME_ROOT} ::= [ \\t\\r\\n]* ((\"<|python_tag|>\")? root | tool-frame-text)?\n\
             tool-frame-text ::= [^{{<\\x20\\t\\r\\n] tool-frame-any* | \"<\" ([^|] tool-frame-any*)?\n\
             tool-frame-any ::= [^\\x00]\n"
        ),
        ToolFormat::Llama3 => format!("{FRAME_ROOT} ::= root\n"),
        ToolFormat::Generic => return None,
    };
    Some(format!("{rules}tool-frame-ws ::= [ \\t\\n]{{0,4}}\n"))
}

/// The grammar of a request's answer, or `None` when it is free (no tools, `none`, or `auto`
/// on Llama 3 without a `strict` tool).
pub(crate) fn tool_grammar(
    req: &ChatCompletionRequest,
    format: ToolFormat,
    model: &LlamaModel,
    cache: &GrammarCache,
) -> Result<Option<ToolGrammar>> {
    let tool_use = req.tool_use();
    let strict = req
        .tool_list()
        .iter()
        .any(|t| t.function.strict == Some(true));
    // (lazy, call_or_text). Llama 3's calls open with no marker for a lazy grammar to wait for:
    // under `auto` they are parsed only, as llama.cpp does, unless a tool is `strict`; then the
    // whole answer follows a grammar that lets it be a call or text that does not open like one.
    let (lazy, call_or_text) = match tool_use {
        ToolUse::Off => return Ok(None),
        ToolUse::Auto if format == ToolFormat::Llama3 && !strict => return Ok(None),
        ToolUse::Auto if format == ToolFormat::Llama3 => (false, true),
        ToolUse::Auto => (format.is_native(), false),
        ToolUse::Required | ToolUse::Named(_) => (false, false),
    };
    let marker = format.marker().unwrap_or("");
    let tools = callable_tools(req);
    // Each schema alone first, so that one the converter refuses is named.
    for (i, tool) in req.tool_list().iter().enumerate() {
        if tools.iter().any(|t| std::ptr::eq(*t, tool)) {
            cache.convert(
                model,
                &tool.parameters_schema().to_string(),
                &format!("tools[{i}].function.parameters"),
            )?;
        }
    }
    let parallel = req.parallel_calls() && !matches!(tool_use, ToolUse::Named(_));
    let schema = answer_schema(&tools, format, parallel, tool_use == ToolUse::Auto);
    let frame = frame_rules(format, parallel, call_or_text);
    let root = if frame.is_some() { FRAME_ROOT } else { "root" };
    let key = format!(
        "tools {} {}\n{schema}",
        format.name(),
        frame.as_deref().unwrap_or("")
    );
    let gbnf = cache.cached(&key, || {
        let body = cache.convert(model, &schema, "tools")?;
        let gbnf = format!("{body}{}", frame.as_deref().unwrap_or(""));
        LlamaSampler::grammar(model, &gbnf, root).map_err(|e| {
            Error::invalid("tools", format!("The tools' grammar does not compile: {e}"))
        })?;
        Ok(gbnf)
    })?;
    let trigger_tokens = if lazy {
        marker_token(model, marker).into_iter().collect()
    } else {
        Vec::new()
    };
    Ok(Some(ToolGrammar {
        gbnf,
        root,
        lazy,
        trigger_words: if lazy {
            vec![marker.to_owned()]
        } else {
            Vec::new()
        },
        trigger_tokens,
    }))
}

/// The marker's token, when the vocabulary has it as one (often a control token).
pub(crate) fn marker_token(model: &LlamaModel, marker: &str) -> Option<LlamaToken> {
    if marker.is_empty() {
        return None;
    }
    match model
        .vocab()
        .tokenize(marker.as_bytes(), false, true)
        .as_slice()
    {
        [one] => Some(*one),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> Tool {
        Tool::function(
            "get_weather",
            json!({"type": "object", "properties": {"city": {"$ref": "#/$defs/City"}}, "required": ["city"],
                   "$defs": {"City": {"type": "string", "maxLength": 20}}}),
        )
    }

    /// Whether llama.cpp's grammar engine lets the model write `text` whole and then stop.
    fn lets_write(model: &LlamaModel, grammar: &ToolGrammar, text: &str) -> bool {
        let mut sampler = LlamaSampler::grammar(model, &grammar.gbnf, grammar.root).unwrap();
        let tokens = model.vocab().tokenize(text.as_bytes(), false, false);
        for token in tokens.into_iter().chain([model.vocab().eos()]) {
            if !crate::sampling::grammar_allows(&mut sampler, token) {
                return false;
            }
            sampler.accept(token);
        }
        true
    }

    #[test]
    fn strict_tools_under_auto_on_llama_3_are_a_call_or_text_that_does_not_open_like_one() {
        let backend = crate::backend::backend().unwrap();
        let model = LlamaModel::load_from_file(
            backend,
            modelservice_test_models::smollm2(),
            &Default::default(),
        )
        .unwrap();
        let request = |strict: bool| {
            ChatCompletionRequest::from_json(
                &json!({"model": "m", "messages": [{"role": "user", "content": "Weather?"}],
                    "tools": [{"type": "function", "function": {"name": "get_weather", "strict": strict,
                        "parameters": {"type": "object", "properties": {"city": {"enum": ["FR-PARIS"]}},
                            "required": ["city"], "additionalProperties": false}}}]})
                .to_string(),
            )
            .unwrap()
        };
        let cache = GrammarCache::default();
        // Without `strict`: parse only, as llama.cpp does.
        assert_eq!(
            tool_grammar(&request(false), ToolFormat::Llama3, &model, &cache).unwrap(),
            None
        );
        let grammar = tool_grammar(&request(true), ToolFormat::Llama3, &model, &cache)
            .unwrap()
            .expect("a grammar for strict tools");
        assert!(!grammar.lazy);
        for allowed in [
            r#"{"name": "get_weather", "parameters": {"city": "FR-PARIS"}}"#,
            "\n{\"name\": \"get_weather\", \"parameters\": {\"city\": \"FR-PARIS\"}}",
            "It is sunny in Paris today.",
            "\nIt is sunny in Paris today.",
            "<b>Sunny</b>",
        ] {
            assert!(lets_write(&model, &grammar, allowed), "{allowed:?}");
        }
        for refused in [
            r#"{"name": "get_weather", "parameters": {"city": "Paris"}}"#,
            r#"{"name": "get_time", "parameters": {}}"#,
            "{ I think it is sunny }",
            "  {\"name\": \"get_weather\"}",
            "<|python_tag|>sunny",
        ] {
            assert!(!lets_write(&model, &grammar, refused), "{refused:?}");
        }
    }

    #[test]
    fn schemas_are_json_with_refs_rebased() {
        let tools = [weather(), Tool::function("get_time", json!({}))];
        let refs: Vec<&Tool> = tools.iter().collect();
        for format in [
            ToolFormat::Hermes,
            ToolFormat::MistralNemo,
            ToolFormat::Llama3,
            ToolFormat::Generic,
        ] {
            for may_answer in [false, true] {
                let text = answer_schema(&refs, format, true, may_answer);
                let v: Value =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
                assert_eq!(
                    v["$defs"]["tool0"]["properties"]["city"]["$ref"],
                    "#/$defs/tool0/$defs/City"
                );
                llama_cpp_2::json_schema_to_grammar(&text).unwrap();
            }
        }
    }
}
