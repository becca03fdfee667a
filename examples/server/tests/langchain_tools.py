"""LangChain's `ChatOpenAI(...).bind_tools([...])` against the server: the tools go out in
OpenAI's shape, the answer's `tool_calls` come back parsed (name, arguments, id), the result goes
back as a `ToolMessage`, and streamed chunks add up to the same call.

Reads MODELSERVICE_BASE_URL, MODELSERVICE_API_KEY and MODELSERVICE_MODEL; prints one JSON object
with what it saw, for tests/http.rs to check. Exits non-zero on any failure.
"""

import json
import os

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI


def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return json.dumps({"city": city, "temp_c": 18})


llm = ChatOpenAI(
    base_url=os.environ["MODELSERVICE_BASE_URL"],
    api_key=os.environ["MODELSERVICE_API_KEY"],
    model=os.environ["MODELSERVICE_MODEL"],
    temperature=0,
    max_tokens=80,
    max_retries=0,
)
bound = llm.bind_tools([get_weather], tool_choice="get_weather", parallel_tool_calls=False)
question = HumanMessage("What is the weather like in Paris today?")

message = bound.invoke([question])
call = message.tool_calls[0]
result = ToolMessage(get_weather(**call["args"]), tool_call_id=call["id"])
answer = llm.invoke([question, message, result])

streamed = None
for chunk in bound.stream([question]):
    streamed = chunk if streamed is None else streamed + chunk
assert streamed is not None

print(
    json.dumps(
        {
            "calls": [{"name": c["name"], "args": c["args"], "id": c["id"]} for c in message.tool_calls],
            "invalid": [str(c) for c in message.invalid_tool_calls],
            "answer": answer.content,
            "streamed": [{"name": c["name"], "args": c["args"]} for c in streamed.tool_calls],
        }
    )
)
