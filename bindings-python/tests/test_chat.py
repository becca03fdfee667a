"""Chat completions through the sync client on the real model: shape, dumps, streams, usage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ACCESS, assert_generation_stopped, decode_steps, endless, user
from modelservice import NOT_GIVEN, BadRequestError, ChatCompletion, ChatCompletionChunk, OpenAI, Stream

HERE = Path(__file__).resolve().parent


def test_product_page_example_prints_an_answer(model_path: str) -> None:
    out = subprocess.run(
        [sys.executable, str(HERE.parent / "examples" / "product_page.py")],
        env={**os.environ, "MODELSERVICE_MODEL": model_path},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip(), "the example printed an empty answer"


def test_attributes_like_the_sdk(client: OpenAI) -> None:
    r = client.chat.completions.create(model=ACCESS, messages=user("Say this is a test!"), max_tokens=24)
    assert isinstance(r, ChatCompletion)
    assert r.id.startswith("chatcmpl-")
    assert r.object == "chat.completion"
    assert r.model == ACCESS
    assert isinstance(r.created, int)
    assert len(r.choices) == 1
    choice = r.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    # Optional fields of the SDK's models read as None.
    assert choice.message.tool_calls is None and choice.message.refusal is None
    assert r.system_fingerprint is None
    usage = r.usage
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert 0 < usage.completion_tokens <= 24
    request = json.dumps({"model": ACCESS, "messages": user("Say this is a test!")})
    assert usage.prompt_tokens == client.registry.count_prompt_tokens(request)


def test_dumps_round_trip(client: OpenAI) -> None:
    r = client.chat.completions.create(model=ACCESS, messages=user("hi"), max_tokens=8)
    d = r.model_dump()
    assert d["choices"][0]["message"]["content"] == r.choices[0].message.content
    assert d["usage"]["total_tokens"] == r.usage.total_tokens  # type: ignore[union-attr]
    assert json.loads(r.model_dump_json()) == d
    assert r.to_dict() == d
    assert json.loads(r.to_json()) == d
    assert r.to_json().startswith("{\n  ")
    assert ChatCompletion(d) == r
    # Changes made to the objects show in their dumps, as with pydantic.
    r.choices[0].message.content = "edited"
    assert r.model_dump()["choices"][0]["message"]["content"] == "edited"


def test_max_tokens_and_usage(client: OpenAI) -> None:
    r = client.chat.completions.create(
        model=ACCESS, **{**endless(client, ACCESS), "max_tokens": 5}, messages=user("Tell me a story.")
    )
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 5


def test_stream_matches_whole_answer(client: OpenAI) -> None:
    params = {
        "model": ACCESS,
        "messages": user("What is the capital of France?"),
        "max_tokens": 32,
        "temperature": 0,
    }
    whole = client.chat.completions.create(**params)
    stream = client.chat.completions.create(**params, stream=True, stream_options={"include_usage": True})
    assert isinstance(stream, Stream)
    chunks = list(stream)
    assert all(isinstance(c, ChatCompletionChunk) and c.id == stream.id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    # With include_usage, a last chunk with no choices carries the counts.
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    usage, counts = chunks[-1].usage, ("prompt_tokens", "completion_tokens", "total_tokens")
    assert [getattr(usage, k) for k in counts] == [getattr(whole.usage, k) for k in counts]
    # The stream repeats the whole request: its slot kept the prompt's logits, so all of the
    # prompt came from the cache.
    assert usage.prompt_tokens_details.cached_tokens == usage.prompt_tokens  # type: ignore[union-attr]
    assert all(c.usage is None for c in chunks[:-1])


def test_breaking_out_of_a_stream_stops_generation(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model=ACCESS, messages=user("Write a long essay."), stream=True, **endless(client, ACCESS)
    )
    for i, _chunk in enumerate(stream):
        if i == 3:
            break
    # `stream` is still referenced: leaving the loop itself stopped the engine.
    assert_generation_stopped(client, ACCESS)
    assert list(stream) == []


def test_closing_a_stream_stops_generation(client: OpenAI) -> None:
    before = decode_steps(client, ACCESS)
    # Not the previous test's prompt: an exact repeat draws its first token without a step.
    with client.chat.completions.create(
        model=ACCESS, messages=user("Write a long essay about the sea."), stream=True, **endless(client, ACCESS)
    ) as stream:
        first = next(stream)
        second = next(stream)
        assert first.choices[0].delta.role == "assistant" and second.choices[0].delta.content
    assert decode_steps(client, ACCESS) > before
    assert_generation_stopped(client, ACCESS)


def test_parameters_and_messages_round_trip(client: OpenAI) -> None:
    r = client.chat.completions.create(
        model=ACCESS,
        messages=user("Name three colors."),
        n=2,
        temperature=0.8,
        top_p=0.9,
        seed=7,
        stop=["\n\n"],
        presence_penalty=0.1,
        frequency_penalty=0.1,
        top_k=40,
        min_p=0.05,
        repeat_penalty=1.1,
        max_completion_tokens=16,
        user="someone",
        tools=[],  # an empty list is no tools, as code written for the SDK may pass it
        response_format={"type": "text"},
        logprobs=NOT_GIVEN,
    )
    assert [c.index for c in r.choices] == [0, 1]
    # A response message goes back into the conversation as it is, as with the SDK.
    messages = [*user("Name three colors."), r.choices[0].message, *user("Another one?")]
    again = client.chat.completions.create(model=ACCESS, messages=messages, max_tokens=8)
    assert again.usage is not None and again.usage.prompt_tokens > r.usage.prompt_tokens  # type: ignore[union-attr]


def test_unknown_keyword_is_refused_naming_it(client: OpenAI) -> None:
    # The engine refuses fields it does not know, as OpenAI does (a typo must not be ignored).
    with pytest.raises(BadRequestError) as e:
        client.chat.completions.create(model=ACCESS, messages=user("hi"), temperatur=0.5)  # type: ignore[call-overload]
    assert e.value.param == "temperatur" and e.value.status_code == 400


def test_extra_body_is_merged_into_the_request(client: OpenAI) -> None:
    params = {"model": ACCESS, "messages": user("Tell me a story."), "temperature": 0}
    r = client.chat.completions.create(**params, extra_body={"max_tokens": 3}, extra_headers={"X-A": "b"}, timeout=30)
    assert r.usage is not None and r.usage.completion_tokens == 3
    with pytest.raises(BadRequestError) as e:
        client.chat.completions.create(**params, extra_body={"top_k": -1})
    assert e.value.param == "top_k"


@pytest.mark.parametrize("block", [0, 1], ids=["sync", "async"])
def test_readme_quickstart_runs(model_path: str, block: int) -> None:
    readme = (HERE.parent / "README.md").read_text()
    code = readme.split("```python\n")[block + 1].split("```")[0].replace("/path/to/model.gguf", model_path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
