"""Response objects with the attribute shape of the `openai` SDK's pydantic models.

They are built from the engine's JSON (the core's serde types are the one declaration of the
wire format); the annotations below name what the core sends, plus the optional fields of the
SDK's models that the engine never sets (they read as ``None``). A test ties these classes to
both the core's output and the real `openai` package.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Optional, TypeVar

__all__ = [
    "OpenAIObject",
    "ChatCompletion",
    "Choice",
    "ChatCompletionMessage",
    "CompletionUsage",
    "ChatCompletionChunk",
    "ChunkChoice",
    "ChoiceDelta",
    "Model",
    "ModelList",
    "Service",
    "ServiceBaseModel",
    "ServiceUsage",
    "EngineStats",
]

_T = TypeVar("_T", bound="OpenAIObject")


def _dump(value: Any, exclude_none: bool) -> Any:
    if isinstance(value, OpenAIObject):
        return value.model_dump(exclude_none=exclude_none)
    if isinstance(value, list):
        return [_dump(v, exclude_none) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v, exclude_none) for k, v in value.items() if not (exclude_none and v is None)}
    return value


class OpenAIObject:
    """Base of every response object: attributes from a JSON object, nested objects typed."""

    # Field name -> class of the nested object (or of each element of a list).
    _nested: ClassVar[Mapping[str, type[OpenAIObject]]] = {}

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._fields = tuple(data)
        for key, value in data.items():
            cls = self._nested.get(key)
            if cls is not None and value is not None:
                value = [cls(v) for v in value] if isinstance(value, list) else cls(value)
            setattr(self, key, value)

    @classmethod
    def from_json(cls: type[_T], text: str) -> _T:
        """Builds the object from its JSON text."""
        return cls(json.loads(text))

    def model_dump(
        self, *, mode: str = "python", exclude_none: bool = False, exclude_unset: bool = False, **_: Any
    ) -> dict[str, Any]:
        """The object as plain dicts and lists (what the engine sent, with any changes made since)."""
        out = {}
        for key in self._fields:
            value = getattr(self, key)
            if exclude_none and value is None:
                continue
            out[key] = _dump(value, exclude_none)
        return out

    def model_dump_json(self, *, indent: Optional[int] = None, exclude_none: bool = False, **_: Any) -> str:
        """The object as JSON text."""
        return json.dumps(self.model_dump(exclude_none=exclude_none), indent=indent, ensure_ascii=False)

    def to_dict(self, *, exclude_none: bool = False, **_: Any) -> dict[str, Any]:
        """Same as :meth:`model_dump`, named as in the `openai` SDK."""
        return self.model_dump(exclude_none=exclude_none)

    def to_json(self, *, indent: Optional[int] = 2, exclude_none: bool = False, **_: Any) -> str:
        """Same as :meth:`model_dump_json`, indented by default as in the `openai` SDK."""
        return self.model_dump_json(indent=indent, exclude_none=exclude_none)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, OpenAIObject)
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._fields)
        return f"{type(self).__name__}({fields})"


class CompletionUsage(OpenAIObject):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    completion_tokens_details: Optional[Any] = None
    prompt_tokens_details: Optional[Any] = None


class ChatCompletionMessage(OpenAIObject):
    role: str
    content: Optional[str]
    refusal: Optional[str] = None
    tool_calls: Optional[list[Any]] = None
    function_call: Optional[Any] = None
    audio: Optional[Any] = None
    annotations: Optional[list[Any]] = None


class Choice(OpenAIObject):
    _nested = {"message": ChatCompletionMessage}
    index: int
    message: ChatCompletionMessage
    finish_reason: str
    logprobs: Optional[Any] = None


class ChatCompletion(OpenAIObject):
    """A whole chat completion (`object == "chat.completion"`)."""

    _nested = {"choices": Choice, "usage": CompletionUsage}
    id: str
    object: str
    created: int
    model: str
    choices: list[Choice]
    usage: Optional[CompletionUsage]
    system_fingerprint: Optional[str] = None
    service_tier: Optional[str] = None


class ChoiceDelta(OpenAIObject):
    role: Optional[str] = None
    content: Optional[str] = None
    refusal: Optional[str] = None
    tool_calls: Optional[list[Any]] = None
    function_call: Optional[Any] = None


class ChunkChoice(OpenAIObject):
    _nested = {"delta": ChoiceDelta}
    index: int
    delta: ChoiceDelta
    finish_reason: Optional[str] = None
    logprobs: Optional[Any] = None


class ChatCompletionChunk(OpenAIObject):
    """One event of a streamed chat completion (`object == "chat.completion.chunk"`)."""

    _nested = {"choices": ChunkChoice, "usage": CompletionUsage}
    id: str
    object: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Optional[CompletionUsage] = None
    system_fingerprint: Optional[str] = None
    service_tier: Optional[str] = None


class Model(OpenAIObject):
    """A running service, listed as an OpenAI model under its access name."""

    id: str
    object: str
    created: int
    owned_by: str


class ModelList(OpenAIObject):
    """`client.models.list()`: iterate it, or read `.data`."""

    _nested = {"data": Model}
    object: str
    data: list[Model]

    def __iter__(self) -> Iterator[Model]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


class ServiceBaseModel(OpenAIObject):
    """The base model of a service, read from the GGUF file."""

    name: str
    architecture: str
    size_label: Optional[str]
    quantization: str
    trained_context_length: int
    parameters: int
    file_size: int
    path: str
    has_chat_template: bool


class ServiceUsage(OpenAIObject):
    requests: int
    prompt_tokens: int
    completion_tokens: int


class EngineStats(OpenAIObject):
    decode_steps: int
    tokens_decoded: int
    peak_batch_sequences: int
    prompt_tokens_reused: int


class Service(OpenAIObject):
    """A model service as the product page lists it: ID, name, access name, base model,
    instance count and status, plus its settings and counters."""

    _nested = {"base_model": ServiceBaseModel, "usage": ServiceUsage, "stats": EngineStats}
    id: str
    name: str
    access_name: str
    base_model: ServiceBaseModel
    instances: int
    status: str
    status_reason: Optional[str]
    slots_per_instance: int
    context_length: int
    threads_per_instance: int
    queue_size: int
    created: int
    usage: ServiceUsage
    stats: EngineStats
