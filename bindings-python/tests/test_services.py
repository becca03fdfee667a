"""Service management from Python: deploy, list, retrieve, scale, delete; shared registries."""

from __future__ import annotations

import asyncio

import pytest
from conftest import ACCESS, user
from modelservice import (
    AsyncOpenAI,
    BadRequestError,
    NotFoundError,
    OpenAI,
    Registry,
    Service,
    ServiceList,
    ServiceMetrics,
    ServiceMetricsList,
)


def test_deploy_scale_delete(client: OpenAI, model_path: str) -> None:
    loads = Registry.model_loads()
    info = client.services.deploy(
        name="Managed", access_name="u-1/managed", model=model_path, context_length=512, slots=2, threads=1
    )
    assert Registry.model_loads() == loads + 1
    assert isinstance(info, Service)
    # The product page's fields: service ID, name, access name, base model, instance count, status.
    assert info.id and info.name == "Managed" and info.access_name == "u-1/managed"
    assert info.base_model.architecture == "llama" and info.base_model.quantization == "Q4_1"
    assert info.base_model.path == model_path
    assert info.instances == 1 and info.status == "running"
    assert info.slots_per_instance == 2 and info.context_length == 512
    services = client.services.list()
    assert isinstance(services, ServiceList) and services.object == "list"
    assert [s.access_name for s in services] == [s.access_name for s in services.data]
    assert "u-1/managed" in [s.access_name for s in services]
    assert "u-1/managed" in [m.id for m in client.models.list()]
    assert client.models.retrieve("u-1/managed").owned_by == "modelservice"

    scaled = client.services.scale("u-1/managed", 2)
    assert scaled.instances == 2 and scaled.id == info.id
    assert Registry.model_loads() == loads + 1, "scaling reloaded the model"
    r = client.chat.completions.create(model="u-1/managed", messages=user("hi"), max_tokens=4)
    assert r.model == "u-1/managed"
    retrieved = client.services.retrieve("u-1/managed")
    assert retrieved.instances == 2 and retrieved.usage.requests >= 1
    assert client.services.scale("u-1/managed", 1).instances == 1

    with pytest.raises(BadRequestError) as e:
        client.services.delete("u-1/managed", confirm="wrong name")
    assert e.value.param == "confirm"
    deleted = client.services.delete("u-1/managed", confirm="Managed")
    assert deleted.id == info.id
    with pytest.raises(NotFoundError):
        client.services.retrieve("u-1/managed")
    with pytest.raises(NotFoundError):
        client.chat.completions.create(model="u-1/managed", messages=user("hi"))
    assert "u-1/managed" not in [m.id for m in client.models.list()]


def test_clients_share_a_registry(client: OpenAI) -> None:
    other = OpenAI(registry=client, api_key="sk-ignored", base_url="https://example.invalid/v1/")
    assert other.registry is client.registry
    assert other.api_key == "sk-ignored"
    assert [s.id for s in other.services.list()] == [s.id for s in client.services.list()]
    r = other.chat.completions.create(model=ACCESS, messages=user("hi"), max_tokens=4)
    assert r.usage is not None and r.usage.completion_tokens > 0
    with OpenAI(registry=client.registry) as third:
        assert ACCESS in [m.id for m in third.models.list()]
    # A client of its own starts with no services.
    assert list(OpenAI().models.list()) == []


def test_metrics_count_requests_tokens_and_first_tokens(client: OpenAI, fresh_service: str) -> None:
    prompt_tokens = completion_tokens = 0
    for i in range(3):
        r = client.chat.completions.create(model=fresh_service, messages=user(f"Say {i}"), max_tokens=5, n=1 + i % 2)
        assert r.usage is not None
        prompt_tokens += r.usage.prompt_tokens
        completion_tokens += r.usage.completion_tokens
    text = client.completions.create(model=fresh_service, prompt=["One, two,", "A, B,"], max_tokens=3)
    assert text.usage is not None
    prompt_tokens += text.usage.prompt_tokens
    completion_tokens += text.usage.completion_tokens
    with pytest.raises(BadRequestError):
        client.chat.completions.create(model=fresh_service, messages=user("hi"), max_tokens=4, temperature=-1)

    metrics = client.services.metrics(fresh_service)
    assert isinstance(metrics, ServiceMetricsList) and len(metrics.data) == 1
    m = metrics.data[0]
    assert isinstance(m, ServiceMetrics) and m.access_name == fresh_service
    assert m.requests == {"200": 4}, m.requests  # refused by validation before routing: not the service's
    assert (m.prompt_tokens, m.completion_tokens) == (prompt_tokens, completion_tokens)
    assert m.time_to_first_token.count == 4 == sum(m.time_to_first_token.counts)
    assert m.latency.count == 4 and m.latency.sum_seconds > 0
    assert m.queue_depth == 0 and m.instances == 1
    assert fresh_service in [s.access_name for s in client.services.metrics()]
    with pytest.raises(NotFoundError):
        client.services.metrics("t/no-such-service")


def test_async_metrics(client: OpenAI, fresh_service: str) -> None:
    async def run() -> tuple[ServiceMetrics, ServiceMetrics]:
        async_client = AsyncOpenAI(registry=client)
        before = (await async_client.services.metrics(fresh_service)).data[0]
        await async_client.chat.completions.create(model=fresh_service, messages=user("hi"), max_tokens=3)
        return before, (await async_client.services.metrics(fresh_service)).data[0]

    before, after = asyncio.run(run())
    assert before.requests == {} and before.time_to_first_token.count == 0
    assert after.requests == {"200": 1} and after.time_to_first_token.count == 1
