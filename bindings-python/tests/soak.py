"""The soak through the Python in-process client: threads (OpenAI) and asyncio (AsyncOpenAI) send
chat completions in all shapes at the same registry while a controller scales the main service
1 -> 3 -> 1, deletes and redeploys a second one and sends a burst past the main queue; one
streamed request in ten is cancelled mid-stream (closed, or its asyncio task cancelled as Ctrl-C
would). Reports answered, errors by type, lost or hung (target 0), this process's RSS (and, to
tell freed pages glibc keeps from memory in use, RSS after malloc_trim), threads and file
descriptors after warm-up and at the end, and latency percentiles.

    make -C bindings-python soak        (SOAK_REQUESTS, default 1000; SOAK_SEED, default 1;
                                         SOAK_DEADLINE, default 3600 s for the whole run)

Bounded: a request that takes longer than HUNG_AFTER counts as hung, and a run past SOAK_DEADLINE
stops with a failure instead of waiting on a stuck thread.

Not collected by pytest (no `test_` prefix): it is long, and `make test` stays short.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import modelservice
from modelservice import AsyncOpenAI, OpenAI

ROOT = Path(__file__).resolve().parents[2]
MAIN, SECOND = "u-soak/main", "u-soak/second"
HUNG_AFTER = 180.0


def model_path() -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "fetch-models"), "smollm2"], check=True, capture_output=True, text=True
    )
    return out.stdout.strip().split("\t")[1]


def status_fields() -> dict[str, list[str]]:
    status = Path("/proc/self/status").read_text()
    return {name: value.split() for name, _, value in (line.partition(":") for line in status.splitlines())}


def trim_heap() -> None:
    """Has glibc hand freed heap pages back to the kernel (elsewhere: nothing to do)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def resources() -> tuple[int, int, int, int]:
    """RSS (KiB), threads, open file descriptors, and RSS (KiB) after `malloc_trim`: without the
    freed pages glibc's per-thread arenas keep for reuse."""
    field = status_fields()
    raw, threads, fds = int(field["VmRSS"][0]), int(field["Threads"][0]), len(os.listdir("/proc/self/fd"))
    trim_heap()
    return raw, threads, fds, int(status_fields()["VmRSS"][0])


def plan(rng: random.Random) -> dict[str, Any]:
    stream = rng.random() < 0.5
    return {
        "model": SECOND if rng.random() < 0.125 else MAIN,
        "stream": stream,
        "max_tokens": rng.randint(1, 32),
        "n": 2 if rng.random() < 0.1 else 1,
        "cancel": stream and rng.random() < 0.1,
    }


def params(p: dict[str, Any], i: int) -> dict[str, Any]:
    messages = [{"role": "user", "content": f"Tell me something about the number {i}."}]
    return {"model": p["model"], "messages": messages, "max_tokens": p["max_tokens"], "n": p["n"], "seed": i}


def refusal(e: Exception, model: str) -> str:
    """An error's label, `allowed` when the contract says it may happen here."""
    status = getattr(e, "status_code", None)
    allowed = isinstance(e, modelservice.RateLimitError) or (model == SECOND and status in (404, 503))
    return f"{'allowed' if allowed else 'FAILED'} {type(e).__name__} {status}"


def sync_request(client: OpenAI, p: dict[str, Any], i: int) -> str:
    try:
        if not p["stream"]:
            r = client.chat.completions.create(**params(p, i))
            return "answered" if len(r.choices) == p["n"] and all(c.finish_reason for c in r.choices) else "LOST"
        stream = client.chat.completions.create(stream=True, **params(p, i))
        finished = 0
        for k, chunk in enumerate(stream):
            finished += sum(1 for c in chunk.choices if c.finish_reason)
            if p["cancel"] and k == 2:
                stream.close()
                return "cancelled"
        return "answered" if finished == p["n"] else "LOST"
    except modelservice.APIError as e:
        return refusal(e, p["model"])


async def async_request(client: AsyncOpenAI, p: dict[str, Any], i: int) -> str:
    try:
        if not p["stream"]:
            r = await client.chat.completions.create(**params(p, i))
            return "answered" if len(r.choices) == p["n"] else "LOST"
        stream = await client.chat.completions.create(stream=True, **params(p, i))
        finished = 0
        async for chunk in stream:
            finished += sum(1 for c in chunk.choices if c.finish_reason)
        return "answered" if finished == p["n"] else "LOST"
    except modelservice.APIError as e:
        return refusal(e, p["model"])


async def async_with_cancel(client: AsyncOpenAI, p: dict[str, Any], i: int) -> str:
    """The request as a task; a cancelled one is cancelled as Ctrl-C cancels `asyncio.run`."""
    task = asyncio.ensure_future(async_request(client, p, i))
    if p["cancel"]:
        await asyncio.sleep(random.Random(i).uniform(0.05, 0.5))
        if not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                return "cancelled"
    try:
        return await asyncio.wait_for(task, HUNG_AFTER)
    except asyncio.TimeoutError:
        return "HUNG"


def main() -> None:
    total = int(os.environ.get("SOAK_REQUESTS", "1000"))
    deadline = time.monotonic() + float(os.environ.get("SOAK_DEADLINE", "3600"))
    seed = int(os.environ.get("SOAK_SEED", "1"))
    model = model_path()
    spec = {"model": model, "threads": 1}
    client = OpenAI(
        services=[
            {"name": "main", "access_name": MAIN, "slots": 4, "context_length": 512, "queue_size": 24, **spec},
            {"name": "second", "access_name": SECOND, "slots": 2, "context_length": 256, "queue_size": 8, **spec},
        ]
    )
    aclient = AsyncOpenAI(registry=client)
    for i in range(4):
        warm_up = {"model": MAIN, "stream": i % 2 == 0, "max_tokens": 8, "n": 1, "cancel": False}
        assert sync_request(client, warm_up, i) == "answered"

    results: list[tuple[str, float]] = []
    lock = threading.Lock()
    done = threading.Event()
    warm: list[tuple[int, int, int]] = []
    actions: list[str] = []

    def burst_request(k: int) -> str:
        burst = {"model": MAIN, "stream": False, "max_tokens": 4, "n": 1, "cancel": False}
        return sync_request(client, burst, 10_000 + k)

    def controller() -> None:
        rounds = 0
        while not done.is_set():
            rounds += 1
            for instances in (3, 1):
                client.services.scale(MAIN, instances)
                actions.append(f"scale {instances}")
                done.wait(3)
            client.services.delete(SECOND, confirm="second")
            client.services.deploy(name="second", access_name=SECOND, slots=2, context_length=256, queue_size=8, **spec)
            actions.append("redeploy second")
            if rounds == 1:
                warm.append(resources())
            if rounds == 2:
                with ThreadPoolExecutor(40) as pool:
                    outcomes = list(pool.map(burst_request, range(40)))
                actions.append(f"burst of 40: {Counter(outcomes)}")
                with lock:
                    results.extend((o, 0.0) for o in outcomes)
            done.wait(1)

    control = threading.Thread(target=controller)
    control.start()
    start = time.monotonic()
    half = total // 2

    def thread_worker(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        for i in range(k, half, 8):
            began = time.monotonic()
            outcome = sync_request(client, plan(rng), i)
            with lock:
                results.append((outcome, time.monotonic() - began))

    async def async_side() -> None:
        rng = random.Random(seed * 1000 + 99)
        queue = list(range(half, total))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                began = time.monotonic()
                outcome = await async_with_cancel(aclient, plan(rng), i)
                results.append((outcome, time.monotonic() - began))

        await asyncio.gather(*(worker() for _ in range(8)))

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(thread_worker, k) for k in range(8)]
        asyncio.run(async_side())
        for f in futures:
            try:
                f.result(timeout=max(deadline - time.monotonic(), 1.0))
            except TimeoutError:
                # A worker stuck in the engine: report and stop, the threads cannot be joined.
                print(f"soak failed: past SOAK_DEADLINE with {len(results)} of {total} requests done", file=sys.stderr)
                os._exit(1)
    wall = time.monotonic() - start
    done.set()
    control.join()
    time.sleep(2)
    end = resources()

    counts = Counter(o for o, _ in results)
    latencies = sorted(t for o, t in results if o == "answered" and t > 0)
    pct = lambda q: latencies[min(int(len(latencies) * q), len(latencies) - 1)] if latencies else 0.0  # noqa: E731
    bad = sum(v for k, v in counts.items() if k in ("LOST", "HUNG") or k.startswith("FAILED"))
    print("| figure | value |\n|---|---|")
    print(f"| requests (threads + asyncio + burst) | {half} + {total - half} + 40 |")
    for k, v in sorted(counts.items()):
        print(f"| {k} | {v} |")
    print(f"| lost, hung or outside the contract | {bad} |")
    print(f"| wall time | {wall:.1f} s |")
    print(f"| latency p50 / p99 (answered) | {pct(0.5):.2f} s / {pct(0.99):.2f} s |")
    w = warm[0] if warm else end
    print(f"| RSS after warm-up -> end | {w[0] // 1024} MiB -> {end[0] // 1024} MiB |")
    print(f"| RSS after malloc_trim, warm-up -> end | {w[3] // 1024} MiB -> {end[3] // 1024} MiB |")
    print(f"| threads after warm-up -> end | {w[1]} -> {end[1]} |")
    print(f"| fds after warm-up -> end | {w[2]} -> {end[2]} |")
    print("controller:", "; ".join(f"{a} x{n}" for a, n in Counter(actions).items()))
    problems = []
    if bad:
        problems.append(f"{bad} requests lost, hung or refused outside the contract")
    if end[1] > w[1] + 2:
        problems.append(f"threads grew {w[1]} -> {end[1]}")
    if end[2] > w[2] + 4:
        problems.append(f"fds grew {w[2]} -> {end[2]}")
    if end[0] > w[0] * 1.25:
        problems.append(f"RSS grew {w[0]} -> {end[0]} KiB (after malloc_trim: {w[3]} -> {end[3]} KiB)")
    if problems:
        print("soak failed:", "; ".join(problems), file=sys.stderr)
        sys.exit(1)
    print("soak passed")


if __name__ == "__main__":
    main()
