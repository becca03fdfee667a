"""Each error class for its case, with the OpenAI envelope's fields, and the client keeps working."""

from __future__ import annotations

from pathlib import Path

import modelservice
import pytest
from conftest import ACCESS, user
from modelservice import (
    APIError,
    APIStatusError,
    BadRequestError,
    ConflictError,
    ModelLoadError,
    NotFoundError,
    OpenAI,
    RateLimitError,
)


@pytest.fixture(autouse=True)
def still_works(client: OpenAI):  # type: ignore[no-untyped-def]
    yield
    r = client.chat.completions.create(model=ACCESS, messages=user("hi"), max_tokens=4)
    assert r.choices[0].message.content is not None


def test_unknown_model(client: OpenAI) -> None:
    with pytest.raises(NotFoundError) as e:
        client.chat.completions.create(model="u-0/none", messages=user("hi"))
    err = e.value
    assert isinstance(err, APIStatusError) and isinstance(err, APIError)
    assert isinstance(err, modelservice.OpenAIError)
    assert err.status_code == 404
    assert err.code == "model_not_found" and err.param == "model" and err.type == "invalid_request_error"
    assert "u-0/none" in err.message and str(err) == err.message
    assert err.body == {
        "message": err.message,
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    with pytest.raises(NotFoundError):
        client.models.retrieve("u-0/none")


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"temperature": 5}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": float("nan")}, "top_p"),
        ({"n": 0}, "n"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"messages": []}, "messages"),
        ({"stop": object()}, "stop"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
    ],
)
def test_bad_parameter(client: OpenAI, params: dict[str, object], param: str) -> None:
    request = {"model": ACCESS, "messages": user("hi"), **params}
    with pytest.raises(BadRequestError) as e:
        client.chat.completions.create(**request)  # type: ignore[call-overload]
    assert e.value.status_code == 400
    assert e.value.param == param
    assert e.value.code == "invalid_value"


def test_context_overflow(client: OpenAI) -> None:
    with pytest.raises(BadRequestError) as e:
        client.chat.completions.create(model=ACCESS, messages=user("hello " * 1500), max_tokens=8)
    assert e.value.code == "context_length_exceeded"
    assert "1024" in e.value.message


def test_failed_load(client: OpenAI, tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"this is not a gguf file" * 100)
    before = [s.access_name for s in client.services.list()]
    for path in (junk, tmp_path / "missing.gguf"):
        with pytest.raises(ModelLoadError) as e:
            client.services.deploy(name="bad", access_name="u/bad", model=path)
        assert isinstance(e.value, BadRequestError)
        assert e.value.code == "model_load_failed" and e.value.status_code == 400
        assert str(path) in e.value.message
    assert [s.access_name for s in client.services.list()] == before
    with pytest.raises(ModelLoadError):
        OpenAI(services=[{"name": "bad", "access_name": "u/bad", "model": str(junk)}])


def test_conflict(client: OpenAI, model_path: str) -> None:
    with pytest.raises(ConflictError) as e:
        client.services.deploy(name="again", access_name=ACCESS, model=model_path, threads=1)
    assert e.value.status_code == 409 and e.value.param == "access_name"


def test_bad_service_fields(client: OpenAI, model_path: str) -> None:
    with pytest.raises(BadRequestError) as e:
        client.services.deploy(name="x", access_name="u/x", model=model_path, instances=0)
    assert e.value.param == "instances"
    with pytest.raises(BadRequestError) as e:
        client.services.deploy(name="x", access_name="u/x", model=model_path, slotz=2)
    assert e.value.param == "slotz"


def test_full_queue(client: OpenAI, model_path: str) -> None:
    client.services.deploy(
        name="tiny", access_name="u/tiny", model=model_path, slots=1, queue_size=1, context_length=256, threads=1
    )
    try:
        long = {"model": "u/tiny", "messages": user("Write a long essay."), "max_tokens": 200, "stream": True}
        running = client.chat.completions.create(**long)
        next(running)
        next(running)  # admitted: it holds the only slot
        waiting = client.chat.completions.create(**long)  # fills the queue
        with pytest.raises(RateLimitError) as e:
            client.chat.completions.create(**long)
        assert e.value.status_code == 429 and e.value.code == "queue_full"
        running.close()
        waiting.close()
    finally:
        client.services.delete("u/tiny", confirm="tiny")
