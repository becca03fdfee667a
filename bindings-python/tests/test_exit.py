"""A program that exits while the engine decodes exits cleanly: no crash when the interpreter
and then llama.cpp's static destructors go away under worker threads that are mid-step."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, threading
    from modelservice import OpenAI

    spec = {"name": "x", "access_name": "u/exit", "model": sys.argv[1], "context_length": 1024,
            "slots": 2, "instances": 2, "threads": int(sys.argv[2])}
    client = OpenAI(services=[spec])
    params = {"model": "u/exit", "messages": [{"role": "user", "content": "Write a long story."}],
              "max_tokens": 900, "logit_bias": {"0": -100, "2": -100}}
    # A whole answer on a daemon thread, and a stream on this one: both mid-generation at exit.
    threading.Thread(target=lambda: client.chat.completions.create(**params), daemon=True).start()
    stream = client.chat.completions.create(stream=True, **params)
    for _, chunk in zip(range(4), stream):
        pass
    print("exiting mid-decode", flush=True)
    """
)


@pytest.mark.parametrize("threads", [1, 2])
def test_exit_while_decoding_is_clean(model_path: str, threads: int) -> None:
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, model_path, str(threads)], capture_output=True, text=True, timeout=300
        )
        assert out.stdout.strip() == "exiting mid-decode", out.stderr
        assert out.returncode == 0, f"exit status {out.returncode}: {out.stderr[-2000:]}"
