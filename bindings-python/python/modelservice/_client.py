"""`OpenAI` and `AsyncOpenAI`: the `openai` SDK's client surface, served in-process by the
engine. Requests are sent to the engine as JSON and parsed there by the core's own request
type, so its validation and error naming (`param`) apply unchanged."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable, Literal, Optional, TypeVar, Union, overload

from . import _native
from ._executor import POLL_SECONDS, executor
from ._streaming import AsyncStream, Stream
from .types import ChatCompletion, Model, ModelList, Service

__all__ = ["OpenAI", "AsyncOpenAI", "NotGiven", "NOT_GIVEN"]

_R = TypeVar("_R")


class NotGiven:
    """The default of an optional parameter that was not passed (the SDK's `NOT_GIVEN`)."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()

# The request fields the engine knows, read from the core's request type.
REQUEST_FIELDS = frozenset(_native.request_fields())
# The service spec fields, read from the core's spec type.
SPEC_FIELDS = frozenset(_native.service_spec_fields())
# Parameters of the `openai` SDK's `create()` that the engine accepts and ignores, so code
# written for the SDK keeps working (tools, response formats, storage, ...).
SDK_ONLY_PARAMS = frozenset(
    {
        "audio", "function_call", "functions", "logprobs", "metadata", "modalities", "moderation",
        "parallel_tool_calls", "prediction", "prompt_cache_key", "prompt_cache_options",
        "prompt_cache_retention", "reasoning_effort", "response_format", "safety_identifier",
        "service_tier", "store", "tool_choice", "tools", "top_logprobs", "verbosity",
        "web_search_options",
    }
)  # fmt: skip


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


def _dumps(body: Mapping[str, Any]) -> str:
    try:
        return json.dumps(body, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as e:
        for key, value in body.items():
            try:
                json.dumps(value, default=_json_default, allow_nan=False)
            except (TypeError, ValueError):
                raise _native.invalid_request_error(f"Invalid value for `{key}`: {e}", key) from None
        raise _native.invalid_request_error(f"Invalid request: {e}") from None


def _request_body(named: Mapping[str, Any], sdk_params: Mapping[str, Any]) -> str:
    for key in sdk_params:
        if key not in SDK_ONLY_PARAMS:
            raise TypeError(f"create() got an unexpected keyword argument '{key}'")
    body = {k: v for k, v in named.items() if k in REQUEST_FIELDS and not _omitted(v)}
    body.update((k, v) for k, v in sdk_params.items() if not _omitted(v))
    if body.get("stream") is False:
        del body["stream"]
    extra = named.get("extra_body")
    if extra:
        body.update(extra)
    return _dumps(body)


def _spec_body(spec: Optional[Mapping[str, Any]], fields: Mapping[str, Any]) -> str:
    merged = {**(spec or {}), **fields}
    for key in merged:
        if key not in SPEC_FIELDS:
            raise _native.invalid_request_error(
                f"Unknown service field `{key}`; the fields are: {', '.join(sorted(SPEC_FIELDS))}.", key
            )
    return _dumps(merged)


async def _off_loop(fn: Callable[..., _R], *args: Any) -> _R:
    return await asyncio.get_running_loop().run_in_executor(executor(), fn, *args)


def _registry_of(registry: Union[_native.Registry, OpenAI, AsyncOpenAI, None]) -> _native.Registry:
    if registry is None:
        return _native.Registry()
    if isinstance(registry, _native.Registry):
        return registry
    if isinstance(registry, (OpenAI, AsyncOpenAI)):
        return registry.registry
    raise TypeError(f"registry must be a modelservice.Registry or a client, not {type(registry).__name__}")


def _deploy_all(
    registry: _native.Registry, services: Union[Iterable[Mapping[str, Any]], Mapping[str, Any], None]
) -> None:
    if services is None:
        return
    if isinstance(services, Mapping):
        services = [services]
    for spec in services:
        registry.deploy(_spec_body(spec, {}))


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
        _deploy_all(self.registry, services)


# ---------------------------------------------------------------- sync


class Completions:
    """`client.chat.completions`."""

    def __init__(self, registry: _native.Registry) -> None:
        self._registry = registry

    @overload
    def create(
        self,
        *,
        messages: Iterable[Any],
        model: str,
        frequency_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        logit_bias: Union[Optional[Mapping[str, float]], NotGiven] = NOT_GIVEN,
        max_completion_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        max_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        min_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        n: Union[Optional[int], NotGiven] = NOT_GIVEN,
        presence_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        repeat_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        seed: Union[Optional[int], NotGiven] = NOT_GIVEN,
        stop: Union[Union[str, Sequence[str], None], NotGiven] = NOT_GIVEN,
        stream: Literal[False] = False,
        stream_options: Union[Optional[Mapping[str, Any]], NotGiven] = NOT_GIVEN,
        temperature: Union[Optional[float], NotGiven] = NOT_GIVEN,
        top_k: Union[Optional[int], NotGiven] = NOT_GIVEN,
        top_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        user: Union[str, NotGiven] = NOT_GIVEN,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, object]] = None,
        extra_body: Optional[Mapping[str, object]] = None,
        timeout: Union[float, None, NotGiven] = NOT_GIVEN,
        **sdk_params: Any,
    ) -> ChatCompletion: ...

    @overload
    def create(
        self,
        *,
        messages: Iterable[Any],
        model: str,
        frequency_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        logit_bias: Union[Optional[Mapping[str, float]], NotGiven] = NOT_GIVEN,
        max_completion_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        max_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        min_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        n: Union[Optional[int], NotGiven] = NOT_GIVEN,
        presence_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        repeat_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        seed: Union[Optional[int], NotGiven] = NOT_GIVEN,
        stop: Union[Union[str, Sequence[str], None], NotGiven] = NOT_GIVEN,
        stream: Literal[True],
        stream_options: Union[Optional[Mapping[str, Any]], NotGiven] = NOT_GIVEN,
        temperature: Union[Optional[float], NotGiven] = NOT_GIVEN,
        top_k: Union[Optional[int], NotGiven] = NOT_GIVEN,
        top_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        user: Union[str, NotGiven] = NOT_GIVEN,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, object]] = None,
        extra_body: Optional[Mapping[str, object]] = None,
        timeout: Union[float, None, NotGiven] = NOT_GIVEN,
        **sdk_params: Any,
    ) -> Stream: ...

    @overload
    def create(
        self,
        *,
        messages: Iterable[Any],
        model: str,
        frequency_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        logit_bias: Union[Optional[Mapping[str, float]], NotGiven] = NOT_GIVEN,
        max_completion_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        max_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        min_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        n: Union[Optional[int], NotGiven] = NOT_GIVEN,
        presence_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        repeat_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        seed: Union[Optional[int], NotGiven] = NOT_GIVEN,
        stop: Union[Union[str, Sequence[str], None], NotGiven] = NOT_GIVEN,
        stream: bool,
        stream_options: Union[Optional[Mapping[str, Any]], NotGiven] = NOT_GIVEN,
        temperature: Union[Optional[float], NotGiven] = NOT_GIVEN,
        top_k: Union[Optional[int], NotGiven] = NOT_GIVEN,
        top_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        user: Union[str, NotGiven] = NOT_GIVEN,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, object]] = None,
        extra_body: Optional[Mapping[str, object]] = None,
        timeout: Union[float, None, NotGiven] = NOT_GIVEN,
        **sdk_params: Any,
    ) -> Union[ChatCompletion, Stream]: ...

    def create(
        self,
        *,
        messages: Iterable[Any],
        model: str,
        frequency_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        logit_bias: Union[Optional[Mapping[str, float]], NotGiven] = NOT_GIVEN,
        max_completion_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        max_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        min_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        n: Union[Optional[int], NotGiven] = NOT_GIVEN,
        presence_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        repeat_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        seed: Union[Optional[int], NotGiven] = NOT_GIVEN,
        stop: Union[Union[str, Sequence[str], None], NotGiven] = NOT_GIVEN,
        stream: bool = False,
        stream_options: Union[Optional[Mapping[str, Any]], NotGiven] = NOT_GIVEN,
        temperature: Union[Optional[float], NotGiven] = NOT_GIVEN,
        top_k: Union[Optional[int], NotGiven] = NOT_GIVEN,
        top_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        user: Union[str, NotGiven] = NOT_GIVEN,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, object]] = None,
        extra_body: Optional[Mapping[str, object]] = None,
        timeout: Union[float, None, NotGiven] = NOT_GIVEN,
        **sdk_params: Any,
    ) -> Union[ChatCompletion, Stream]:
        """A chat completion; with `stream=True`, a :class:`Stream` of chunks."""
        body = _request_body(locals(), sdk_params)
        if stream:
            return Stream(self._registry.chat_stream(body))
        return ChatCompletion.from_json(self._registry.chat(body))


class Chat:
    """`client.chat`."""

    def __init__(self, registry: _native.Registry) -> None:
        self.completions = Completions(registry)


class Models:
    """`client.models`: every running service, listed under its access name."""

    def __init__(self, registry: _native.Registry) -> None:
        self._registry = registry

    def list(self) -> ModelList:
        return ModelList.from_json(self._registry.models())

    def retrieve(self, model: str) -> Model:
        return Model.from_json(self._registry.model(model))


class Services:
    """`client.services`: deploy, list, retrieve, scale and delete model services."""

    def __init__(self, registry: _native.Registry) -> None:
        self._registry = registry

    def deploy(self, spec: Optional[Mapping[str, Any]] = None, /, **fields: Any) -> Service:
        """Loads the model and starts the service: `deploy(name=..., access_name=..., model=path)`
        or `deploy({...})`. Raises `ModelLoadError` if the file cannot be loaded."""
        return Service.from_json(self._registry.deploy(_spec_body(spec, fields)))

    def list(self) -> list[Service]:
        return [Service(s) for s in json.loads(self._registry.list())]

    def retrieve(self, access_name: str) -> Service:
        return Service.from_json(self._registry.retrieve(access_name))

    def scale(self, access_name: str, instances: int) -> Service:
        """Sets the number of instances; the weights are shared, never reloaded."""
        return Service.from_json(self._registry.scale(access_name, instances))

    def delete(self, access_name: str, *, confirm: str) -> Service:
        """Deletes the service once its in-flight requests finish; `confirm` must be its name."""
        return Service.from_json(self._registry.delete(access_name, confirm))


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
        self.models = Models(self.registry)
        self.services = Services(self.registry)

    def close(self) -> None:
        """Kept for the SDK's API; the services live as long as their registry."""

    def __enter__(self) -> OpenAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- async


class AsyncCompletions:
    """`client.chat.completions` of :class:`AsyncOpenAI`."""

    def __init__(self, registry: _native.Registry) -> None:
        self._registry = registry

    @overload
    async def create(
        self,
        *,
        messages: Iterable[Any],
        model: str,
        frequency_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        logit_bias: Union[Optional[Mapping[str, float]], NotGiven] = NOT_GIVEN,
        max_completion_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        max_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        min_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        n: Union[Optional[int], NotGiven] = NOT_GIVEN,
        presence_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        repeat_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        seed: Union[Optional[int], NotGiven] = NOT_GIVEN,
        stop: Union[Union[str, Sequence[str], None], NotGiven] = NOT_GIVEN,
        stream: Literal[False] = False,
        stream_options: Union[Optional[Mapping[str, Any]], NotGiven] = NOT_GIVEN,
        temperature: Union[Optional[float], NotGiven] = NOT_GIVEN,
        top_k: Union[Optional[int], NotGiven] = NOT_GIVEN,
        top_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        user: Union[str, NotGiven] = NOT_GIVEN,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, object]] = None,
        extra_body: Optional[Mapping[str, object]] = None,
        timeout: Union[float, None, NotGiven] = NOT_GIVEN,
        **sdk_params: Any,
    ) -> ChatCompletion: ...

    @overload
    async def create(
        self,
        *,
        messages: Iterable[Any],
        model: str,
        frequency_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        logit_bias: Union[Optional[Mapping[str, float]], NotGiven] = NOT_GIVEN,
        max_completion_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        max_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        min_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        n: Union[Optional[int], NotGiven] = NOT_GIVEN,
        presence_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        repeat_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        seed: Union[Optional[int], NotGiven] = NOT_GIVEN,
        stop: Union[Union[str, Sequence[str], None], NotGiven] = NOT_GIVEN,
        stream: Literal[True],
        stream_options: Union[Optional[Mapping[str, Any]], NotGiven] = NOT_GIVEN,
        temperature: Union[Optional[float], NotGiven] = NOT_GIVEN,
        top_k: Union[Optional[int], NotGiven] = NOT_GIVEN,
        top_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        user: Union[str, NotGiven] = NOT_GIVEN,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, object]] = None,
        extra_body: Optional[Mapping[str, object]] = None,
        timeout: Union[float, None, NotGiven] = NOT_GIVEN,
        **sdk_params: Any,
    ) -> AsyncStream: ...

    @overload
    async def create(
        self,
        *,
        messages: Iterable[Any],
        model: str,
        frequency_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        logit_bias: Union[Optional[Mapping[str, float]], NotGiven] = NOT_GIVEN,
        max_completion_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        max_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        min_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        n: Union[Optional[int], NotGiven] = NOT_GIVEN,
        presence_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        repeat_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        seed: Union[Optional[int], NotGiven] = NOT_GIVEN,
        stop: Union[Union[str, Sequence[str], None], NotGiven] = NOT_GIVEN,
        stream: bool,
        stream_options: Union[Optional[Mapping[str, Any]], NotGiven] = NOT_GIVEN,
        temperature: Union[Optional[float], NotGiven] = NOT_GIVEN,
        top_k: Union[Optional[int], NotGiven] = NOT_GIVEN,
        top_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        user: Union[str, NotGiven] = NOT_GIVEN,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, object]] = None,
        extra_body: Optional[Mapping[str, object]] = None,
        timeout: Union[float, None, NotGiven] = NOT_GIVEN,
        **sdk_params: Any,
    ) -> Union[ChatCompletion, AsyncStream]: ...

    async def create(
        self,
        *,
        messages: Iterable[Any],
        model: str,
        frequency_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        logit_bias: Union[Optional[Mapping[str, float]], NotGiven] = NOT_GIVEN,
        max_completion_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        max_tokens: Union[Optional[int], NotGiven] = NOT_GIVEN,
        min_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        n: Union[Optional[int], NotGiven] = NOT_GIVEN,
        presence_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        repeat_penalty: Union[Optional[float], NotGiven] = NOT_GIVEN,
        seed: Union[Optional[int], NotGiven] = NOT_GIVEN,
        stop: Union[Union[str, Sequence[str], None], NotGiven] = NOT_GIVEN,
        stream: bool = False,
        stream_options: Union[Optional[Mapping[str, Any]], NotGiven] = NOT_GIVEN,
        temperature: Union[Optional[float], NotGiven] = NOT_GIVEN,
        top_k: Union[Optional[int], NotGiven] = NOT_GIVEN,
        top_p: Union[Optional[float], NotGiven] = NOT_GIVEN,
        user: Union[str, NotGiven] = NOT_GIVEN,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, object]] = None,
        extra_body: Optional[Mapping[str, object]] = None,
        timeout: Union[float, None, NotGiven] = NOT_GIVEN,
        **sdk_params: Any,
    ) -> Union[ChatCompletion, AsyncStream]:
        """A chat completion; with `stream=True`, an :class:`AsyncStream` of chunks. The engine
        works on other threads; cancelling the awaiting task stops the generation."""
        body = _request_body(locals(), sdk_params)
        if stream:
            return AsyncStream(await _off_loop(self._registry.chat_stream, body))
        pending = await _off_loop(self._registry.start_chat, body)
        try:
            while True:
                data = await _off_loop(pending.wait, POLL_SECONDS)
                if data is not None:
                    return ChatCompletion.from_json(data)
        except asyncio.CancelledError:
            pending.cancel()
            raise


class AsyncChat:
    """`client.chat` of :class:`AsyncOpenAI`."""

    def __init__(self, registry: _native.Registry) -> None:
        self.completions = AsyncCompletions(registry)


class AsyncModels:
    """`client.models` of :class:`AsyncOpenAI`."""

    def __init__(self, registry: _native.Registry) -> None:
        self._registry = registry

    async def list(self) -> ModelList:
        return ModelList.from_json(self._registry.models())

    async def retrieve(self, model: str) -> Model:
        return Model.from_json(self._registry.model(model))


class AsyncServices:
    """`client.services` of :class:`AsyncOpenAI`; loading and draining run off the event loop."""

    def __init__(self, registry: _native.Registry) -> None:
        self._registry = registry

    async def deploy(self, spec: Optional[Mapping[str, Any]] = None, /, **fields: Any) -> Service:
        return Service.from_json(await _off_loop(self._registry.deploy, _spec_body(spec, fields)))

    async def list(self) -> list[Service]:
        return [Service(s) for s in json.loads(self._registry.list())]

    async def retrieve(self, access_name: str) -> Service:
        return Service.from_json(self._registry.retrieve(access_name))

    async def scale(self, access_name: str, instances: int) -> Service:
        return Service.from_json(await _off_loop(self._registry.scale, access_name, instances))

    async def delete(self, access_name: str, *, confirm: str) -> Service:
        return Service.from_json(await _off_loop(self._registry.delete, access_name, confirm))


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
        self.models = AsyncModels(self.registry)
        self.services = AsyncServices(self.registry)

    async def close(self) -> None:
        """Kept for the SDK's API; the services live as long as their registry."""

    async def __aenter__(self) -> AsyncOpenAI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
