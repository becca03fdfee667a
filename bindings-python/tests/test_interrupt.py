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

    # Python leaves SIGINT ignored if it started that way (e.g. under a background shell job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    spec = {"name": "t", "access_name": "u/t", "model": sys.argv[1], "context_length": 1024, "threads": 1}
    client = OpenAI(services=[spec])
    params = endless(client, "u/t")

    def interrupt_soon():
        before = client.services.retrieve("u/t").stats.decode_steps
        while client.services.retrieve("u/t").stats.decode_steps < before + 3:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    # A whole completion, then a stream being iterated: Ctrl-C stops both.
    threading.Thread(target=interrupt_soon, daemon=True).start()
    try:
        client.chat.completions.create(model="u/t", messages=user("Write a long essay."), **params)
        print("finished")
    except KeyboardInterrupt:
        assert_generation_stopped(client, "u/t")
        print("interrupted", client.services.retrieve("u/t").stats.decode_steps)

    before = client.services.retrieve("u/t").stats.decode_steps
    threading.Thread(target=interrupt_soon, daemon=True).start()
    try:
        stream = client.chat.completions.create(model="u/t", messages=user("Another essay."), stream=True, **params)
        for chunk in stream:
            pass
        print("finished")
    except KeyboardInterrupt:
        assert_generation_stopped(client, "u/t")
        print("interrupted", client.services.retrieve("u/t").stats.decode_steps - before)
    """
)


def test_ctrl_c_interrupts_a_generation(model_path: str) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", SCRIPT, model_path, here], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["interrupted", "interrupted"], out.stdout
    # 900 tokens were asked for each time; both stopped long before.
    assert all(int(line.split()[1]) < 600 for line in lines), out.stdout
