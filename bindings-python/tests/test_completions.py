"""Legacy text completions (`client.completions.create`) on the real model, sync and async:
the `openai` SDK's shape, prompts of every form, streams that add up to the whole answer,
echo, legacy log probabilities and the 400s that name their field."""

from __future__ import annotations

import asyncio

import pytest
from conftest import ACCESS
from modelservice import AsyncOpenAI, BadRequestError, Completion, OpenAI, Stream

PROMPT = "The capital of France is"


def test_shape_like_the_sdk(client: OpenAI) -> None:
    r = client.completions.create(model=ACCESS, prompt=PROMPT, temperature=0)
    assert isinstance(r, Completion)
    assert r.id.startswith("cmpl-") and r.object == "text_completion" and r.model == ACCESS
    choice = r.choices[0]
    assert choice.index == 0 and choice.text and choice.logprobs is None
    # OpenAI's default budget on this endpoint is 16 tokens.
    assert r.usage is not None and r.usage.completion_tokens == 16
    assert choice.finish_reason == "length"
    assert r.model_dump()["choices"][0]["text"] == choice.text


def test_prompt_forms_batches_and_async(client: OpenAI) -> None:
    text = client.completions.create(model=ACCESS, prompt=PROMPT, temperature=0, max_tokens=6).choices[0].text
    ids = client.registry.tokenize(ACCESS, PROMPT)
    by_ids = client.completions.create(model=ACCESS, prompt=ids, temperature=0, max_tokens=6)
    assert by_ids.choices[0].text == text
    batch = client.completions.create(model=ACCESS, prompt=[PROMPT, "1, 2, 3,"], n=2, temperature=0, max_tokens=6)
    assert [c.index for c in batch.choices] == [0, 1, 2, 3]
    assert batch.choices[0].text == batch.choices[1].text == text
    assert batch.choices[2].text != text

    async def run() -> Completion:
        aclient = AsyncOpenAI(registry=client)
        return await aclient.completions.create(model=ACCESS, prompt=PROMPT, temperature=0, max_tokens=6)

    assert asyncio.run(run()).choices[0].text == text


def test_stream_adds_up_to_the_whole(client: OpenAI) -> None:
    params = {"model": ACCESS, "prompt": "Once upon a time", "temperature": 0, "max_tokens": 10, "logprobs": 2}
    whole = client.completions.create(**params)  # type: ignore[call-overload]
    stream = client.completions.create(**params, stream=True, stream_options={"include_usage": True})  # type: ignore[call-overload]
    assert isinstance(stream, Stream)
    text, tokens, usage = "", [], None
    for chunk in stream:
        assert isinstance(chunk, Completion) and chunk.id == stream.id
        usage = chunk.usage or usage
        for c in chunk.choices:
            text += c.text
            tokens += c.logprobs.tokens if c.logprobs else []
    assert text == whole.choices[0].text
    lp = whole.choices[0].logprobs
    assert lp is not None and tokens == lp.tokens and "".join(lp.tokens) == text
    assert all(tok in top and len(top) <= 3 for tok, top in zip(lp.tokens, lp.top_logprobs))
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]

    async def run() -> str:
        aclient = AsyncOpenAI(registry=client)
        out = ""
        async for chunk in await aclient.completions.create(**params, stream=True):  # type: ignore[call-overload]
            out += "".join(c.text for c in chunk.choices)
        return out

    assert asyncio.run(run()) == text


def test_echo(client: OpenAI) -> None:
    plain = client.completions.create(model=ACCESS, prompt=PROMPT, temperature=0, max_tokens=4).choices[0].text
    echoed = client.completions.create(model=ACCESS, prompt=PROMPT, temperature=0, max_tokens=4, echo=True)
    assert echoed.choices[0].text == PROMPT + plain


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"suffix": "!"}, "suffix"),
        ({"best_of": 2}, "best_of"),
        ({"echo": True, "logprobs": 1}, "echo"),
        ({"logprobs": 9}, "logprobs"),
    ],
)
def test_unserved_parameters_are_refused(client: OpenAI, extra: dict[str, object], param: str) -> None:
    with pytest.raises(BadRequestError) as info:
        client.completions.create(model=ACCESS, prompt="hi", **extra)  # type: ignore[call-overload]
    assert info.value.param == param
