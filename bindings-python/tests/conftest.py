"""Fixtures: the real SmolLM2 model (fetched by the project's script) deployed once per session."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modelservice import OpenAI

ROOT = Path(__file__).resolve().parents[2]
ACCESS = "u-8105f7322477/test"
# Small settings keep the suite quick on two cores. One thread per service: llama.cpp's
# threads spin-wait on each other, which turns slow when other processes share the cores.
SMALL = {"context_length": 1024, "slots": 4, "threads": 1}
SERVICE = {"name": "test", "access_name": ACCESS, **SMALL}
EMBEDDER = "e/minilm"


@pytest.fixture(scope="session")
def model_path() -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "fetch-models"), "smollm2"], check=True, capture_output=True, text=True
    ).stdout
    name, path = out.strip().split("\t")
    assert name == "smollm2"
    return path


def fetch_model(name: str) -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "fetch-models"), name], check=True, capture_output=True, text=True
    ).stdout
    got, path = out.strip().split("\t")
    assert got == name
    return path


@pytest.fixture(scope="session")
def embedder(client: OpenAI) -> str:
    """The real all-MiniLM-L6-v2 embedding model, deployed once as `e/minilm`."""
    client.services.deploy(name="minilm", access_name=EMBEDDER, model=fetch_model("minilm"), threads=1)
    return EMBEDDER


@pytest.fixture(scope="session")
def client(model_path: str) -> OpenAI:
    return OpenAI(services=[{**SERVICE, "model": model_path}], api_key="unused")


@pytest.fixture
def fresh_service(client: OpenAI, model_path: str) -> Iterator[str]:
    """A service of its own, so its engine counters start at zero."""
    name = f"fresh-{time.monotonic_ns()}"
    client.services.deploy(name=name, access_name=f"t/{name}", model=model_path, **SMALL)
    yield f"t/{name}"
    client.services.delete(f"t/{name}", confirm=name)


def endless(client: OpenAI, access_name: str) -> dict[str, Any]:
    """Request parameters for a generation that runs to `max_tokens`: end-of-turn tokens banned."""
    bias = {}
    for special in ("<|im_end|>", "<|endoftext|>"):
        token = client.registry.tokenize(access_name, special)[-1]
        bias[str(token)] = -100
    return {"logit_bias": bias, "max_tokens": 900, "temperature": 0}


def decode_steps(client: OpenAI, access_name: str) -> int:
    return client.services.retrieve(access_name).stats.decode_steps


def assert_generation_stopped(client: OpenAI, access_name: str) -> None:
    """Once a generation is cancelled its slot is freed within a step: the counter stops moving."""
    time.sleep(0.3)
    before = decode_steps(client, access_name)
    time.sleep(0.5)
    assert decode_steps(client, access_name) == before, "the engine kept decoding after cancellation"


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
