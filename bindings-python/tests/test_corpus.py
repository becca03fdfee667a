"""The one corpus of bad requests (tests/corpus/bad_requests.json, proved in the core) through the
SDK surface: each case raises the SDK's exception class with the envelope's fields. And parity:
every operation of the engine is a method of both clients, at its resource path, and runs."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import EMBEDDER, ROOT, user
from modelservice import (
    APIStatusError,
    AsyncOpenAI,
    BadRequestError,
    ChatCompletion,
    Completion,
    ConflictError,
    CreateEmbeddingResponse,
    Model,
    ModelList,
    ModelLoadError,
    NotFoundError,
    OpenAI,
    Service,
    ServiceList,
    ServiceMetricsList,
    _native,
)

CORPUS = json.loads((ROOT / "tests" / "corpus" / "bad_requests.json").read_text())
CASES = CORPUS["cases"]
CLASSES = {400: BadRequestError, 404: NotFoundError, 409: ConflictError}


def method_of(client: OpenAI | AsyncOpenAI, op: str) -> Any:
    """The client's method for an operation: its name is the method's attribute path."""
    target: Any = client
    for part in op.split("."):
        target = getattr(target, part)
    return target


def call_as_sdk(method: Any, body: dict[str, Any]) -> Any:
    """Calls an SDK method with a request body: a method that takes the body whole (`deploy(spec)`)
    gets it as it is, the others get its fields as keyword arguments."""
    takes_body = any(p.kind is p.POSITIONAL_ONLY for p in inspect.signature(method).parameters.values())
    return method(body) if takes_body else method(**body)


@pytest.fixture(scope="module")
def corpus_spec(client: OpenAI, model_path: str) -> Iterator[dict[str, Any]]:
    spec = {**CORPUS["service"], "model": model_path}
    client.services.deploy(spec)
    yield spec
    client.services.delete(spec["access_name"], confirm=spec["name"])


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_request(client: OpenAI, corpus_spec: dict[str, Any], case: dict[str, Any], mode: str) -> None:
    aclient = AsyncOpenAI(registry=client)
    with pytest.raises(APIStatusError) as e:
        if "body_text" in case:
            # Not JSON: only the native entry can be sent it; the SDK's methods always send JSON.
            client.registry.call(case["op"], case["body_text"])
        else:
            body = corpus_spec if case["body"] == "$service" else case["body"]
            if mode == "sync":
                call_as_sdk(method_of(client, case["op"]), body)
            else:
                asyncio.run(call_as_sdk(method_of(aclient, case["op"]), body))
    err = e.value
    expected = ModelLoadError if case["code"] == "model_load_failed" else CLASSES[case["status"]]
    assert type(err) is expected, (type(err).__name__, err.message)
    got = {"status": err.status_code, "type": err.type, "code": err.code, "param": err.param}
    assert got == {k: case[k] for k in got}
    assert err.body == {"message": err.message, "type": err.type, "param": err.param, "code": err.code}


def parity_calls(spec: dict[str, Any]) -> dict[str, tuple[tuple[Any, ...], dict[str, Any], type]]:
    """One call per operation, in an order that works, with the class of its answer."""
    access = spec["access_name"]
    return {
        "services.deploy": ((spec,), {}, Service),
        "services.list": ((), {}, ServiceList),
        "services.retrieve": ((access,), {}, Service),
        "services.scale": ((access, 2), {}, Service),
        "models.list": ((), {}, ModelList),
        "models.retrieve": ((access,), {}, Model),
        "chat.completions.create": ((), {"model": access, "messages": user("hi"), "max_tokens": 2}, ChatCompletion),
        "completions.create": ((), {"model": access, "prompt": ["a", "b"], "max_tokens": 2}, Completion),
        "embeddings.create": ((), {"model": EMBEDDER, "input": ["a", "b"]}, CreateEmbeddingResponse),
        "services.metrics": ((access,), {}, ServiceMetricsList),
        "services.delete": ((access,), {"confirm": spec["name"]}, Service),
    }


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_operation_is_a_method_of_the_client(client: OpenAI, model_path: str, embedder: str, mode: str) -> None:
    spec = {"name": f"parity-{mode}", "access_name": f"parity/{mode}", "model": model_path}
    spec.update(context_length=256, slots=1, threads=1)
    calls = parity_calls(spec)
    assert set(_native.operations()) == set(calls), "an operation of the engine has no call here"
    target = OpenAI(registry=client) if mode == "sync" else AsyncOpenAI(registry=client)
    for op in _native.operations():
        assert callable(method_of(target, op)), op
    for op, (args, kwargs, answer) in calls.items():
        result = method_of(target, op)(*args, **kwargs)
        if mode == "async":
            assert inspect.iscoroutine(result), op
            result = asyncio.run(result)
        assert isinstance(result, answer), (op, result)
        if answer is Service:
            assert result.access_name == spec["access_name"], op
    with pytest.raises(NotFoundError):
        client.services.retrieve(spec["access_name"])
