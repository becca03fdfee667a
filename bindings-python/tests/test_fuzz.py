"""Property-based fuzzing of the Python surface with hypothesis: every operation the core lists
(`_native.operations()`, so new ones are covered when they land), with valid bodies mutated by
structure (wrong types, huge numbers, deep nesting, unknown fields, lone surrogates, long
strings), through the native entry (`call` and `stream`) and through the SDK-shaped client.
Every case ends in an answer or a 4xx `APIStatusError`: never another exception, a 5xx, a hang
or a crash. `make test` runs a short budget; `MODELSERVICE_FUZZ=long` a long one.
"""

from __future__ import annotations

import json
import os
from typing import Any

import modelservice
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelservice import OpenAI, _native

FUZZ = "fuzz/smol"
OTHER = "fuzz/other"
EXAMPLES = 2000 if os.environ.get("MODELSERVICE_FUZZ") == "long" else 120

# A valid body per operation; management requests aim at a service that does not exist, so no
# case deletes or scales the one being fuzzed.
VALID: dict[str, dict[str, Any]] = {
    "chat.completions.create": {
        "model": FUZZ,
        "messages": [{"role": "user", "content": "Say hi."}],
        "max_tokens": 2,
        "temperature": 0.5,
        "stop": ["\n"],
    },
    "embeddings.create": {"model": FUZZ, "input": "hi"},
    "models.retrieve": {"model": FUZZ},
    "services.deploy": {"name": "x", "access_name": OTHER, "model": "/nonexistent.gguf", "threads": 1},
    "services.retrieve": {"access_name": FUZZ},
    "services.scale": {"access_name": OTHER, "instances": 2},
    "services.delete": {"access_name": OTHER, "confirm": "x"},
    "services.metrics": {"access_name": FUZZ},
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),  # lone surrogates
    st.just("x" * 100_000),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)),
    max_leaves=20,
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    """An operation and a mutated body as JSON text."""
    op = draw(st.sampled_from(_native.operations()))
    body = json.loads(json.dumps(VALID.get(op, {})))
    for _ in range(draw(st.integers(1, 3))):
        keys = list(body) + ["unknown_field", "n", "stream", "messages"]
        key = draw(st.sampled_from(keys))
        action = draw(st.integers(0, 3))
        if action == 0:
            body.pop(key, None)
        elif action == 1 and isinstance(body.get("messages"), list):
            body["messages"] = draw(st.lists(values, max_size=3))
        else:
            body[key] = draw(values)
    # Lone surrogates escaped (`\\ud800`, as JSON allows), or raw in the str (no UTF-8 exists).
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    # Text no JSON parser should take: non-numbers, nesting past any limit, a cut.
    tail = draw(st.sampled_from(["", "", "", "NaN", "1e999", "[" * 100_000, "cut"]))
    if tail == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif tail:
        text = text[:-1] + (", " if len(body) else "") + f'"{key}": {tail}' + "}"
    return op, text


def expect_answer_or_4xx(call: Any) -> None:
    try:
        call()
    except modelservice.APIStatusError as e:
        assert 400 <= e.status_code < 500, f"{e.status_code}: {e}"


@pytest.fixture(scope="module")
def fuzz_client(client: OpenAI, model_path: str) -> OpenAI:
    """A service with a short context, so no mutated request generates for long."""
    client.services.deploy(name="fuzz", access_name=FUZZ, model=model_path, context_length=64, slots=2, threads=1)
    return client


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=mutated())
def test_mutated_bodies_through_the_native_entry(fuzz_client: OpenAI, case: tuple[str, str]) -> None:
    op, body = case
    registry = fuzz_client.registry
    expect_answer_or_4xx(lambda: json.loads(registry.call(op, body)))

    def read_some() -> None:
        stream = registry.stream(op, body)
        for _ in range(3):
            if stream.next() is None:
                break
        stream.close()

    expect_answer_or_4xx(read_some)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "temperature",
                "top_p",
                "n",
                "stop",
                "seed",
                "logit_bias",
                "user",
                "max_tokens",
                "presence_penalty",
                "response_format",
                "logprobs",
                "top_logprobs",
                "stream_options",
                "messages",
            ]
        ),
        values,
        max_size=3,
    )
)
def test_mutated_parameters_through_the_client(fuzz_client: OpenAI, params: dict[str, Any]) -> None:
    request = {**VALID["chat.completions.create"], **params}
    expect_answer_or_4xx(lambda: fuzz_client.chat.completions.create(**request))
