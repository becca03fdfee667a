"""The official `openai` package against the server, used exactly as its documentation shows.

Reads MODELSERVICE_BASE_URL, MODELSERVICE_API_KEY and MODELSERVICE_MODEL; prints one JSON object
with what it saw, for tests/http.rs to check. Exits non-zero on any failure.
"""

import json
import os

import openai
from openai import OpenAI

base_url = os.environ["MODELSERVICE_BASE_URL"]
model = os.environ["MODELSERVICE_MODEL"]

client = OpenAI(base_url=base_url, api_key=os.environ["MODELSERVICE_API_KEY"])
messages = [
    {"role": "user", "content": "hello!"},
    {"role": "user", "content": "Say this is test?"},
]

response = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=24)
content = response.choices[0].message.content

pieces = []
stream = client.chat.completions.create(
    model=model, messages=messages, temperature=0, max_tokens=24, stream=True
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)

# Legacy text completions: the default budget (16 tokens), a stream, legacy log probabilities.
text = client.completions.create(model=model, prompt="The capital of France is", temperature=0, logprobs=2)
text_pieces = []
for chunk in client.completions.create(model=model, prompt="The capital of France is", temperature=0, stream=True):
    text_pieces.extend(c.text for c in chunk.choices if c.text)
completions = {
    "object": text.object,
    "text": text.choices[0].text,
    "pieces": text_pieces,
    "finish_reason": text.choices[0].finish_reason,
    "completion_tokens": text.usage.completion_tokens,
    "tokens": text.choices[0].logprobs.tokens,
}

models = [m.id for m in client.models.list()]
retrieved = client.models.retrieve(model).id

# The SDK's own exception classes must come out of the server's error envelopes.
errors = {}
try:
    OpenAI(base_url=base_url, api_key="wrong-key", max_retries=0).models.list()
except openai.AuthenticationError as e:
    errors["auth"] = [e.status_code, e.body.get("type") if isinstance(e.body, dict) else None]
try:
    client.chat.completions.create(model="no/such-model", messages=messages)
except openai.NotFoundError as e:
    errors["not_found"] = [e.status_code, e.code]
try:
    client.chat.completions.create(model=model, messages=messages, temperature=5)
except openai.BadRequestError as e:
    errors["bad_request"] = [e.status_code, e.param]

# Tool calling: a required call the SDK parses, its result sent back with the SDK's own message
# object, and the SDK's stream helper rebuilding the call from the deltas.
weather = {
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
ask = [{"role": "user", "content": "What is the weather like in Paris today?"}]
settings = {"temperature": 0, "max_tokens": 80, "parallel_tool_calls": False}
called = client.chat.completions.create(model=model, messages=ask, tools=[weather], tool_choice="required", **settings)
call = called.choices[0].message.tool_calls[0]
tool_result = {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18}'}
answer = client.chat.completions.create(
    model=model,
    messages=[*ask, called.choices[0].message, tool_result],
    tools=[weather],
    tool_choice="none",
    **settings,
)
with client.chat.completions.stream(
    model=model, messages=ask, tools=[weather], tool_choice="required", **settings
) as helper:
    final = helper.get_final_completion()
streamed_call = final.choices[0].message.tool_calls[0]
tools = {
    "finish_reason": called.choices[0].finish_reason,
    "content": called.choices[0].message.content,
    "id": call.id,
    "name": call.function.name,
    "arguments": json.loads(call.function.arguments),
    "answer": answer.choices[0].message.content,
    "streamed": [streamed_call.function.name, json.loads(streamed_call.function.arguments)],
    "streamed_finish_reason": final.choices[0].finish_reason,
}

# Embeddings (Python only): the SDK sends `encoding_format: "base64"` unless told otherwise and
# decodes it; the floats asked for explicitly must be the same vectors.
embeddings = {}
embedder = os.environ.get("MODELSERVICE_EMBEDDER")
if embedder:
    default = client.embeddings.create(model=embedder, input=["A man is eating food.", "A cat."])
    floats = client.embeddings.create(model=embedder, input=["A man is eating food.", "A cat."], encoding_format="float")
    pairs = zip(default.data, floats.data)
    embeddings = {
        "dims": [len(e.embedding) for e in default.data],
        "max_difference": max(abs(a - b) for d, f in pairs for a, b in zip(d.embedding, f.embedding)),
        "norm": sum(x * x for x in floats.data[0].embedding) ** 0.5,
    }

print(
    json.dumps(
        {
            "version": openai.__version__,
            "content": content,
            "finish_reason": response.choices[0].finish_reason,
            "usage": response.usage.model_dump(),
            "pieces": pieces,
            "models": models,
            "retrieved": retrieved,
            "errors": errors,
            "embeddings": embeddings,
            "completions": completions,
            "tools": tools,
        }
    )
)
