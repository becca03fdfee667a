"""The package as users install it: `pip install ./bindings-python` (PEP 517, maturin) into a new
virtual environment, then a chat completion on the real model from that environment, decoded by a
CPU backend module the wheel carries."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

from conftest import ACCESS, ROOT, SMALL

SCRIPT = f"""
import sys

from modelservice import OpenAI

client = OpenAI(services=[{{"name": "test", "access_name": "{ACCESS}", "model": sys.argv[1], **{SMALL!r}}}])
r = client.chat.completions.create(
    model="{ACCESS}", messages=[{{"role": "user", "content": "Say hi."}}], max_tokens=8, temperature=0
)
backend = client.services.retrieve("{ACCESS}").cpu_backend
print(backend["variant"], r.usage.completion_tokens, r.choices[0].message.content)
"""


def test_pip_install_from_a_source_checkout(tmp_path: Path, model_path: str) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # pip builds in place, so maturin reuses the workspace's target/ instead of rebuilding llama.cpp.
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT / "bindings-python")],
        check=True,
        timeout=1200,
    )
    installed = subprocess.run(
        [python, "-c", "import modelservice, sys; print(modelservice.__file__)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # The installed copy is used, not the checkout's editable one.
    assert installed.strip().startswith(str(env_dir)), installed
    out = subprocess.run(
        [python, "-c", SCRIPT, model_path], check=True, capture_output=True, text=True, timeout=300
    ).stdout
    variant, tokens, text = out.strip().split(" ", 2)
    assert 0 < int(tokens) <= 8
    assert text.strip(), out
    # The wheel carries llama.cpp's CPU backend modules, and one of them was loaded from it.
    package = Path(installed.strip()).parent
    modules = sorted(p.name for p in package.glob("libggml-cpu-*.so"))
    assert f"libggml-cpu-{variant}.so" in modules, (variant, modules)
    for library in ("libllama.so.0", "libllama-common.so.0", "libggml.so.0", "libggml-base.so.0"):
        assert (package / library).is_file(), library
