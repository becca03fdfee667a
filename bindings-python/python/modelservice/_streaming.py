"""Streams of chat completion chunks, sync and async. Closing a stream, leaving its `with`
block or breaking out of a loop over it drops the engine's stream, which stops generation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Optional

from . import _native
from ._executor import POLL_SECONDS, executor
from .types import ChatCompletionChunk

__all__ = ["Stream", "AsyncStream"]


class Stream:
    """`create(..., stream=True)`: an iterator of :class:`ChatCompletionChunk`."""

    def __init__(self, native: _native.ResponseStream) -> None:
        self._native = native

    @property
    def id(self) -> str:
        """The completion's ID, shared by all its chunks."""
        return self._native.id

    def __next__(self) -> ChatCompletionChunk:
        data = self._native.next()
        if data is None:
            raise StopIteration
        return ChatCompletionChunk.from_json(data)

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        # A generator, so that breaking out of a `for` loop closes the stream when the loop
        # lets go of it, even while the Stream object itself stays referenced.
        try:
            while True:
                data = self._native.next()
                if data is None:
                    return
                yield ChatCompletionChunk.from_json(data)
        finally:
            self._native.close()

    def close(self) -> None:
        """Stops the generation and frees its slot."""
        self._native.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


class AsyncStream:
    """`await create(..., stream=True)` on `AsyncOpenAI`: an async iterator of chunks."""

    def __init__(self, native: _native.ResponseStream) -> None:
        self._native = native

    @property
    def id(self) -> str:
        """The completion's ID, shared by all its chunks."""
        return self._native.id

    async def _next(self) -> Optional[str]:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await loop.run_in_executor(executor(), self._native.poll, POLL_SECONDS)
                if data != "":
                    return data
        except asyncio.CancelledError:
            # The awaiting task was cancelled: stop generating for it.
            self._native.close()
            raise

    async def __anext__(self) -> ChatCompletionChunk:
        data = await self._next()
        if data is None:
            raise StopAsyncIteration
        return ChatCompletionChunk.from_json(data)

    async def _iterate(self) -> AsyncIterator[ChatCompletionChunk]:
        try:
            while True:
                data = await self._next()
                if data is None:
                    return
                yield ChatCompletionChunk.from_json(data)
        finally:
            self._native.close()

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self._iterate()

    async def close(self) -> None:
        """Stops the generation and frees its slot."""
        self._native.close()

    async def aclose(self) -> None:
        """Same as :meth:`close`."""
        self._native.close()

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self._native.close()
