"""Embeddings through the drop-in clients on the real all-MiniLM-L6-v2: shapes, unit vectors, a
paraphrase closer than an unrelated sentence, base64 when asked, and the same vectors sync and async."""

from __future__ import annotations

import asyncio
import base64
import math
import struct

import pytest
from modelservice import AsyncOpenAI, BadRequestError, CreateEmbeddingResponse, OpenAI


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_vectors_are_unit_length_and_meaningful(client: OpenAI, embedder: str) -> None:
    sentences = ["A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse."]
    r = client.embeddings.create(model=embedder, input=sentences)
    assert isinstance(r, CreateEmbeddingResponse)
    assert r.object == "list" and r.model == embedder
    assert [e.index for e in r.data] == [0, 1, 2]
    vectors = [e.embedding for e in r.data]
    assert all(len(v) == 384 for v in vectors)
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-4 for v in vectors)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2
    assert r.usage.prompt_tokens == r.usage.total_tokens > 3 * 2


def test_base64_when_asked_and_async_agrees(client: OpenAI, embedder: str) -> None:
    floats = client.embeddings.create(model=embedder, input="The sea is calm.").data[0].embedding
    b64 = client.embeddings.create(model=embedder, input="The sea is calm.", encoding_format="base64")
    raw = base64.b64decode(b64.data[0].embedding)
    decoded = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    assert decoded == pytest.approx(floats, abs=1e-6)
    aclient = AsyncOpenAI(registry=client)
    again = asyncio.run(aclient.embeddings.create(model=embedder, input="The sea is calm."))
    assert again.data[0].embedding == pytest.approx(floats, abs=1e-6)


def test_wrong_kind_and_bad_dimensions_name_the_field(client: OpenAI, embedder: str) -> None:
    with pytest.raises(BadRequestError) as e:
        client.embeddings.create(model="u-8105f7322477/test", input="hi")
    assert e.value.param == "model"
    with pytest.raises(BadRequestError) as e:
        client.chat.completions.create(model=embedder, messages=[{"role": "user", "content": "hi"}])
    assert e.value.param == "model"
    with pytest.raises(BadRequestError) as e:
        client.embeddings.create(model=embedder, input="hi", dimensions=128)
    assert e.value.param == "dimensions"
