"""The compiled half of the package (Rust, pyo3). Requests and responses cross as JSON text."""

from typing import Optional, final

__all__ = [
    "__version__",
    "Registry",
    "PendingCall",
    "ResponseStream",
    "operations",
    "ModelServiceError",
    "APIError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "NotFoundError",
    "ConflictError",
    "RateLimitError",
    "InternalServerError",
    "ModelLoadError",
]

__version__: str

class ModelServiceError(Exception):
    """Base class of every error raised by modelservice (the SDK's `OpenAIError`)."""

class APIError(ModelServiceError):
    """An error reported by a model service, with the OpenAI error envelope's fields."""

    message: str
    type: str
    code: Optional[str]
    param: Optional[str]
    body: dict[str, Optional[str]]
    status_code: int

class APIStatusError(APIError): ...
class BadRequestError(APIStatusError): ...
class AuthenticationError(APIStatusError): ...
class NotFoundError(APIStatusError): ...
class ConflictError(APIStatusError): ...
class RateLimitError(APIStatusError): ...
class InternalServerError(APIStatusError): ...
class ModelLoadError(BadRequestError): ...

@final
class Registry:
    """The services of a process (or of some clients), shared by every client built on it.
    Every operation goes through `call`, `start` or `stream` by name, with JSON in and out."""

    def __new__(cls) -> Registry: ...
    def call(self, op: str, body: str) -> str: ...
    def start(self, op: str, body: str) -> PendingCall: ...
    def stream(self, op: str, body: str) -> ResponseStream: ...
    def count_prompt_tokens(self, request: str) -> int: ...
    def tokenize(self, access_name: str, text: str) -> list[int]: ...
    @staticmethod
    def model_loads() -> int: ...

@final
class PendingCall:
    """A unary call being served; dropping it or `cancel()` stops the work."""

    def wait(self, timeout: float) -> Optional[str]: ...
    def cancel(self) -> None: ...

@final
class ResponseStream:
    """The chunks of a streamed call; dropping it or `close()` stops the generation."""

    @property
    def id(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def next(self) -> Optional[str]: ...
    def poll(self, timeout: float) -> Optional[str]: ...
    def close(self) -> None: ...

def operations() -> list[str]: ...
