"""Throughput of modelservice on Ray Serve next to the single-process HTTP server, in one run on
this machine: 16 concurrent streamed requests (64 tokens each, greedy) through the `openai`
client, on the server (all cores), on 1 replica (all cores) and on 2 replicas (one core each).
Also start-up time and memory per replica. `make -C bindings-python bench-ray` runs it."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
from conftest import ACCESS, ROOT, USER_KEY, free_port, local_cluster, model_path, processes_of, wait_until

STREAMS = 16
TOKENS = 64
ROUNDS = 3
PROMPT = [{"role": "user", "content": "Write a short story about a lighthouse."}]


def tokens_per_second(base_url: str) -> float:
    """The median over ROUNDS of the aggregate completion tokens/s of STREAMS concurrent streams."""
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

    one(0)  # warm-up
    rates = []
    with ThreadPoolExecutor(STREAMS) as pool:
        for _ in range(ROUNDS):
            start = time.monotonic()
            total = sum(pool.map(one, range(STREAMS)))
            rates.append(total / (time.monotonic() - start))
    return statistics.median(rates)


def memory_mib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in MiB; PSS shares the mmapped model file among the replicas."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":")
        fields[name] = int(value.split()[0])
    return fields["Rss"] // 1024, fields["Pss"] // 1024


def bench_server(model: str) -> float:
    binary = ROOT / "target" / "release" / "modelservice-server"
    port = free_port()
    args = [str(binary), "--model", model, "--access-name", ACCESS, "--slots", "8", "--context-length", "1024"]
    args += ["--threads", "2", "--listen", f"127.0.0.1:{port}"]
    server = subprocess.Popen(args, env={**os.environ, "MODELSERVICE_API_KEYS": USER_KEY}, stdout=subprocess.DEVNULL)
    try:
        api = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=USER_KEY, max_retries=0)

        def up() -> bool:
            try:
                return bool(api.models.list().data)
            except openai.APIConnectionError:
                return False

        wait_until("the server", up, timeout=60)
        return tokens_per_second(f"http://127.0.0.1:{port}/v1")
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    model = model_path()
    rows = [("single-process server, threads 2, slots 8", bench_server(model))]
    with local_cluster(replicas=1, num_cpus=2) as cluster:
        print(f"start-up (ray.init to the first answer, 1 replica): {cluster.started_s:.1f} s", flush=True)
        rows.append(("Ray Serve, 1 replica x 2 CPUs (threads 2)", tokens_per_second(cluster.base_url)))
        cluster.num_cpus = 1
        start = time.monotonic()
        cluster.deploy(replicas=2)
        print(f"redeploy to 2 replicas x 1 CPU: {time.monotonic() - start:.1f} s", flush=True)
        rows.append(("Ray Serve, 2 replicas x 1 CPU (threads 1 each)", tokens_per_second(cluster.base_url)))
        for replica in cluster.replicas():
            rss, pss = memory_mib(replica["pid"])
            print(f"replica pid {replica['pid']}: RSS {rss} MiB, PSS {pss} MiB", flush=True)
        total_pss = sum(memory_mib(pid)[1] for pid in processes_of(cluster.temp_dir))
        print(f"every process of the cluster (not this driver): PSS {total_pss} MiB", flush=True)
    print(f"\n| setup ({STREAMS} streams x {TOKENS} tokens) | tokens/s |\n|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:.0f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
