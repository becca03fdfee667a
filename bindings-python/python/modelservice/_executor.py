"""The threads that wait on the engine for `AsyncOpenAI`, so the event loop never blocks.

Each wait is short (`POLL_SECONDS`) and happens with the GIL released; between waits the
awaiting task can be cancelled, which drops the engine's stream and stops generation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

POLL_SECONDS = 0.1

_executor: Optional[ThreadPoolExecutor] = None
_lock = threading.Lock()


def executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="modelservice")
        return _executor
