"""LangChain's OpenAI integration (`langchain-openai`) against the server, as its documentation shows:
structured output with `ChatOpenAI(...).with_structured_output(PydanticModel)` (method `json_schema`,
which sends `response_format: {"type": "json_schema", ...}`), and `OpenAIEmbeddings` against the
MiniLM embedding service.

`OpenAIEmbeddings` is built with `check_embedding_ctx_length=False`: by default it first splits
each text into tiktoken (`cl100k_base`) token ids and sends those arrays. The server takes token
arrays, but as ids of the served model's own vocabulary (MiniLM's 30,522 WordPiece tokens), so
OpenAI-vocabulary ids would be refused or embed the wrong words; tiktoken would also download its
vocabulary file at run time. With the flag, LangChain sends the texts.

Reads MODELSERVICE_BASE_URL, MODELSERVICE_API_KEY, MODELSERVICE_MODEL and MODELSERVICE_EMBEDDER;
prints one JSON object with what it saw, for tests/http.rs to check. Exits non-zero on any failure.
"""

import json
import math
import os

import langchain_openai
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel, Field

base_url = os.environ["MODELSERVICE_BASE_URL"]
api_key = os.environ["MODELSERVICE_API_KEY"]


class Person(BaseModel):
    """A person: their name and their age in years."""

    name: str = Field(max_length=40)
    age: int


llm = ChatOpenAI(
    model=os.environ["MODELSERVICE_MODEL"], base_url=base_url, api_key=api_key, temperature=0, max_tokens=96
)
structured = llm.with_structured_output(Person, method="json_schema", include_raw=True)
answer = structured.invoke("Describe a person as JSON.")
person = answer["parsed"]
assert isinstance(person, Person), answer

embeddings = OpenAIEmbeddings(
    model=os.environ["MODELSERVICE_EMBEDDER"], base_url=base_url, api_key=api_key, check_embedding_ctx_length=False
)
texts = ["A man is eating food.", "A man is eating a piece of bread.", "The new movie is awesome."]
vectors = embeddings.embed_documents(texts)
query = embeddings.embed_query(texts[0])


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


print(
    json.dumps(
        {
            "version": langchain_openai.__version__ if hasattr(langchain_openai, "__version__") else None,
            "person": person.model_dump(),
            "raw": answer["raw"].content,
            "dims": [len(v) for v in vectors],
            "query_equals_document": max(abs(a - b) for a, b in zip(query, vectors[0])),
            "paraphrase": cosine(vectors[0], vectors[1]),
            "unrelated": cosine(vectors[0], vectors[2]),
        }
    )
)
