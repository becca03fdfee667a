"""Streams of completion chunks (chat, or legacy text completions), sync and async. Closing a stream, leaving its `with`
block or breaking out of a loop over it drops the engine's stream, which stops generation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Generic, Optional, TypeVar

from . import _native
from ._base import OpenAIObject
from ._executor import POLL_SECONDS, executor
from .types import ChatCompletionChunk

_Chunk = TypeVar("_Chunk", bound=OpenAIObject)

__all__ = ["Stream", "AsyncStream"]


class Stream(Generic[_Chunk]):
    """`create(..., stream=True)`: an iterator of chunks (:class:`ChatCompletionChunk`, or
    :class:`Completion` for `client.completions`)."""

    def __init__(self, native: _native.ResponseStream, chunk: type[_Chunk] = ChatCompletionChunk) -> None:  # type: ignore[assignment]
        self._native = native
        self._chunk = chunk

    @property
    def id(self) -> str:
        """The completion's ID, shared by all its chunks."""
        return self._native.id

    def __next__(self) -> _Chunk:
        data = self._native.next()
        if data is None:
            raise StopIteration
        return self._chunk.from_json(data)

    def __iter__(self) -> Iterator[_Chunk]:
        # A generator, so that breaking out of a `for` loop closes the stream when the loop
        # lets go of it, even while the Stream object itself stays referenced.
        try:
            while True:
                data = self._native.next()
                if data is None:
                    return
                yield self._chunk.from_json(data)
        finally:
            self._native.close()

    def close(self) -> None:
        """Stops the generation and frees its slot."""
        self._native.close()

    def __enter__(self) -> Stream[_Chunk]:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


class AsyncStream(Generic[_Chunk]):
    """`await create(..., stream=True)` on `AsyncOpenAI`: an async iterator of chunks."""

    def __init__(self, native: _native.ResponseStream, chunk: type[_Chunk] = ChatCompletionChunk) -> None:  # type: ignore[assignment]
        self._native = native
        self._chunk = chunk

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

    async def __anext__(self) -> _Chunk:
        data = await self._next()
        if data is None:
            raise StopAsyncIteration
        return self._chunk.from_json(data)

    async def _iterate(self) -> AsyncIterator[_Chunk]:
        try:
            while True:
                data = await self._next()
                if data is None:
                    return
                yield self._chunk.from_json(data)
        finally:
            self._native.close()

    def __aiter__(self) -> AsyncIterator[_Chunk]:
        return self._iterate()

    async def close(self) -> None:
        """Stops the generation and frees its slot."""
        self._native.close()

    async def aclose(self) -> None:
        """Same as :meth:`close`."""
        self._native.close()

    async def __aenter__(self) -> AsyncStream[_Chunk]:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self._native.close()
