"""The base of the response objects in `types` (generated): attributes from a JSON object,
nested objects typed, and the `openai` SDK's pydantic-style methods."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Generic, Optional, TypeVar

__all__ = ["OpenAIObject", "ListObject"]

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


_Item = TypeVar("_Item", bound=OpenAIObject)


class ListObject(OpenAIObject, Generic[_Item]):
    """A list shaped like OpenAI's (`{"object": "list", "data": [...]}`): iterate it, or read `.data`."""

    data: list[_Item]

    def __iter__(self) -> Iterator[_Item]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> _Item:
        return self.data[index]
