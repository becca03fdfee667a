"""modelservice.serve on a local Ray cluster, through the official `openai` client pointed at the
ingress, on the real SmolLM2: two replicas with a registry each, spread and identical greedy
answers, the OpenAI errors, disconnects, a replica SIGKILLed under load, and a drained scale-down.
The tests run in file order on one cluster (the last one scales it down)."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import openai
import pytest
from conftest import ACCESS, TIGHT, USER_KEY, Cluster, listen_addresses, wait_until
from modelservice import OpenAI
from modelservice.serve import REPLICA_HEADER

PROMPT = [{"role": "user", "content": "Write one sentence about the sea."}]


def client(cluster: Cluster, key: str = USER_KEY) -> openai.OpenAI:
    # No retries: every failure counts.
    return openai.OpenAI(base_url=cluster.base_url, api_key=key, max_retries=0, timeout=120)


@dataclass
class Outcome:
    start: float
    end: float = 0.0
    replica: Optional[str] = None
    text: str = ""
    completion_tokens: int = 0
    finish_reason: Optional[str] = None
    error: Optional[BaseException] = field(default=None, repr=False)


def stream_one(api: openai.OpenAI, **params: Any) -> Outcome:
    """One streamed completion, read to its end; any failure is recorded, not raised."""
    outcome = Outcome(start=time.monotonic())
    try:
        stream = api.chat.completions.create(
            model=ACCESS, messages=PROMPT, stream=True, stream_options={"include_usage": True}, **params
        )
        outcome.replica = stream.response.headers.get(REPLICA_HEADER)
        for chunk in stream:
            if chunk.choices:
                outcome.text += chunk.choices[0].delta.content or ""
                outcome.finish_reason = chunk.choices[0].finish_reason or outcome.finish_reason
            if chunk.usage:
                outcome.completion_tokens = chunk.usage.completion_tokens
    except Exception as e:  # noqa: BLE001 - the test counts failures of any kind
        outcome.error = e
    outcome.end = time.monotonic()
    return outcome


def service_of(replica: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in replica["services"] if s["access_name"] == ACCESS)


@pytest.fixture(scope="module")
def end_tokens(cluster: Cluster) -> dict[str, int]:
    """A logit bias that bans the end-of-turn tokens, so a generation runs to max_tokens."""
    local = OpenAI(services=[{"name": "t", "access_name": "t/t", "model": cluster.model, "threads": 1, "slots": 1}])
    return {str(local.registry.tokenize("t/t", s)[-1]): -100 for s in ("<|im_end|>", "<|endoftext|>")}


def test_two_replicas_two_registries(cluster: Cluster) -> None:
    replicas = cluster.replicas()
    assert len(replicas) == 2
    assert len({r["pid"] for r in replicas}) == 2
    ids = {service_of(r)["id"] for r in replicas}
    assert len(ids) == 2 and all(i.startswith("svc-") for i in ids), ids
    # `threads` follows the replica's CPUs (1), not every core of the node.
    assert all(r["threads"] == 1 and service_of(r)["threads_per_instance"] == 1 for r in replicas)
    for r in replicas:
        rss = int(Path(f"/proc/{r['pid']}/status").read_text().split("VmRSS:")[1].split()[0]) // 1024
        print(f"replica {r['replica']} pid {r['pid']}: RSS {rss} MiB")
    print(f"start-up: ray.init to the first answer of the ingress: {cluster.started_s:.1f} s")
    # The HTTP proxy listens on the loopback address only.
    port = int(cluster.base_url.split(":")[2].split("/")[0])
    assert listen_addresses(port) == {"0100007F"}, listen_addresses(port)


def test_openai_client_surface(cluster: Cluster) -> None:
    api = client(cluster)
    r = api.chat.completions.create(model=ACCESS, messages=PROMPT, max_tokens=8, temperature=0)
    assert r.choices[0].message.content and 0 < r.usage.completion_tokens <= 8
    # Legacy completions go through the same replicas: 16 tokens by default, and streamed.
    text = api.completions.create(model=ACCESS, prompt="The sea is", temperature=0)
    assert text.object == "text_completion" and text.choices[0].finish_reason == "length"
    assert text.usage is not None and text.usage.completion_tokens == 16
    streamed = api.completions.create(model=ACCESS, prompt="The sea is", temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == text.choices[0].text
    assert {m.id for m in api.models.list()} == {ACCESS, TIGHT}
    assert api.models.retrieve(ACCESS).id == ACCESS
    # Unknown model: the core's own 404 envelope.
    with pytest.raises(openai.NotFoundError) as nf:
        api.chat.completions.create(model="u-0/nope", messages=PROMPT)
    assert nf.value.body == {
        "message": "The model `u-0/nope` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    with pytest.raises(openai.NotFoundError):
        api.models.retrieve("u-0/nope")
    # A bad value is refused by the replica's engine, naming the parameter.
    with pytest.raises(openai.BadRequestError) as bad:
        api.chat.completions.create(model=ACCESS, messages=PROMPT, temperature=5)
    assert bad.value.body["param"] == "temperature"
    # Keys are required.
    for key in ("wrong-key", USER_KEY[:-1]):
        with pytest.raises(openai.AuthenticationError):
            client(cluster, key).models.list()
    # The replica listing needs the admin key.
    with pytest.raises(openai.AuthenticationError):
        api.get("/replicas", cast_to=object)


def test_sixteen_streams_spread_over_both_replicas(cluster: Cluster) -> None:
    before = {r["replica"]: service_of(r)["usage"]["requests"] for r in cluster.replicas()}
    api = client(cluster)
    start = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda _: stream_one(api, max_tokens=48, temperature=0), range(16)))
    elapsed = time.monotonic() - start
    assert [o.error for o in outcomes] == [None] * 16
    assert all(o.text and o.finish_reason in ("stop", "length") for o in outcomes)
    served = {o.replica for o in outcomes}
    assert served == set(before), f"both replicas must serve: {served} vs {set(before)}"
    after = {r["replica"]: service_of(r)["usage"]["requests"] for r in cluster.replicas()}
    assert sum(after.values()) - sum(before.values()) == 16
    assert all(after[r] > before[r] for r in before), (before, after)
    tokens = sum(o.completion_tokens for o in outcomes)
    print(f"16 streams on 2 replicas: {tokens} tokens in {elapsed:.1f} s = {tokens / elapsed:.0f} tokens/s")


def test_greedy_answers_identical_on_both_replicas(cluster: Cluster) -> None:
    # One request at a time, so each is decoded alone, until both replicas have answered.
    api = client(cluster)
    answers: dict[str, set[str]] = {}
    for _ in range(20):
        o = stream_one(api, max_tokens=40, temperature=0)
        assert o.error is None and o.replica
        answers.setdefault(o.replica, set()).add(o.text)
        if len(answers) == 2:
            break
    assert len(answers) == 2, "the router sent 20 requests in a row to one replica"
    texts = set.union(*answers.values())
    assert len(texts) == 1, answers


def test_disconnect_stops_generation(cluster: Cluster, end_tokens: dict[str, int]) -> None:
    api = client(cluster)
    stream = api.chat.completions.create(
        model=ACCESS, messages=PROMPT, stream=True, max_tokens=900, temperature=0, logit_bias=end_tokens
    )
    replica = stream.response.headers[REPLICA_HEADER]

    def decoded() -> int:
        mine = next(r for r in cluster.replicas() if r["replica"] == replica)
        return int(service_of(mine)["stats"]["tokens_decoded"])

    start = decoded()
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()  # drops the HTTP connection

    # Once the cancellation has arrived, the replica's engine stops decoding.
    def still() -> bool:
        first = decoded()
        time.sleep(1)
        return decoded() == first

    wait_until("the replica to stop decoding", still, timeout=30)
    grown = decoded() - start
    print(f"disconnect after 3 chunks: the replica decoded {grown} tokens of max_tokens=900")
    assert grown < 300, f"the replica decoded {grown} tokens of 900 after the client left"


def test_queue_full_is_429(cluster: Cluster) -> None:
    # `tight` takes one request and queues one: a burst of six gets 429s with our envelope.
    api = client(cluster)

    def ask(_: int) -> Any:
        try:
            return api.chat.completions.create(model=TIGHT, messages=PROMPT, max_tokens=32)
        except openai.APIStatusError as e:
            return e

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(ask, range(6)))
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    served = [r for r in results if not isinstance(r, Exception)]
    assert refused and served and len(refused) + len(served) == 6, results
    body = refused[0].body
    assert (body["type"], body["code"], body["param"]) == ("rate_limit_error", "queue_full", "model"), body


def test_sigkill_one_replica_under_load(cluster: Cluster) -> None:
    api = client(cluster)
    outcomes: list[Outcome] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            outcomes.append(stream_one(api, max_tokens=48, temperature=0))

    workers = [threading.Thread(target=load) for _ in range(8)]
    for w in workers:
        w.start()
    try:
        time.sleep(6)
        before = cluster.replicas()
        victim = before[0]
        killed_at = time.monotonic()
        os.kill(victim["pid"], signal.SIGKILL)

        def replaced() -> Optional[list[dict[str, Any]]]:
            now = cluster.replicas()
            fresh = [r for r in now if r["replica"] not in {b["replica"] for b in before}]
            return now if len(now) == 2 and fresh else None

        now = wait_until("Serve to replace the replica", replaced, timeout=120)
        replaced_s = time.monotonic() - killed_at
        newcomer = next(r for r in now if r["replica"] != before[1]["replica"])
        assert service_of(newcomer)["id"] != service_of(victim)["id"]
        # Keep the load on until the newcomer has served some of it.
        wait_until(
            "the new replica to serve", lambda: any(o.replica == newcomer["replica"] for o in list(outcomes)), 60
        )
        time.sleep(2)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=120)
    failed = [o for o in outcomes if o.error is not None]
    in_flight = [o for o in outcomes if o.replica == victim["replica"] and o.start < killed_at < o.end]
    print(
        f"SIGKILL: replaced in {replaced_s:.1f} s; {len(outcomes)} requests, {len(failed)} failed, "
        f"{len(in_flight)} were in flight on the victim"
    )
    assert failed, "the victim had requests in flight: some must have failed"
    for o in failed:
        assert o in in_flight, f"a request not in flight on the victim failed: {o} ({o.error!r})"
    later = [o for o in outcomes if o.start > killed_at]
    assert later and all(o.error is None for o in later)
    assert any(o.replica == newcomer["replica"] for o in later)


def test_scale_down_drains_streams(cluster: Cluster, end_tokens: dict[str, int]) -> None:
    before = cluster.replicas()
    assert len(before) == 2
    api = client(cluster)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(stream_one, api, max_tokens=160, temperature=0, logit_bias=end_tokens) for _ in range(8)]
        time.sleep(3)  # the streams are running
        scaled = time.monotonic()
        cluster.deploy(replicas=1)
        scaled_s = time.monotonic() - scaled
        outcomes = [f.result(timeout=300) for f in futures]
    after = cluster.replicas()
    assert len(after) == 1
    gone = {r["replica"] for r in before} - {r["replica"] for r in after}
    drained = [o for o in outcomes if o.replica in gone]
    print(f"scale 2 -> 1 applied in {scaled_s:.1f} s; {len(drained)} of 8 streams drained from the removed replica")
    assert drained, "no stream ran on the replica that was scaled away"
    assert all(o.end > scaled for o in drained), "the drained streams were still running when the scale-down began"
    for o in outcomes:
        assert o.error is None, o.error
        assert (o.finish_reason, o.completion_tokens) == ("length", 160), o
    # Only the replica count changed: the other replica kept running, with its registry.
    assert after[0]["pid"] in {r["pid"] for r in before}
