"""Structured output and log probabilities through the drop-in clients on the real SmolLM2:
`parse()` with a Pydantic model (sync, async, and `client.beta`), JSON mode, and logprobs."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Literal

import pytest
from conftest import ACCESS, user
from modelservice import AsyncOpenAI, BadRequestError, LengthFinishReasonError, OpenAI
from pydantic import BaseModel, Field


class Pet(BaseModel):
    name: str = Field(max_length=20)
    species: Literal["cat", "dog", "fish"]
    age: int


def test_parse_with_a_pydantic_model(client: OpenAI) -> None:
    r = client.chat.completions.parse(
        model=ACCESS, messages=user("Invent a pet."), response_format=Pet, temperature=0, max_tokens=120
    )
    message = r.choices[0].message
    assert isinstance(message.parsed, Pet), message.content
    assert message.parsed == Pet.model_validate_json(message.content or "")
    assert message.refusal is None
    beta = client.beta.chat.completions.parse(
        model=ACCESS, messages=user("Invent a pet."), response_format=Pet, temperature=0, max_tokens=120
    )
    assert beta.choices[0].message.parsed == message.parsed
    aclient = AsyncOpenAI(registry=client)
    r2 = asyncio.run(
        aclient.chat.completions.parse(
            model=ACCESS, messages=user("Invent a pet."), response_format=Pet, temperature=0, max_tokens=120
        )
    )
    assert r2.choices[0].message.parsed == message.parsed


def test_a_cut_answer_raises_as_the_sdk_does(client: OpenAI) -> None:
    with pytest.raises(LengthFinishReasonError):
        client.chat.completions.parse(
            model=ACCESS, messages=user("Invent a pet."), response_format=Pet, temperature=0, max_tokens=3
        )


def test_json_mode_and_its_rule(client: OpenAI) -> None:
    r = client.chat.completions.create(
        model=ACCESS,
        messages=[
            {"role": "system", "content": "Reply with one short JSON object."},
            {"role": "user", "content": "A dog named Rex, 2 years old."},
            {"role": "assistant", "content": '{"name": "Rex", "age": 2}'},
            {"role": "user", "content": "A cat named Felix, 4 years old."},
        ],
        response_format={"type": "json_object"},
        temperature=0,
        max_tokens=120,
    )
    assert isinstance(json.loads(r.choices[0].message.content or ""), dict)
    with pytest.raises(BadRequestError) as e:
        client.chat.completions.create(model=ACCESS, messages=user("Hi"), response_format={"type": "json_object"})
    assert e.value.param == "messages"


def test_logprobs(client: OpenAI) -> None:
    r = client.chat.completions.create(
        model=ACCESS, messages=user("Name a colour."), temperature=0, max_tokens=8, logprobs=True, top_logprobs=3
    )
    content = r.choices[0].logprobs.content
    assert "".join(t.token for t in content) == r.choices[0].message.content
    for t in content:
        assert t.top_logprobs[0].token == t.token
        assert sum(math.exp(a.logprob) for a in t.top_logprobs) <= 1 + 1e-4
