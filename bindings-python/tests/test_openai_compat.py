"""Our objects are faithful to the real `openai` package's types, and our declarations are
tied to the core's: request parameters, response fields, optional SDK fields."""

from __future__ import annotations

import inspect
import typing

import openai
import pytest
from conftest import ACCESS, user
from modelservice import OpenAI, _client, types
from openai.types import Completion as SdkTextCompletion
from openai.types import CompletionChoice as SdkTextChoice
from openai.types import CompletionUsage as SdkUsage
from openai.types import Model as SdkModel
from openai.types.chat import ChatCompletion as SdkCompletion
from openai.types.chat import ChatCompletionChunk as SdkChunk
from openai.types.chat import ChatCompletionMessage as SdkMessage
from openai.types.chat.chat_completion import Choice as SdkChoice
from openai.types.chat.chat_completion_chunk import Choice as SdkChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta as SdkDelta
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall as SdkDeltaToolCall
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCallFunction as SdkDeltaToolCallFunction
from openai.types.chat.chat_completion_message_function_tool_call import (
    ChatCompletionMessageFunctionToolCall as SdkToolCall,
)
from openai.types.chat.chat_completion_message_function_tool_call import Function as SdkFunction
from openai.types.completion_choice import Logprobs as SdkTextLogprobs
from openai.types.completion_usage import PromptTokensDetails as SdkPromptTokensDetails


def test_completion_validates_as_the_sdk_type(client: OpenAI) -> None:
    r = client.chat.completions.create(model=ACCESS, messages=user("hi"), max_tokens=8, n=2)
    sdk = SdkCompletion.model_validate(r.model_dump())
    assert sdk.choices[1].message.content == r.choices[1].message.content
    assert sdk.usage is not None and r.usage is not None and sdk.usage.total_tokens == r.usage.total_tokens
    SdkCompletion.model_validate_json(r.model_dump_json())
    # And back: an SDK message is accepted in `messages`.
    again = client.chat.completions.create(
        model=ACCESS, messages=[*user("hi"), sdk.choices[0].message, *user("ok")], max_tokens=4
    )
    assert again.choices[0].message.content is not None


def test_cached_prompt_tokens_are_reported_as_the_sdk_reads_them(client: OpenAI) -> None:
    system = [{"role": "system", "content": "You answer questions about the sea in one sentence. " * 6}]

    def ask(question: str) -> types.ChatCompletion:
        return client.chat.completions.create(
            model=ACCESS, messages=[*system, *user(question)], max_tokens=2, temperature=0
        )

    first = ask("What is a wave?")
    second = SdkCompletion.model_validate(ask("What is a tide?").model_dump())
    # The first one finds at most the template's opening tokens cached (earlier tests' prompts);
    # the second starts from the system prompt the first one left in the cache.
    assert first.usage is not None and second.usage is not None
    assert second.usage.prompt_tokens_details is not None
    before = first.usage.prompt_tokens_details.cached_tokens
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached is not None
    assert before < first.usage.prompt_tokens // 2 < cached < second.usage.prompt_tokens, (before, cached)


def test_chunks_validate_as_the_sdk_type(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model=ACCESS, messages=user("hi"), max_tokens=8, stream=True, stream_options={"include_usage": True}
    )
    chunks = [SdkChunk.model_validate(c.model_dump()) for c in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].usage is not None and chunks[-1].choices == []


def test_text_completions_validate_as_the_sdk_type(client: OpenAI) -> None:
    r = client.completions.create(model=ACCESS, prompt=["Hi", "Yo"], max_tokens=4, logprobs=2)
    sdk = SdkTextCompletion.model_validate(r.model_dump())
    assert [c.text for c in sdk.choices] == [c.text for c in r.choices]
    assert sdk.choices[0].logprobs is not None and sdk.choices[0].logprobs.tokens == r.choices[0].logprobs.tokens  # type: ignore[union-attr]
    for chunk in client.completions.create(model=ACCESS, prompt="Hi", max_tokens=4, stream=True):
        # Chunks are `Completion`s too (the SDK's stream type); only the last one has a finish reason.
        SdkTextCompletion.model_validate({**chunk.model_dump(), "choices": []})
        for c in chunk.choices:
            if c.finish_reason:
                SdkTextChoice.model_validate(c.model_dump())


def test_models_validate_as_the_sdk_type(client: OpenAI) -> None:
    for m in client.models.list():
        assert SdkModel.model_validate(m.model_dump()).id == m.id


PAIRS = [
    (types.ChatCompletion, SdkCompletion),
    (types.Choice, SdkChoice),
    (types.ChatCompletionMessage, SdkMessage),
    (types.CompletionUsage, SdkUsage),
    (types.PromptTokensDetails, SdkPromptTokensDetails),
    (types.ChatCompletionChunk, SdkChunk),
    (types.ChunkChoice, SdkChunkChoice),
    (types.ChoiceDelta, SdkDelta),
    (types.Model, SdkModel),
    (types.Completion, SdkTextCompletion),
    (types.CompletionChoice, SdkTextChoice),
    (types.Logprobs, SdkTextLogprobs),
    (types.ChatCompletionMessageToolCall, SdkToolCall),
    (types.Function, SdkFunction),
    (types.ChoiceDeltaToolCall, SdkDeltaToolCall),
    (types.ChoiceDeltaToolCallFunction, SdkDeltaToolCallFunction),
]


@pytest.mark.parametrize(("ours", "sdk"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_declared_fields_exist_in_the_sdk(ours: type, sdk: type) -> None:
    fields = set(typing.get_type_hints(ours)) - {"_nested", "_fields"}
    assert fields <= set(sdk.model_fields), fields - set(sdk.model_fields)  # type: ignore[attr-defined]


def _walk(obj: types.OpenAIObject) -> None:
    """Every field the core sent is declared on its class, recursively."""
    declared = set(typing.get_type_hints(type(obj)))
    assert set(obj.model_dump()) <= declared, (type(obj).__name__, set(obj.model_dump()) - declared)
    for key in obj.model_dump():
        value = getattr(obj, key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, types.OpenAIObject):
                _walk(item)


def test_core_output_is_declared(client: OpenAI) -> None:
    _walk(client.chat.completions.create(model=ACCESS, messages=user("hi"), max_tokens=4))
    for chunk in client.chat.completions.create(
        model=ACCESS, messages=user("hi"), max_tokens=4, stream=True, stream_options={"include_usage": True}
    ):
        _walk(chunk)
    _walk(client.completions.create(model=ACCESS, prompt="hi", max_tokens=4, logprobs=1))
    _walk(client.models.list())
    for service in client.services.list():
        _walk(service)


def test_create_parameters_are_the_core_request_fields() -> None:
    sdk_params = set(inspect.signature(openai.resources.chat.Completions.create).parameters) - {"self"}
    # create() takes the generated request TypedDicts (the core's fields) and the SDK's request options.
    ours = set(types.ChatCompletionCreateParams.__annotations__) | {"stream"}
    assert ours == set(types.ChatCompletionCreateParamsStreaming.__annotations__)
    assert set(_client.RequestOptions.__annotations__) <= sdk_params
    # Every field the engine declares is the SDK's, but for llama.cpp sampling knobs the SDK lacks.
    assert ours - sdk_params == {"top_k", "min_p", "repeat_penalty"}


def test_text_completion_parameters_are_the_core_request_fields() -> None:
    sdk_params = set(inspect.signature(openai.resources.Completions.create).parameters) - {"self"}
    ours = set(types.CompletionCreateParams.__annotations__) | {"stream"}
    assert ours == set(types.CompletionCreateParamsStreaming.__annotations__)
    assert ours - sdk_params == {"top_k", "min_p", "repeat_penalty"}


def test_error_classes_are_named_like_the_sdk() -> None:
    import modelservice

    for name in ["APIError", "APIStatusError", "BadRequestError", "AuthenticationError", "NotFoundError",
                 "ConflictError", "RateLimitError", "InternalServerError", "OpenAIError"]:  # fmt: skip
        ours, theirs = getattr(modelservice, name), getattr(openai, name)
        # Same place in the hierarchy as in the SDK.
        our_bases = [b.__name__ for b in ours.__mro__ if b.__module__ == "modelservice"]
        their_bases = [b.__name__ for b in theirs.__mro__ if b.__module__.startswith("openai")]
        assert [b.replace("ModelServiceError", "OpenAIError") for b in our_bases] == their_bases
