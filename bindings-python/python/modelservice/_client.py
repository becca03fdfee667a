"""`OpenAI` and `AsyncOpenAI`: the `openai` SDK's client surface, served in-process by the engine.

Each SDK method names one engine operation (its resource path: `client.chat.completions.create`
is `chat.completions.create`) and sends its parameters as a JSON body. The engine parses and
checks the body with the core's own types, so a bad or unknown field is refused there, named in
the error's `param`; nothing here lists or checks fields."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional, TypedDict, TypeVar, Union, overload

from . import _native
from ._executor import POLL_SECONDS, executor
from ._parsing import parse_completion, response_format_param
from ._streaming import AsyncStream, Stream
from .types import (
    ChatCompletion,
    ChatCompletionChunk,
    Completion,
    CreateEmbeddingResponse,
    Model,
    ModelList,
    Service,
    ServiceList,
    ServiceMetricsList,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .types import (
        ChatCompletionCreateParams,
        ChatCompletionCreateParamsNonStreaming,
        ChatCompletionCreateParamsStreaming,
        CompletionCreateParams,
        CompletionCreateParamsNonStreaming,
        CompletionCreateParamsStreaming,
        EmbeddingCreateParams,
    )

__all__ = ["OpenAI", "AsyncOpenAI", "NotGiven", "NOT_GIVEN", "RequestOptions"]

_R = TypeVar("_R")


class NotGiven:
    """The default of an optional parameter that was not passed (the SDK's `NOT_GIVEN`)."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


class RequestOptions(TypedDict, total=False):
    """The SDK's per-request options, taken by every method. `extra_body` is merged into the
    request body; the others only matter over HTTP and are accepted so SDK code runs unchanged."""

    extra_headers: Optional[Mapping[str, str]]
    extra_query: Optional[Mapping[str, object]]
    extra_body: Optional[Mapping[str, object]]
    timeout: Union[float, None, NotGiven]


if TYPE_CHECKING:
    # `create()`'s keywords: the generated request TypedDicts plus the request options.
    class _CreateNonStreaming(ChatCompletionCreateParamsNonStreaming, RequestOptions, total=False): ...

    class _CreateStreaming(ChatCompletionCreateParamsStreaming, RequestOptions, total=False): ...

    class _Create(ChatCompletionCreateParams, RequestOptions, total=False):
        stream: Optional[bool]

    class _EmbeddingCreate(EmbeddingCreateParams, RequestOptions, total=False): ...

    class _TextCreateNonStreaming(CompletionCreateParamsNonStreaming, RequestOptions, total=False): ...

    class _TextCreateStreaming(CompletionCreateParamsStreaming, RequestOptions, total=False): ...

    class _TextCreate(CompletionCreateParams, RequestOptions, total=False):
        stream: Optional[bool]


def _omitted(value: object) -> bool:
    # The SDK's own sentinels (`openai.NOT_GIVEN`, `openai.omit`) count as "not passed" too.
    return type(value).__name__ in ("NotGiven", "Omit")


def _json_default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # response objects, ours or the SDK's, passed back as messages
        return dump(exclude_none=True)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _invalid_value(message: str, param: Optional[str]) -> _native.BadRequestError:
    """The engine's error for a value it cannot read, for a value that cannot even become JSON."""
    error = _native.BadRequestError(message)
    error.message, error.status_code, error.type, error.param = message, 400, "invalid_request_error", param
    error.code = "invalid_value"
    error.body = {"message": message, "type": error.type, "param": param, "code": error.code}
    return error


def _dumps(body: Mapping[str, Any]) -> str:
    try:
        return json.dumps(body, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as e:
        for key, value in body.items():
            try:
                json.dumps(value, default=_json_default, allow_nan=False)
            except (TypeError, ValueError):
                raise _invalid_value(f"Invalid value for `{key}`: {e}", key) from None
        raise _invalid_value(f"Invalid request: {e}", None) from None


def _body(params: Mapping[str, Any]) -> str:
    """An operation's JSON body: the parameters that were passed, and `extra_body` merged in."""
    body = {k: v for k, v in params.items() if k not in RequestOptions.__annotations__ and not _omitted(v)}
    body.update(params.get("extra_body") or {})
    return _dumps(body)


async def _off_loop(fn: Callable[..., _R], *args: Any) -> _R:
    return await asyncio.get_running_loop().run_in_executor(executor(), fn, *args)


class _Resource:
    """A group of SDK methods (`client.models` ...), each one engine operation."""

    def __init__(self, registry: _native.Registry) -> None:
        self._registry = registry

    def _call(self, op: str, params: Mapping[str, Any]) -> str:
        return self._registry.call(op, _body(params))


class _AsyncResource:
    """A group of `AsyncOpenAI` methods: the engine works on its threads and the event loop
    waits in short slices off the loop; cancelling the awaiting task stops the work."""

    def __init__(self, registry: _native.Registry) -> None:
        self._registry = registry

    async def _call(self, op: str, params: Mapping[str, Any]) -> str:
        pending = self._registry.start(op, _body(params))
        try:
            while True:
                answer = await _off_loop(pending.wait, POLL_SECONDS)
                if answer is not None:
                    return answer
        except asyncio.CancelledError:
            pending.cancel()
            raise


def _registry_of(registry: Union[_native.Registry, OpenAI, AsyncOpenAI, None]) -> _native.Registry:
    if registry is None:
        return _native.Registry()
    if isinstance(registry, _native.Registry):
        return registry
    if isinstance(registry, (OpenAI, AsyncOpenAI)):
        return registry.registry
    raise TypeError(f"registry must be a modelservice.Registry or a client, not {type(registry).__name__}")


class _ClientOptions:
    """What the SDK's constructor takes. Nothing goes over a network here: `api_key`,
    `base_url` and the HTTP options are kept as attributes so code that passes them works."""

    def __init__(
        self,
        services: Union[Iterable[Mapping[str, Any]], Mapping[str, Any], None],
        registry: Union[_native.Registry, OpenAI, AsyncOpenAI, None],
        api_key: Optional[str],
        organization: Optional[str],
        project: Optional[str],
        base_url: Optional[str],
        timeout: Union[float, None, NotGiven],
        max_retries: int,
        default_headers: Optional[Mapping[str, str]],
        default_query: Optional[Mapping[str, object]],
    ) -> None:
        self.registry = _registry_of(registry)
        self.api_key = api_key
        self.organization = organization
        self.project = project
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.default_headers = dict(default_headers or {})
        self.default_query = dict(default_query or {})
        if isinstance(services, Mapping):
            services = [services]
        for spec in services or ():
            self.registry.call("services.deploy", _body(spec))


# ---------------------------------------------------------------- sync


class Completions(_Resource):
    """`client.chat.completions`."""

    @overload
    def create(self, **params: Unpack[_CreateNonStreaming]) -> ChatCompletion: ...
    @overload
    def create(self, **params: Unpack[_CreateStreaming]) -> Stream[ChatCompletionChunk]: ...
    @overload
    def create(self, **params: Unpack[_Create]) -> Union[ChatCompletion, Stream[ChatCompletionChunk]]: ...

    def create(self, **params: Any) -> Union[ChatCompletion, Stream[ChatCompletionChunk]]:
        """A chat completion; with `stream=True`, a :class:`Stream` of chunks."""
        if params.get("stream"):
            return Stream(self._registry.stream("chat.completions.create", _body(params)))
        return ChatCompletion.from_json(self._call("chat.completions.create", params))

    def parse(self, *, response_format: Any = None, **params: Any) -> ChatCompletion:
        """`create()` whose `response_format` may be a Pydantic model: each choice's
        `message.parsed` is the answer validated as that type, as the `openai` SDK gives it."""
        params["response_format"] = response_format_param(response_format)
        completion = ChatCompletion.from_json(self._call("chat.completions.create", params))
        return parse_completion(completion, response_format)


class TextCompletions(_Resource):
    """`client.completions`: legacy text completions (the prompt as given, no chat template)."""

    @overload
    def create(self, **params: Unpack[_TextCreateNonStreaming]) -> Completion: ...
    @overload
    def create(self, **params: Unpack[_TextCreateStreaming]) -> Stream[Completion]: ...
    @overload
    def create(self, **params: Unpack[_TextCreate]) -> Union[Completion, Stream[Completion]]: ...

    def create(self, **params: Any) -> Union[Completion, Stream[Completion]]:
        """A text completion; with `stream=True`, a :class:`Stream` of `Completion` chunks."""
        if params.get("stream"):
            return Stream(self._registry.stream("completions.create", _body(params)), Completion)
        return Completion.from_json(self._call("completions.create", params))


class Embeddings(_Resource):
    """`client.embeddings`: vectors from an embedding service (floats unless `encoding_format="base64"`)."""

    def create(self, **params: Unpack[_EmbeddingCreate]) -> CreateEmbeddingResponse:
        return CreateEmbeddingResponse.from_json(self._call("embeddings.create", params))


class Chat:
    """`client.chat`."""

    def __init__(self, registry: _native.Registry) -> None:
        self.completions = Completions(registry)


class Beta:
    """`client.beta`: where older `openai` SDKs kept `chat.completions.parse`."""

    def __init__(self, chat: Any) -> None:
        self.chat = chat


class Models(_Resource):
    """`client.models`: every running service, listed under its access name."""

    def list(self, **options: Unpack[RequestOptions]) -> ModelList:
        return ModelList.from_json(self._call("models.list", options))

    def retrieve(self, model: str, **options: Unpack[RequestOptions]) -> Model:
        return Model.from_json(self._call("models.retrieve", {"model": model, **options}))


class Services(_Resource):
    """`client.services`: deploy, list, retrieve, scale and delete model services; their metrics."""

    def deploy(self, spec: Optional[Mapping[str, Any]] = None, /, **fields: Any) -> Service:
        """Loads the model and starts the service: `deploy(name=..., access_name=..., model=path)`
        or `deploy({...})`. Raises `ModelLoadError` if the file cannot be loaded."""
        return Service.from_json(self._call("services.deploy", {**(spec or {}), **fields}))

    def list(self, **options: Unpack[RequestOptions]) -> ServiceList:
        return ServiceList.from_json(self._call("services.list", options))

    def retrieve(self, access_name: str, **options: Unpack[RequestOptions]) -> Service:
        return Service.from_json(self._call("services.retrieve", {"access_name": access_name, **options}))

    def scale(self, access_name: str, instances: int, **options: Unpack[RequestOptions]) -> Service:
        """Sets the number of instances; the weights are shared, never reloaded."""
        params = {"access_name": access_name, "instances": instances, **options}
        return Service.from_json(self._call("services.scale", params))

    def delete(self, access_name: str, *, confirm: str, **options: Unpack[RequestOptions]) -> Service:
        """Deletes the service once its in-flight requests finish; `confirm` must be its name."""
        params = {"access_name": access_name, "confirm": confirm, **options}
        return Service.from_json(self._call("services.delete", params))

    def metrics(self, access_name: Optional[str] = None, **options: Unpack[RequestOptions]) -> ServiceMetricsList:
        """Each service's requests by status, tokens, queue, and time-to-first-token and latency
        histograms (the figures the HTTP server's `/metrics` shows); one service's with `access_name`."""
        params = {"access_name": access_name, **options}
        return ServiceMetricsList.from_json(self._call("services.metrics", params))


class OpenAI(_ClientOptions):
    """A drop-in for `openai.OpenAI` that runs the models in this process.

    `services` are deployed at construction; `registry` shares the services of another
    client (or a :class:`Registry`) instead of starting an empty set."""

    def __init__(
        self,
        *,
        services: Union[Iterable[Mapping[str, Any]], Mapping[str, Any], None] = None,
        registry: Union[_native.Registry, OpenAI, AsyncOpenAI, None] = None,
        api_key: Optional[str] = None,
        organization: Optional[str] = None,
        project: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Union[float, None, NotGiven] = NOT_GIVEN,
        max_retries: int = 2,
        default_headers: Optional[Mapping[str, str]] = None,
        default_query: Optional[Mapping[str, object]] = None,
        http_client: Optional[object] = None,
    ) -> None:
        super().__init__(
            services, registry, api_key, organization, project, base_url, timeout, max_retries,
            default_headers, default_query,
        )  # fmt: skip
        self.chat = Chat(self.registry)
        self.beta = Beta(self.chat)
        self.completions = TextCompletions(self.registry)
        self.embeddings = Embeddings(self.registry)
        self.models = Models(self.registry)
        self.services = Services(self.registry)

    def close(self) -> None:
        """Kept for the SDK's API; the services live as long as their registry."""

    def __enter__(self) -> OpenAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- async


class AsyncCompletions(_AsyncResource):
    """`client.chat.completions` of :class:`AsyncOpenAI`."""

    @overload
    async def create(self, **params: Unpack[_CreateNonStreaming]) -> ChatCompletion: ...
    @overload
    async def create(self, **params: Unpack[_CreateStreaming]) -> AsyncStream[ChatCompletionChunk]: ...
    @overload
    async def create(self, **params: Unpack[_Create]) -> Union[ChatCompletion, AsyncStream[ChatCompletionChunk]]: ...

    async def create(self, **params: Any) -> Union[ChatCompletion, AsyncStream[ChatCompletionChunk]]:
        """A chat completion; with `stream=True`, an :class:`AsyncStream` of chunks. The engine
        works on other threads; cancelling the awaiting task stops the generation."""
        if params.get("stream"):
            return AsyncStream(await _off_loop(self._registry.stream, "chat.completions.create", _body(params)))
        return ChatCompletion.from_json(await self._call("chat.completions.create", params))

    async def parse(self, *, response_format: Any = None, **params: Any) -> ChatCompletion:
        """`create()` whose `response_format` may be a Pydantic model (see the sync `parse`)."""
        params["response_format"] = response_format_param(response_format)
        completion = ChatCompletion.from_json(await self._call("chat.completions.create", params))
        return parse_completion(completion, response_format)


class AsyncTextCompletions(_AsyncResource):
    """`client.completions` of :class:`AsyncOpenAI`."""

    @overload
    async def create(self, **params: Unpack[_TextCreateNonStreaming]) -> Completion: ...
    @overload
    async def create(self, **params: Unpack[_TextCreateStreaming]) -> AsyncStream[Completion]: ...
    @overload
    async def create(self, **params: Unpack[_TextCreate]) -> Union[Completion, AsyncStream[Completion]]: ...

    async def create(self, **params: Any) -> Union[Completion, AsyncStream[Completion]]:
        """A text completion; with `stream=True`, an :class:`AsyncStream` of `Completion` chunks."""
        if params.get("stream"):
            native = await _off_loop(self._registry.stream, "completions.create", _body(params))
            return AsyncStream(native, Completion)
        return Completion.from_json(await self._call("completions.create", params))


class AsyncEmbeddings(_AsyncResource):
    """`client.embeddings` of :class:`AsyncOpenAI`."""

    async def create(self, **params: Unpack[_EmbeddingCreate]) -> CreateEmbeddingResponse:
        return CreateEmbeddingResponse.from_json(await self._call("embeddings.create", params))


class AsyncChat:
    """`client.chat` of :class:`AsyncOpenAI`."""

    def __init__(self, registry: _native.Registry) -> None:
        self.completions = AsyncCompletions(registry)


class AsyncModels(_AsyncResource):
    """`client.models` of :class:`AsyncOpenAI`."""

    async def list(self, **options: Unpack[RequestOptions]) -> ModelList:
        return ModelList.from_json(await self._call("models.list", options))

    async def retrieve(self, model: str, **options: Unpack[RequestOptions]) -> Model:
        return Model.from_json(await self._call("models.retrieve", {"model": model, **options}))


class AsyncServices(_AsyncResource):
    """`client.services` of :class:`AsyncOpenAI`; loading and draining never block the loop."""

    async def deploy(self, spec: Optional[Mapping[str, Any]] = None, /, **fields: Any) -> Service:
        return Service.from_json(await self._call("services.deploy", {**(spec or {}), **fields}))

    async def list(self, **options: Unpack[RequestOptions]) -> ServiceList:
        return ServiceList.from_json(await self._call("services.list", options))

    async def retrieve(self, access_name: str, **options: Unpack[RequestOptions]) -> Service:
        return Service.from_json(await self._call("services.retrieve", {"access_name": access_name, **options}))

    async def scale(self, access_name: str, instances: int, **options: Unpack[RequestOptions]) -> Service:
        params = {"access_name": access_name, "instances": instances, **options}
        return Service.from_json(await self._call("services.scale", params))

    async def delete(self, access_name: str, *, confirm: str, **options: Unpack[RequestOptions]) -> Service:
        params = {"access_name": access_name, "confirm": confirm, **options}
        return Service.from_json(await self._call("services.delete", params))

    async def metrics(self, access_name: Optional[str] = None, **options: Unpack[RequestOptions]) -> ServiceMetricsList:
        params = {"access_name": access_name, **options}
        return ServiceMetricsList.from_json(await self._call("services.metrics", params))


class AsyncOpenAI(_ClientOptions):
    """A drop-in for `openai.AsyncOpenAI` that runs the models in this process. Construction
    deploys `services` before it returns (use `await client.services.deploy(...)` to load
    without blocking a running event loop)."""

    def __init__(
        self,
        *,
        services: Union[Iterable[Mapping[str, Any]], Mapping[str, Any], None] = None,
        registry: Union[_native.Registry, OpenAI, AsyncOpenAI, None] = None,
        api_key: Optional[str] = None,
        organization: Optional[str] = None,
        project: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Union[float, None, NotGiven] = NOT_GIVEN,
        max_retries: int = 2,
        default_headers: Optional[Mapping[str, str]] = None,
        default_query: Optional[Mapping[str, object]] = None,
        http_client: Optional[object] = None,
    ) -> None:
        super().__init__(
            services, registry, api_key, organization, project, base_url, timeout, max_retries,
            default_headers, default_query,
        )  # fmt: skip
        self.chat = AsyncChat(self.registry)
        self.beta = Beta(self.chat)
        self.completions = AsyncTextCompletions(self.registry)
        self.embeddings = AsyncEmbeddings(self.registry)
        self.models = AsyncModels(self.registry)
        self.services = AsyncServices(self.registry)

    async def close(self) -> None:
        """Kept for the SDK's API; the services live as long as their registry."""

    async def __aenter__(self) -> AsyncOpenAI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
