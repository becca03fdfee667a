"""Service management from Python: deploy, list, retrieve, scale, delete; shared registries."""

from __future__ import annotations

import pytest
from conftest import ACCESS, user
from modelservice import BadRequestError, NotFoundError, OpenAI, Registry, Service, ServiceList


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
