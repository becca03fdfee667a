"""Throughput of modelservice on Ray Serve next to the single-process HTTP server, in one run on
this machine: 16 concurrent streamed requests (32 tokens each, greedy) through the `openai`
client, on one engine and on two engines (one thread each, 4 slots each), either in the server's
one process (`instances`) or as Ray replicas. Also start-up time and memory per replica.
`make -C bindings-python bench-ray` runs it.

One thread per engine: on a machine whose cores are shared, llama.cpp's spin-waiting threads
make multi-thread engines crawl, which would measure the neighbours, not the setups."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
from conftest import ACCESS, ROOT, USER_KEY, descendants, free_port, local_cluster, model_path, wait_until

STREAMS = 16
TOKENS = 32
ROUNDS = 2
PROMPT = [{"role": "user", "content": "Write a short story about a lighthouse."}]


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time of the processes, in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def measure(base_url: str, serving: Callable[[], Iterable[int]]) -> tuple[float, float]:
    """Tokens per second (wall clock) and tokens per CPU-second of the serving processes. The
    second does not depend on what else runs on the machine."""
    generate(base_url, 0)  # warm-up
    pids = set(serving())
    cpu = cpu_seconds(pids)
    start = time.monotonic()
    tokens = generate(base_url, ROUNDS)
    return tokens / (time.monotonic() - start), tokens / (cpu_seconds(pids) - cpu)


def generate(base_url: str, rounds: int) -> int:
    """Completion tokens of `rounds` rounds of STREAMS concurrent streams; 0 rounds: one stream."""
    api = openai.OpenAI(base_url=base_url, api_key=USER_KEY, max_retries=0, timeout=300)

    def one(_: int) -> int:
        tokens = 0
        stream = api.chat.completions.create(
            model=ACCESS,
            messages=PROMPT,
            stream=True,
            max_tokens=TOKENS,
            temperature=0,
            stream_options={"include_usage": True},
        )
        for chunk in stream:
            if chunk.usage:
                tokens = chunk.usage.completion_tokens
        return tokens

    if rounds == 0:
        return one(0)
    with ThreadPoolExecutor(STREAMS) as pool:
        return sum(sum(pool.map(one, range(STREAMS))) for _ in range(rounds))


def memory_mib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in MiB; PSS shares the mmapped model file among the replicas."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":")
        fields[name] = int(value.split()[0])
    return fields["Rss"] // 1024, fields["Pss"] // 1024


def bench_server(model: str, instances: int) -> tuple[float, float]:
    binary = ROOT / "target" / "release" / "modelservice-server"
    port = free_port()
    args = [str(binary), "--model", model, "--access-name", ACCESS, "--slots", "4", "--context-length", "1024"]
    args += ["--instances", str(instances), "--threads", str(instances), "--listen", f"127.0.0.1:{port}"]
    env = {**os.environ, "MODELSERVICE_API_KEYS": USER_KEY, "RUST_LOG": "warn"}
    server = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        api = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=USER_KEY, max_retries=0)

        def up() -> bool:
            try:
                return bool(api.models.list().data)
            except openai.APIConnectionError:
                return False

        wait_until("the server", up, timeout=60)
        return measure(f"http://127.0.0.1:{port}/v1", lambda: [server.pid])
    finally:
        server.kill()  # nothing left to drain
        server.wait(timeout=60)


def main() -> None:
    model = model_path()
    print(f"load average before: {os.getloadavg()[0]:.1f}", flush=True)
    rows = [
        ("single-process server, 1 instance", bench_server(model, 1)),
        ("single-process server, 2 instances", bench_server(model, 2)),
    ]
    with local_cluster(replicas=1) as cluster:
        print(f"start-up (ray.init to the first answer, 1 + 1 replicas): {cluster.started_s:.1f} s", flush=True)
        # Every process of the cluster: replicas, ingress, proxy, controller, raylet, GCS.
        cluster_pids = functools.partial(descendants, os.getpid())
        rows.append(("Ray Serve, 1 replica", measure(cluster.base_url, cluster_pids)))
        start = time.monotonic()
        cluster.deploy(replicas=2)
        print(f"scale 1 -> 2 replicas, new replica serving: {time.monotonic() - start:.1f} s", flush=True)
        rows.append(("Ray Serve, 2 replicas", measure(cluster.base_url, cluster_pids)))
        for replica in cluster.replicas():
            rss, pss = memory_mib(replica["pid"])
            print(f"replica pid {replica['pid']}: RSS {rss} MiB, PSS {pss} MiB", flush=True)
        pids = descendants(os.getpid())
        total_pss = sum(memory_mib(pid)[1] for pid in pids)
        print(f"the cluster's {len(pids)} processes (3 replicas, not this driver): PSS {total_pss} MiB", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}", flush=True)
    print(f"\n| engines of 1 thread x 4 slots ({STREAMS} streams x {TOKENS} tokens) | tokens/s | tokens/CPU-s |")
    print("|---|---|---|")
    for name, (rate, per_cpu) in rows:
        print(f"| {name} | {rate:.1f} | {per_cpu:.1f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
