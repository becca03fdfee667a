"""Threads and asyncio: requests overlap and are batched by the engine; the loop never blocks;
cancelling a task stops its generation."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from conftest import assert_generation_stopped, decode_steps, endless, user
from modelservice import AsyncOpenAI, AsyncStream, ChatCompletion, OpenAI

QUESTIONS = ["What is 2+2?", "Name a fruit.", "What color is the sky?", "Say hello."]


def test_four_threads_overlap(client: OpenAI, fresh_service: str) -> None:
    spans: list[tuple[float, float]] = []
    answers: dict[int, ChatCompletion] = {}
    barrier = threading.Barrier(4)

    def ask(i: int) -> None:
        barrier.wait()
        start = time.monotonic()
        answers[i] = client.chat.completions.create(model=fresh_service, messages=user(QUESTIONS[i]), max_tokens=32)
        spans.append((start, time.monotonic()))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 4 and all(a.choices[0].message.content for a in answers.values())
    assert max(s for s, _ in spans) < min(e for _, e in spans), f"the requests did not overlap: {spans}"
    # With the GIL released, the engine saw several of them in one decode step.
    assert client.services.retrieve(fresh_service).stats.peak_batch_sequences >= 2


def test_gather_four_requests(client: OpenAI, fresh_service: str) -> None:
    aclient = AsyncOpenAI(registry=client)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def ask(q: str) -> tuple[float, float, ChatCompletion]:
        start = time.monotonic()
        r = await aclient.chat.completions.create(model=fresh_service, messages=user(q), max_tokens=32)
        return start, time.monotonic(), r

    async def main() -> list[tuple[float, float, ChatCompletion]]:
        tick = asyncio.ensure_future(ticker())
        results = await asyncio.gather(*(ask(q) for q in QUESTIONS))
        tick.cancel()
        return results

    results = asyncio.run(main())
    assert all(r.choices[0].message.content for _, _, r in results)
    assert max(s for s, _, _ in results) < min(e for _, e, _ in results)
    assert client.services.retrieve(fresh_service).stats.peak_batch_sequences >= 2
    assert ticks >= 3, "the event loop was blocked while the engine worked"


def test_async_matches_sync_and_streams(client: OpenAI) -> None:
    aclient = AsyncOpenAI(registry=client.registry)
    access = client.models.list().data[0].id
    params = {
        "model": access,
        "messages": user("What is the capital of Italy?"),
        "max_tokens": 24,
        "temperature": 0,
    }
    whole = client.chat.completions.create(**params)

    async def main() -> tuple[ChatCompletion, str]:
        r = await aclient.chat.completions.create(**params)
        stream = await aclient.chat.completions.create(**params, stream=True)
        assert isinstance(stream, AsyncStream)
        text = ""
        async with stream:
            async for chunk in stream:
                text += chunk.choices[0].delta.content or ""
        return r, text

    r, text = asyncio.run(main())
    assert r.choices[0].message.content == whole.choices[0].message.content == text


def test_async_break_and_cancel_stop_generation(client: OpenAI, fresh_service: str) -> None:
    aclient = AsyncOpenAI(registry=client)
    params = {
        "model": fresh_service,
        "messages": user("Write a long essay."),
        **endless(client, fresh_service),
    }

    async def break_out() -> None:
        stream = await aclient.chat.completions.create(**params, stream=True)
        n = 0
        async for _ in stream:
            n += 1
            if n == 3:
                break

    asyncio.run(break_out())
    assert_generation_stopped(client, fresh_service)

    async def cancel() -> None:
        before = decode_steps(client, fresh_service)
        task = asyncio.ensure_future(aclient.chat.completions.create(**params))
        while decode_steps(client, fresh_service) < before + 3:
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel())
    assert_generation_stopped(client, fresh_service)


def test_async_services_and_models(client: OpenAI, model_path: str) -> None:
    aclient = AsyncOpenAI(registry=client)

    async def main() -> None:
        info = await aclient.services.deploy(
            {"name": "async", "access_name": "u/async", "model": model_path, "context_length": 256, "threads": 1}
        )
        assert info.status == "running"
        assert "u/async" in [m.id for m in await aclient.models.list()]
        assert (await aclient.services.scale("u/async", 2)).instances == 2
        assert (await aclient.services.retrieve("u/async")).instances == 2
        deleted = await aclient.services.delete("u/async", confirm="async")
        assert deleted.access_name == "u/async"
        assert "u/async" not in [s.access_name for s in await aclient.services.list()]

    asyncio.run(main())
