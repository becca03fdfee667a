"""modelservice: GGUF models as OpenAI-compatible model services inside your Python process.

Change one import in code written for the `openai` SDK::

    from modelservice import OpenAI          # was: from openai import OpenAI

    client = OpenAI(services=[{"name": "test", "access_name": "u/test", "model": "model.gguf"}])
    r = client.chat.completions.create(model="u/test", messages=[{"role": "user", "content": "hi"}])
    print(r.choices[0].message.content)
"""

from . import types
from ._client import NOT_GIVEN, AsyncOpenAI, NotGiven, OpenAI
from ._native import (
    APIError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    ModelLoadError,
    ModelServiceError,
    NotFoundError,
    RateLimitError,
    Registry,
    __version__,
)
from ._parsing import LengthFinishReasonError
from ._streaming import AsyncStream, Stream
from .types import (
    ChatCompletion,
    ChatCompletionChunk,
    Completion,
    CreateEmbeddingResponse,
    Embedding,
    Model,
    ModelList,
    Service,
    ServiceList,
    ServiceMetrics,
    ServiceMetricsList,
)

# The `openai` SDK's name for the base of its errors.
OpenAIError = ModelServiceError

__all__ = [
    "OpenAI",
    "AsyncOpenAI",
    "Registry",
    "Stream",
    "AsyncStream",
    "NOT_GIVEN",
    "NotGiven",
    "types",
    "ChatCompletion",
    "ChatCompletionChunk",
    "Completion",
    "CreateEmbeddingResponse",
    "Embedding",
    "Model",
    "ModelList",
    "Service",
    "ServiceList",
    "ServiceMetrics",
    "ServiceMetricsList",
    "ModelServiceError",
    "OpenAIError",
    "APIError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "NotFoundError",
    "ConflictError",
    "RateLimitError",
    "InternalServerError",
    "ModelLoadError",
    "LengthFinishReasonError",
    "__version__",
]
