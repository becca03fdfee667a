//! Identifiers: service IDs (for usage tracking) and completion IDs.

/// A new service ID, e.g. `svc-1d033c426254417b7b0675303b1d300`.
pub(crate) fn service_id() -> String {
    format!("svc-{}", uuid::Uuid::new_v4().simple())
}

/// A new completion ID, as OpenAI's `chatcmpl-...`.
pub(crate) fn completion_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

/// A new legacy text completion ID, as OpenAI's `cmpl-...`.
pub(crate) fn text_completion_id() -> String {
    format!("cmpl-{}", uuid::Uuid::new_v4().simple())
}

/// A new tool call ID, as OpenAI's `call_` and 24 letters and digits.
pub(crate) fn tool_call_id() -> String {
    format!("call_{}", &uuid::Uuid::new_v4().simple().to_string()[..24])
}
