"""Ctrl-C interrupts a long generation with KeyboardInterrupt, and the engine stops it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    sys.path.insert(0, sys.argv[2])
    from conftest import endless, assert_generation_stopped, user
    from modelservice import OpenAI

    spec = {"name": "t", "access_name": "u/t", "model": sys.argv[1], "context_length": 1024, "threads": 1}
    client = OpenAI(services=[spec])
    params = endless(client, "u/t")

    def interrupt():
        while client.services.retrieve("u/t").stats.decode_steps < 3:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    try:
        client.chat.completions.create(model="u/t", messages=user("Write a long essay."), **params)
        print("finished")
    except KeyboardInterrupt:
        assert_generation_stopped(client, "u/t")
        print("interrupted", client.services.retrieve("u/t").stats.decode_steps)
    """
)


def test_ctrl_c_interrupts_a_generation(model_path: str) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", SCRIPT, model_path, here], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert words[0] == "interrupted", out.stdout
    # 900 tokens were asked for; it stopped long before.
    assert int(words[1]) < 600
