//! Reading tool calls out of generated text, as it streams: text before a format's marker is
//! content (emitted as soon as it cannot be the start of a marker); a call starts once its name
//! is complete, and its arguments follow as they grow (compact JSON: whitespace outside strings
//! dropped, so every fragment is final). The same parser serves streamed and whole answers, so
//! both agree.

use serde_json::Value;

use super::format::ToolFormat;

/// What a stretch of generated text turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Parsed {
    Content(String),
    /// A new call, by its function's name.
    CallStart(String),
    /// More of the last started call's arguments.
    CallArgs(String),
}

/// One complete call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParsedCall {
    pub name: String,
    /// The arguments as compact JSON text.
    pub arguments: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Free text; a marker may open the call section.
    Content,
    /// After a marker: call JSON comes next.
    Calls,
    /// Hermes: after a call, its closing tag.
    CloseTag,
    /// Llama 3: the answer opened with `{`; a call if it names a tool.
    BareJson,
    /// Generic: the one JSON object of the answer.
    GenericObject,
    /// Generic: inside the string of `{"response": "...`; the value is the content.
    ResponseString,
    /// Inside an array of calls (generic `{"tool_calls": [`, Mistral `[TOOL_CALLS][`): each
    /// call is emitted as soon as its object is complete.
    CallArray,
    /// Nothing more is read.
    Done,
}

/// The streaming parser of one choice.
pub(crate) struct ToolParser {
    format: ToolFormat,
    /// The callable tools' names (a bare Llama 3 object is a call only if it names one).
    names: Vec<String>,
    buf: String,
    state: State,
    /// Whether any text was seen yet (a Llama 3 call must open the answer).
    started: bool,
    /// The call being read.
    open: OpenCall,
}

/// Whether the call being read was started, and how much of its arguments went out.
#[derive(Debug, Default)]
struct OpenCall {
    started: bool,
    args_sent: usize,
}

const HERMES_CLOSE: &str = "</tool_call>";

impl ToolParser {
    pub(crate) fn new(format: ToolFormat, names: Vec<String>) -> Self {
        ToolParser {
            format,
            names,
            buf: String::new(),
            state: if format == ToolFormat::Generic {
                State::GenericObject
            } else {
                State::Content
            },
            started: false,
            open: OpenCall::default(),
        }
    }

    /// Adds generated text; returns what it completes.
    pub(crate) fn push(&mut self, text: &str) -> Vec<Parsed> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        while self.step(&mut out, false) {}
        out
    }

    /// Ends the text: whatever is left is emitted as best it can be.
    pub(crate) fn finish(&mut self) -> Vec<Parsed> {
        let mut out = Vec::new();
        while self.step(&mut out, true) {}
        let rest = std::mem::take(&mut self.buf);
        if self.open.started {
            // A call cut short (max_tokens) keeps what it had.
            self.state = State::Done;
        }
        match self.state {
            // A call cut short (max_tokens) is dropped; the complete ones were emitted.
            State::Done | State::CloseTag | State::CallArray => {}
            // Cut short (max_tokens): what was generated stays visible as text.
            _ if !rest.trim().is_empty() => out.push(Parsed::Content(rest)),
            _ => {}
        }
        self.state = State::Done;
        out
    }

    /// Consumes what it can of the buffer; false when it must wait for more text.
    fn step(&mut self, out: &mut Vec<Parsed>, at_end: bool) -> bool {
        match self.state {
            State::Content => self.content(out, at_end),
            State::Calls => self.calls(out),
            State::CloseTag => self.close_tag(at_end),
            State::BareJson => self.bare_json(out),
            State::GenericObject => self.generic_object(out, at_end),
            State::ResponseString => self.response_string(out),
            State::CallArray => self.call_array(out),
            State::Done => {
                self.buf.clear();
                false
            }
        }
    }

    fn content(&mut self, out: &mut Vec<Parsed>, at_end: bool) -> bool {
        if !self.started {
            let trimmed = self.buf.trim_start();
            if trimmed.is_empty() {
                return false;
            }
            self.started = true;
            if self.format == ToolFormat::Llama3 && trimmed.starts_with('{') {
                self.state = State::BareJson;
                return true;
            }
        }
        let Some(marker) = self.format.marker() else {
            emit_content(out, std::mem::take(&mut self.buf));
            return false;
        };
        if let Some(at) = self.buf.find(marker) {
            let before = self.buf[..at].trim_end().to_owned();
            emit_content(out, before);
            self.buf.drain(..at + marker.len());
            self.state = State::Calls;
            return true;
        }
        if at_end {
            return false;
        }
        // Hold back what may begin a marker, and trailing whitespace (dropped before a call).
        let keep_from = partial_marker_start(&self.buf, marker);
        let cut = self.buf[..keep_from].trim_end().len();
        let text: String = self.buf.drain(..cut).collect();
        emit_content(out, text);
        false
    }

    fn calls(&mut self, out: &mut Vec<Parsed>) -> bool {
        let start = self.buf.len() - self.buf.trim_start().len();
        if self.format == ToolFormat::MistralNemo && self.buf[start..].starts_with('[') {
            self.buf.drain(..start + 1);
            self.state = State::CallArray;
            return true;
        }
        let text = self.buf[start..].to_owned();
        let (value, end) = match complete_json(&text) {
            None => {
                self.read_call(&text, false, false, out);
                return false;
            }
            Some((Err(_), _)) if !self.open.started => {
                // Not JSON after the marker: keep the text as content.
                self.state = State::Content;
                return true;
            }
            Some((Err(_), _)) => {
                self.state = State::Done;
                return true;
            }
            Some((Ok(value), end)) => (value, end),
        };
        match value {
            Value::Array(items) if !self.open.started => {
                items
                    .iter()
                    .filter_map(call_from)
                    .for_each(|c| push_call(out, c));
            }
            _ => {
                self.read_call(&text[..end], true, false, out);
            }
        }
        self.buf.drain(..start + end);
        self.state = if self.format == ToolFormat::Hermes {
            State::CloseTag
        } else {
            State::Content
        };
        true
    }

    fn close_tag(&mut self, at_end: bool) -> bool {
        let trimmed = self.buf.trim_start();
        if let Some(rest) = trimmed.strip_prefix(HERMES_CLOSE) {
            self.buf = rest.to_owned();
            self.state = State::Content;
            return true;
        }
        if HERMES_CLOSE.starts_with(trimmed) && !at_end {
            return false;
        }
        // A call left unclosed: whatever follows is read as content.
        self.state = State::Content;
        !at_end || !self.buf.is_empty()
    }

    fn bare_json(&mut self, out: &mut Vec<Parsed>) -> bool {
        // Calls may follow one another, separated by `;` or whitespace.
        let start = self.buf.len()
            - self
                .buf
                .trim_start_matches([';', ' ', '\n', '\t', '\r'])
                .len();
        let text = &self.buf[start..];
        if text.is_empty() {
            return false;
        }
        if !text.starts_with('{') {
            self.buf.drain(..start);
            self.state = State::Content;
            return true;
        }
        let text = text.to_owned();
        match complete_json(&text) {
            Some((Ok(_), end)) => {
                if self.read_call(&text[..end], true, true, out) {
                    self.buf.drain(..start + end);
                    true
                } else {
                    self.plain_text(out)
                }
            }
            Some((Err(_), _)) if !self.open.started => self.plain_text(out),
            Some((Err(_), _)) => {
                self.state = State::Done;
                true
            }
            None => {
                self.read_call(&text, false, true, out);
                false
            }
        }
    }

    /// The answer is plain text after all: emit it and read no more structure.
    fn plain_text(&mut self, out: &mut Vec<Parsed>) -> bool {
        emit_content(out, std::mem::take(&mut self.buf));
        self.format = ToolFormat::Generic;
        self.state = State::Content;
        false
    }

    fn generic_object(&mut self, out: &mut Vec<Parsed>, at_end: bool) -> bool {
        let start = self.buf.len() - self.buf.trim_start().len();
        let text = &self.buf[start..];
        if text.is_empty() {
            return false;
        }
        let response = opens_with(text, &["{", "\"response\"", ":", "\""]);
        let calls = opens_with(text, &["{", "\"tool_calls\"", ":", "["]);
        for (prefix, state) in [
            (&response, State::ResponseString),
            (&calls, State::CallArray),
        ] {
            if let Prefix::Complete(len) = prefix {
                self.buf.drain(..start + len);
                self.state = state;
                return true;
            }
        }
        if (matches!(response, Prefix::Partial) || matches!(calls, Prefix::Partial)) && !at_end {
            return false;
        }
        match complete_json(text) {
            Some((Ok(Value::Object(obj)), end)) => {
                if let Some(Value::Array(calls)) = obj.get("tool_calls") {
                    calls
                        .iter()
                        .filter_map(call_from)
                        .for_each(|c| push_call(out, c));
                } else if let Some(Value::String(s)) = obj.get("response") {
                    emit_content(out, s.clone());
                } else {
                    emit_content(out, text[..end].to_owned());
                }
                self.buf.clear();
                self.state = State::Done;
                false
            }
            Some(_) => {
                self.state = State::Content;
                self.format = ToolFormat::Generic;
                emit_content(out, std::mem::take(&mut self.buf));
                false
            }
            None => false,
        }
    }

    fn call_array(&mut self, out: &mut Vec<Parsed>) -> bool {
        let start = self.buf.len()
            - self
                .buf
                .trim_start_matches([',', ' ', '\n', '\t', '\r'])
                .len();
        let text = &self.buf[start..];
        if text.starts_with(']') {
            // The array is complete: the generic object ends here; Mistral text may follow.
            self.buf.drain(..start + 1);
            self.state = if self.format == ToolFormat::MistralNemo {
                State::Content
            } else {
                State::Done
            };
            return true;
        }
        let text = text.to_owned();
        match complete_json(&text) {
            None => {
                self.read_call(&text, false, false, out);
                false
            }
            Some((Ok(_), end)) => {
                self.read_call(&text[..end], true, false, out);
                self.buf.drain(..start + end);
                true
            }
            // Not a call: read no further.
            Some((Err(_), _)) => {
                self.state = State::Done;
                true
            }
        }
    }

    /// Reads the call object `text` (complete or not): starts the call once its name is known
    /// (with `gated`, only a name of the callable tools), then sends the arguments that are new.
    /// Returns whether the text is a call (false: not one, or not yet known to be).
    fn read_call(
        &mut self,
        text: &str,
        complete: bool,
        gated: bool,
        out: &mut Vec<Parsed>,
    ) -> bool {
        let scan = scan_call(text);
        let allowed = |name: &str| !gated || self.names.iter().any(|n| n == name);
        if !self.open.started {
            match &scan.name {
                Some(name) if allowed(name) => {
                    out.push(Parsed::CallStart(name.clone()));
                    self.open.started = true;
                }
                _ if complete => {
                    // OpenAI's `{"type": "function", "function": {...}}` wrapper, or no call.
                    let wrapped = serde_json::from_str::<Value>(text)
                        .ok()
                        .as_ref()
                        .and_then(call_from)
                        .filter(|c| allowed(&c.name));
                    return match wrapped {
                        Some(call) => {
                            push_call(out, call);
                            true
                        }
                        None => false,
                    };
                }
                _ => return false,
            }
        }
        let fragment = match scan.args {
            Some((from, to)) => {
                let raw = &text[from..to.unwrap_or(text.len())];
                if raw.starts_with('"') {
                    // Arguments sent as a JSON text in a string: whole, once complete.
                    match (to, self.open.args_sent) {
                        (Some(_), 0) => serde_json::from_str::<String>(raw).ok(),
                        _ => None,
                    }
                } else {
                    compact(raw).get(self.open.args_sent..).map(str::to_owned)
                }
            }
            None if complete && self.open.args_sent == 0 => Some("{}".to_owned()),
            None => None,
        };
        if let Some(fragment) = fragment.filter(|f| !f.is_empty()) {
            self.open.args_sent += fragment.len();
            out.push(Parsed::CallArgs(fragment));
        }
        if complete {
            self.open = OpenCall::default();
        }
        true
    }

    fn response_string(&mut self, out: &mut Vec<Parsed>) -> bool {
        let (safe, closed) = string_prefix(&self.buf);
        let decoded = serde_json::from_str::<String>(&format!("\"{}\"", &self.buf[..safe]))
            .unwrap_or_else(|_| self.buf[..safe].to_owned());
        emit_content(out, decoded);
        if closed {
            self.buf.clear();
            self.state = State::Done;
        } else {
            self.buf.drain(..safe);
        }
        false
    }
}

/// A call known whole at once.
fn push_call(out: &mut Vec<Parsed>, call: ParsedCall) {
    out.push(Parsed::CallStart(call.name));
    out.push(Parsed::CallArgs(call.arguments));
}

/// JSON text without whitespace outside strings. Compacting a prefix gives a prefix of the
/// compacted whole, so fragments sent early stay right.
fn compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// What the (possibly partial) text of a call object shows so far.
#[derive(Debug, Default)]
struct CallScan {
    name: Option<String>,
    /// Where the arguments' value starts, and ends once complete.
    args: Option<(usize, Option<usize>)>,
}

/// Reads the keys of a call object as far as they are complete.
fn scan_call(text: &str) -> CallScan {
    let mut scan = CallScan::default();
    let skip_ws = |i: usize| text.len() - text[i..].trim_start().len();
    let mut i = skip_ws(0);
    if !text[i..].starts_with('{') {
        return scan;
    }
    i += 1;
    loop {
        i = skip_ws(i);
        let Some((Ok(Value::String(key)), end)) = complete_json(&text[i..]) else {
            return scan;
        };
        i = skip_ws(i + end);
        if !text[i..].starts_with(':') {
            return scan;
        }
        i = skip_ws(i + 1);
        let is_args = key == "arguments" || key == "parameters";
        match complete_json(&text[i..]) {
            Some((Ok(value), end)) => {
                if key == "name" {
                    scan.name = value.as_str().map(str::to_owned);
                } else if is_args {
                    scan.args = Some((i, Some(i + end)));
                }
                i = skip_ws(i + end);
            }
            None if is_args && i < text.len() => {
                scan.args = Some((i, None));
                return scan;
            }
            _ => return scan,
        }
        if !text[i..].starts_with(',') {
            return scan;
        }
        i += 1;
    }
}

fn emit_content(out: &mut Vec<Parsed>, text: String) {
    if text.is_empty() {
        return;
    }
    if let Some(Parsed::Content(last)) = out.last_mut() {
        last.push_str(&text);
    } else {
        out.push(Parsed::Content(text));
    }
}

/// Where the longest suffix of `text` that is a proper prefix of `marker` begins.
fn partial_marker_start(text: &str, marker: &str) -> usize {
    (1..marker.len().min(text.len() + 1))
        .rev()
        .filter(|&n| text.is_char_boundary(text.len() - n) && marker.is_char_boundary(n))
        .find(|&n| text.ends_with(&marker[..n]))
        .map_or(text.len(), |n| text.len() - n)
}

/// The first JSON value of `text` and where it ends; `None` while it is incomplete.
fn complete_json(text: &str) -> Option<(serde_json::Result<Value>, usize)> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    match values.next() {
        None => None,
        Some(Err(e)) if e.is_eof() => None,
        Some(result) => Some((result, values.byte_offset())),
    }
}

/// A call read from `{"name", "arguments" | "parameters"}` (or OpenAI's `{"type": "function",
/// "function": {...}}` wrapper).
fn call_from(value: &Value) -> Option<ParsedCall> {
    let obj = value.as_object()?;
    if let Some(inner @ Value::Object(_)) = obj.get("function") {
        return call_from(inner);
    }
    let name = obj.get("name")?.as_str()?.to_owned();
    let arguments = match obj.get("arguments").or_else(|| obj.get("parameters")) {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    Some(ParsedCall { name, arguments })
}

enum Prefix {
    /// `{"response": "` is complete; its length.
    Complete(usize),
    /// The text may still become it.
    Partial,
    No,
}

/// Whether `text` opens with `parts` (any whitespace between them).
fn opens_with(text: &str, parts: &[&str]) -> Prefix {
    let mut rest = text;
    for part in parts {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Prefix::Partial;
        }
        if let Some(after) = rest.strip_prefix(part) {
            rest = after;
        } else if part.starts_with(rest) {
            return Prefix::Partial;
        } else {
            return Prefix::No;
        }
    }
    Prefix::Complete(text.len() - rest.len())
}

/// How much of a JSON string body (after its opening quote) can be decoded now, and whether
/// the closing quote was reached. An escape cut in two, or a lone high surrogate (its pair may
/// follow), is held back.
fn string_prefix(body: &str) -> (usize, bool) {
    let bytes = body.as_bytes();
    let mut i = 0;
    let mut safe = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return (i, true),
            b'\\' => {
                let len = match bytes.get(i + 1) {
                    None => return (safe, false),
                    Some(b'u') => 6,
                    Some(_) => 2,
                };
                if i + len > bytes.len() {
                    return (safe, false);
                }
                let high_surrogate = len == 6
                    && matches!(body.get(i + 2..i + 4), Some(h) if h.eq_ignore_ascii_case("d8") || h.eq_ignore_ascii_case("d9") || h.eq_ignore_ascii_case("da") || h.eq_ignore_ascii_case("db"));
                i += len;
                if !high_surrogate {
                    safe = i;
                }
            }
            _ => {
                i += 1;
                if body.is_char_boundary(i) {
                    safe = i;
                }
            }
        }
    }
    (safe, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["get_weather".into(), "get_time".into()]
    }

    /// Feeds `text` in pieces of `size` characters; returns the content and the calls.
    fn parse(format: ToolFormat, text: &str, size: usize) -> (String, Vec<(String, String)>) {
        let mut parser = ToolParser::new(format, names());
        let chars: Vec<char> = text.chars().collect();
        let mut events = Vec::new();
        for piece in chars.chunks(size) {
            events.extend(parser.push(&piece.iter().collect::<String>()));
        }
        events.extend(parser.finish());
        let mut content = String::new();
        let mut calls = Vec::new();
        for e in events {
            match e {
                Parsed::Content(t) => content.push_str(&t),
                Parsed::CallStart(name) => calls.push((name, String::new())),
                Parsed::CallArgs(args) => calls.last_mut().unwrap().1.push_str(&args),
            }
        }
        (content, calls)
    }

    /// Every piece size gives the same result as the whole text at once.
    fn parse_all_ways(format: ToolFormat, text: &str) -> (String, Vec<(String, String)>) {
        let whole = parse(format, text, usize::MAX);
        for size in 1..8 {
            assert_eq!(parse(format, text, size), whole, "pieces of {size}: {text}");
        }
        whole
    }

    fn call(name: &str, args: &str) -> (String, String) {
        (name.into(), args.into())
    }

    // Recorded from Qwen2.5-style and Hermes-2-Pro-style answers.
    #[test]
    fn hermes() {
        let one = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
        assert_eq!(
            parse_all_ways(ToolFormat::Hermes, one),
            (
                String::new(),
                vec![call("get_weather", r#"{"city":"Paris"}"#)]
            )
        );
        let two = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\"}}\n</tool_call>";
        assert_eq!(
            parse_all_ways(ToolFormat::Hermes, two),
            (
                "Let me check.".into(),
                vec![
                    call("get_weather", r#"{"city":"Paris"}"#),
                    call("get_time", r#"{"tz":"CET"}"#)
                ]
            )
        );
        let text = "The weather is <b>sunny</b> and 22 < 30.";
        assert_eq!(
            parse_all_ways(ToolFormat::Hermes, text),
            (text.into(), vec![])
        );
    }

    #[test]
    fn hermes_partial_text_while_streaming() {
        let mut p = ToolParser::new(ToolFormat::Hermes, names());
        assert_eq!(p.push("Sure <tool"), vec![Parsed::Content("Sure".into())]);
        assert_eq!(
            p.push("_call>{\"name\": \"get_weather\", \"argu"),
            vec![Parsed::CallStart("get_weather".into())]
        );
        assert_eq!(
            p.push("ments\": {\"city\": \"Pa"),
            vec![Parsed::CallArgs("{\"city\":\"Pa".into())]
        );
        assert_eq!(
            p.push("ris\"}}</tool_call>"),
            vec![Parsed::CallArgs("ris\"}".into())]
        );
        assert_eq!(p.finish(), vec![]);
        // A held-back partial marker that never completes is content after all.
        let mut p = ToolParser::new(ToolFormat::Hermes, names());
        assert_eq!(p.push("a <to"), vec![Parsed::Content("a".into())]);
        assert_eq!(p.finish(), vec![Parsed::Content(" <to".into())]);
    }

    // Recorded from Mistral Nemo answers.
    #[test]
    fn mistral_nemo() {
        let two = "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"a1b2c3d4e\"}, {\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\"}, \"id\": \"f5g6h7i8j\"}]";
        assert_eq!(
            parse_all_ways(ToolFormat::MistralNemo, two),
            (
                String::new(),
                vec![
                    call("get_weather", r#"{"city":"Paris"}"#),
                    call("get_time", r#"{"tz":"CET"}"#)
                ]
            )
        );
        assert_eq!(
            parse_all_ways(ToolFormat::MistralNemo, "Hello [TOOL"),
            ("Hello [TOOL".into(), vec![])
        );
    }

    // Recorded from Llama 3.1 / 3.2 answers.
    #[test]
    fn llama3() {
        let bare = "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}";
        assert_eq!(
            parse_all_ways(ToolFormat::Llama3, bare),
            (
                String::new(),
                vec![call("get_weather", r#"{"city":"Paris"}"#)]
            )
        );
        let tagged = "<|python_tag|>{\"name\": \"get_time\", \"parameters\": {}}";
        assert_eq!(
            parse_all_ways(ToolFormat::Llama3, tagged),
            (String::new(), vec![call("get_time", "{}")])
        );
        let two = "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}; {\"name\": \"get_time\", \"parameters\": {\"tz\": \"CET\"}}";
        assert_eq!(parse_all_ways(ToolFormat::Llama3, two).1.len(), 2);
        // JSON that names no tool is an answer.
        let json = "{\"name\": \"Rex\", \"age\": 2}";
        assert_eq!(
            parse_all_ways(ToolFormat::Llama3, json),
            (json.into(), vec![])
        );
    }

    #[test]
    fn generic() {
        let two = "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\"}}]}";
        assert_eq!(
            parse_all_ways(ToolFormat::Generic, two),
            (
                String::new(),
                vec![
                    call("get_weather", r#"{"city":"Paris"}"#),
                    call("get_time", r#"{"tz":"CET"}"#)
                ]
            )
        );
        let answer = "{\"response\": \"Hello \\\"you\\\" \\u00e9\\ud83e\\udd80 done\"}";
        assert_eq!(
            parse_all_ways(ToolFormat::Generic, answer),
            ("Hello \"you\" é🦀 done".into(), vec![])
        );
        // The answer streams before the object is complete.
        let mut p = ToolParser::new(ToolFormat::Generic, names());
        assert_eq!(
            p.push("{\"response\": \"Hel"),
            vec![Parsed::Content("Hel".into())]
        );
        assert_eq!(p.push("lo\\"), vec![Parsed::Content("lo".into())]);
        assert_eq!(p.push("n\"}"), vec![Parsed::Content("\n".into())]);
        // Cut short by max_tokens: the complete calls are kept, the partial one dropped.
        assert_eq!(
            parse_all_ways(
                ToolFormat::Generic,
                "{\"tool_calls\": [{\"name\": \"get_time\", \"arguments\": {}}, {\"name\": \"get_w"
            ),
            (String::new(), vec![call("get_time", "{}")])
        );
        // Cut in the arguments: the call keeps what it had.
        assert_eq!(
            parse_all_ways(
                ToolFormat::Generic,
                "{\"tool_calls\": [{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CE"
            ),
            (String::new(), vec![call("get_time", "{\"tz\":\"CE")])
        );
        // Arguments given as a JSON string, and keys in any order.
        assert_eq!(
            parse_all_ways(
                ToolFormat::Generic,
                "{\"tool_calls\": [{\"arguments\": \"{\\\"tz\\\": 1}\", \"name\": \"get_time\"}]}"
            ),
            (String::new(), vec![call("get_time", "{\"tz\": 1}")])
        );
        // Anything else is text.
        assert_eq!(
            parse_all_ways(ToolFormat::Generic, "Hello"),
            ("Hello".into(), vec![])
        );
    }
}
