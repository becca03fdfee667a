"""`chat.completions.parse()` as the `openai` SDK has it: a Pydantic model (or any type Pydantic can
validate) given as `response_format` becomes a strict `json_schema` response format, and each
choice's JSON answer comes back validated as `message.parsed`. Pydantic is needed only here, and
only when a type is given (it is a dependency of the code that passes one)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from ._native import ModelServiceError
from .types import ChatCompletion, ChatCompletionMessage

__all__ = ["LengthFinishReasonError", "ParsedChatCompletionMessage", "response_format_param", "parse_completion"]


class ParsedChatCompletionMessage(ChatCompletionMessage):
    """A message of `parse()`: `parsed` is the answer validated as the requested type."""

    parsed: Optional[Any] = None


class LengthFinishReasonError(ModelServiceError):
    """The answer was cut by `max_tokens` before its JSON was complete (as the SDK raises)."""

    def __init__(self, completion: ChatCompletion) -> None:
        super().__init__("Could not parse response content as the length limit was reached: increase `max_tokens`.")
        self.completion = completion


def _adapter(response_format: Any) -> Any:
    import pydantic

    if isinstance(response_format, type) and issubclass(response_format, pydantic.BaseModel):
        return None
    return pydantic.TypeAdapter(response_format)


def response_format_param(response_format: Any) -> Any:
    """A type becomes `{"type": "json_schema", ...}`; a response-format dict passes as it is."""
    if response_format is None or isinstance(response_format, Mapping):
        return response_format
    adapter = _adapter(response_format)
    schema = response_format.model_json_schema() if adapter is None else adapter.json_schema()
    name = getattr(response_format, "__name__", "response")
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def parse_completion(completion: ChatCompletion, response_format: Any) -> ChatCompletion:
    """Sets `message.parsed` on every choice (None when `response_format` is not a type)."""
    parse_as = None if response_format is None or isinstance(response_format, Mapping) else response_format
    for choice in completion.choices:
        if choice.finish_reason == "length":
            raise LengthFinishReasonError(completion)
        message = ParsedChatCompletionMessage(choice.message.model_dump())
        choice.message = message
        if parse_as is not None and message.content is not None:
            adapter = _adapter(parse_as)
            message.parsed = (
                parse_as.model_validate_json(message.content)
                if adapter is None
                else adapter.validate_json(message.content)
            )
    return completion
