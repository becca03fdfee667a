"""Tool calling through the in-process `OpenAI` / `AsyncOpenAI` drop-ins on the real SmolLM2
(its template ignores tools: the generic fallback serves them): calls the real SDK's types
accept, a tool-result round trip, and streamed deltas that rebuild the call."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from conftest import ACCESS
from modelservice import AsyncOpenAI, BadRequestError, OpenAI
from openai.types.chat import ChatCompletion as SdkCompletion
from openai.types.chat import ChatCompletionChunk as SdkChunk

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 30}},
            "required": ["city"],
        },
    },
}
ASK: Any = [{"role": "user", "content": "What is the weather like in Paris today?"}]
SETTINGS: Any = {"temperature": 0, "max_tokens": 80, "parallel_tool_calls": False}


def test_required_call_round_trip(client: OpenAI) -> None:
    r = client.chat.completions.create(model=ACCESS, messages=ASK, tools=[WEATHER], tool_choice="required", **SETTINGS)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)
    # The real SDK's types accept the answer.
    sdk = SdkCompletion.model_validate(r.model_dump())
    assert sdk.choices[0].message.tool_calls is not None
    assert sdk.choices[0].message.tool_calls[0].function.arguments == call.function.arguments  # type: ignore[union-attr]

    # The message goes back into the conversation as it is, with the tool's result.
    messages: Any = [*ASK, choice.message, {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18}'}]
    answer = client.chat.completions.create(
        model=ACCESS, messages=messages, tools=[WEATHER], tool_choice="none", **SETTINGS
    )
    assert answer.choices[0].message.tool_calls is None
    assert answer.choices[0].message.content
    # The call and its result are in the prompt: longer than the question alone.
    plain = client.chat.completions.create(
        model=ACCESS, messages=ASK, tools=[WEATHER], tool_choice="none", max_tokens=1
    )
    assert answer.usage is not None and plain.usage is not None
    assert answer.usage.prompt_tokens > plain.usage.prompt_tokens + 20


def test_streamed_deltas_rebuild_the_call(client: OpenAI) -> None:
    named: Any = {"type": "function", "function": {"name": "get_weather"}}
    whole = client.chat.completions.create(model=ACCESS, messages=ASK, tools=[WEATHER], tool_choice=named, **SETTINGS)
    assert whole.choices[0].finish_reason == "stop"  # a named choice finishes as OpenAI reports it
    calls: dict[int, dict[str, str]] = {}
    for chunk in client.chat.completions.create(
        model=ACCESS, messages=ASK, tools=[WEATHER], tool_choice=named, stream=True, **SETTINGS
    ):
        SdkChunk.model_validate(chunk.model_dump())
        for delta in chunk.choices[0].delta.tool_calls or []:
            if delta.id is not None:
                assert delta.function is not None and delta.function.arguments == ""
                calls[delta.index] = {"name": delta.function.name or "", "arguments": ""}
            elif delta.function is not None:
                calls[delta.index]["arguments"] += delta.function.arguments or ""
    assert whole.choices[0].message.tool_calls is not None
    expected = [
        {"name": c.function.name, "arguments": c.function.arguments} for c in whole.choices[0].message.tool_calls
    ]
    assert list(calls.values()) == expected


def test_async_client_calls_tools(client: OpenAI) -> None:
    async def run() -> None:
        aclient = AsyncOpenAI(registry=client)
        r = await aclient.chat.completions.create(
            model=ACCESS, messages=ASK, tools=[WEATHER], tool_choice="required", **SETTINGS
        )
        assert r.choices[0].message.tool_calls and r.choices[0].message.tool_calls[0].function.name == "get_weather"

    asyncio.run(run())


def test_tool_errors_are_bad_requests(client: OpenAI) -> None:
    named: Any = {"type": "function", "function": {"name": "nope"}}
    with pytest.raises(BadRequestError) as e:
        client.chat.completions.create(model=ACCESS, messages=ASK, tools=[WEATHER], tool_choice=named)
    assert e.value.param == "tool_choice"
