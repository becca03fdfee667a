"""modelservice on Ray Serve: the services of a config run as replicas of Serve deployments,
behind one OpenAI-compatible ingress. Needs the `serve` extra (`pip install "modelservice[serve]"`).

    MODELSERVICE_API_KEYS=key1 serve run modelservice.serve:app config=config.yaml

The config lists groups of services; each group is a deployment whose every replica (one Ray
actor, one process) holds one registry with all the services of the group:

    groups:
      - name: smollm2               # the deployment's name
        num_replicas: 2             # or autoscaling_config: {min_replicas: 1, max_replicas: 4, ...}
        num_cpus: 1                 # per replica; also the default `threads` of its services
        services:                   # ServiceSpec fields, plus an optional sha256 of the model file
          - {name: test, access_name: u-8105f7322477/test, model: /models/smollm2.gguf, slots: 4}

Model files must exist at the same path on every node that may host a replica.
"""

# No `from __future__ import annotations`: FastAPI reads the route handlers' annotations (`Request`)
# through Serve's wrappers, which cannot resolve them as strings.
import asyncio
import copy
import hashlib
import hmac
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import ray
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from ray import serve
from ray.exceptions import RayActorError
from ray.serve.deployment import Deployment
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle

from . import APIStatusError, AsyncOpenAI, Registry
from ._client import _AsyncResource
from ._streaming import AsyncStream
from .types import ChatCompletionChunk

__all__ = ["app", "build", "load_config", "ServiceGroup", "OpenAIIngress", "ENV_API_KEYS", "ENV_ADMIN_KEYS"]

# The same variables as the HTTP server example: comma-separated keys, read where the ingress runs.
ENV_API_KEYS = "MODELSERVICE_API_KEYS"
ENV_ADMIN_KEYS = "MODELSERVICE_ADMIN_KEYS"
# Serve's default (20 s) would cut long generations when a replica is scaled away.
DEFAULT_GRACEFUL_SHUTDOWN_S = 300.0
# The header that names the replica that served a request (its Serve replica ID).
REPLICA_HEADER = "x-modelservice-replica"
# Tries of a request whose replica died before it sent anything (nothing reached the client yet).
START_ATTEMPTS = 3

# Keys of a group besides its services, passed to Serve as deployment options.
GROUP_OPTIONS = frozenset(
    {
        "num_replicas", "autoscaling_config", "max_ongoing_requests", "max_queued_requests",
        "graceful_shutdown_timeout_s", "health_check_period_s", "health_check_timeout_s",
    }
)  # fmt: skip


# ---------------------------------------------------------------- replicas


def _check_sha256(path: str, expected: str) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected.lower():
        raise ValueError(f"{path}: SHA-256 is {digest.hexdigest()}, the config expects {expected}")


def _split_request(body: Mapping[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """`model`, `messages` and the rest of a request, which the engine checks as it would over HTTP."""
    rest = dict(body)
    model, messages = rest.pop("model", None), rest.pop("messages", None)
    if isinstance(rest.get("stream"), bool):  # the client's `stream` argument says it
        del rest["stream"]
    return model, messages, rest


def _head(status: int, replica: str, body: Optional[Any] = None) -> dict[str, Any]:
    """The first item every replica call yields: the HTTP status and who answered."""
    return {"status": status, "replica": replica, "body": body}


def _error_event(body: Mapping[str, Any]) -> str:
    # A failure after the stream started, sent as the HTTP server example does.
    return f"data: {json.dumps(body)}\n\n"


class ServiceGroupReplica:
    """One replica of a group: one process with one registry holding every service of the group."""

    async def __init__(self, services: Sequence[Mapping[str, Any]]) -> None:  # type: ignore[misc]  # Serve awaits it
        # Ray only accounts CPUs; our default `threads` (every core of the node) would make each
        # replica spin all cores, so a service gets the replica's share unless its spec says otherwise.
        resources = ray.get_runtime_context().get_assigned_resources()  # type: ignore[no-untyped-call]
        cpus = float(resources.get("CPU", 1.0))
        self._threads = max(1, int(cpus))
        self._replica = serve.get_replica_context().replica_id.unique_id
        self._client = AsyncOpenAI()
        self._engine = _AsyncResource(self._client.registry)
        for spec in services:
            fields = dict(spec)
            expected = fields.pop("sha256", None)
            if expected:
                await asyncio.to_thread(_check_sha256, str(fields["model"]), str(expected))
            fields.setdefault("threads", self._threads)
            await self._client.services.deploy(**fields)

    # The engine, through its one operation entry: one unary call, one streaming call.

    async def _call(self, op: str, body: Mapping[str, Any]) -> Any:
        return json.loads(await self._engine._call(op, body))

    async def _stream(self, op: str, body: Mapping[str, Any]) -> AsyncIterator[str]:
        """Starts a streamed operation (errors before the first chunk raise here) and returns
        its chunks as JSON text; closing the iterator stops the generation."""
        native = await asyncio.to_thread(self._client.registry.stream, op, json.dumps(body))
        stream: AsyncStream[ChatCompletionChunk] = AsyncStream(native)

        async def chunks() -> AsyncIterator[str]:
            try:
                while (data := await stream._next()) is not None:
                    yield data
            finally:
                native.close()

        return chunks()

    # What the ingress calls. Each is a generator whose first item is a `_head`.

    async def chat(self, body: Mapping[str, Any]) -> AsyncIterator[Any]:
        """A chat completion: the head with the whole response, or the head then SSE events."""
        async for item in self._generate("chat.completions.create", body):
            yield item

    async def completions(self, body: Mapping[str, Any]) -> AsyncIterator[Any]:
        """A legacy text completion, as `chat`."""
        async for item in self._generate("completions.create", body):
            yield item

    async def _generate(self, op: str, body: Mapping[str, Any]) -> AsyncIterator[Any]:
        try:
            if body.get("stream") is not True:
                yield _head(200, self._replica, await self._call(op, body))
                return
            chunks = await self._stream(op, body)
        except APIStatusError as e:
            yield _head(e.status_code, self._replica, {"error": e.body})
            return
        yield _head(200, self._replica)
        try:
            async for chunk in chunks:
                yield f"data: {chunk}\n\n"
        except APIStatusError as e:
            yield _error_event({"error": e.body})
            return
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        yield "data: [DONE]\n\n"

    async def models(self, model: Optional[str] = None) -> AsyncIterator[Any]:
        """`/v1/models`, or `/v1/models/{model}` when one is named."""
        try:
            if model is None:
                yield _head(200, self._replica, await self._call("models.list", {}))
            else:
                yield _head(200, self._replica, await self._call("models.retrieve", {"model": model}))
        except APIStatusError as e:
            yield _head(e.status_code, self._replica, {"error": e.body})

    async def embeddings(self, body: Mapping[str, Any]) -> AsyncIterator[Any]:
        """`/v1/embeddings`: the head with the whole response."""
        try:
            yield _head(200, self._replica, await self._call("embeddings.create", body))
        except APIStatusError as e:
            yield _head(e.status_code, self._replica, {"error": e.body})

    async def info(self) -> dict[str, Any]:
        """Who this replica is and its services (IDs, status, usage counters)."""
        return {
            "replica": self._replica,
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "threads": self._threads,
            "services": (await self._call("services.list", {}))["data"],
        }

    async def check_health(self) -> None:
        """Serve restarts a replica whose service failed."""
        for service in (await self._call("services.list", {}))["data"]:
            if service["status"] == "failed":
                raise RuntimeError(f"service {service['access_name']} failed: {service.get('status_reason')}")


ServiceGroup: Deployment = serve.deployment(
    graceful_shutdown_timeout_s=DEFAULT_GRACEFUL_SHUTDOWN_S, health_check_period_s=5
)(ServiceGroupReplica)

# ---------------------------------------------------------------- ingress

api = FastAPI(title="modelservice", docs_url=None, redoc_url=None, openapi_url=None)


def _env_keys(var: str) -> list[bytes]:
    return [k.strip().encode() for k in os.environ.get(var, "").split(",") if k.strip()]


def _envelope(message: str, kind: str, code: Optional[str], param: Optional[str] = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _unauthorized(message: str) -> JSONResponse:
    body = _envelope(message, "authentication_error", "invalid_api_key")
    return JSONResponse(body, status_code=401, headers={"www-authenticate": "Bearer"})


def _queue_full(model: str) -> JSONResponse:
    # Serve's router refused the request: every replica is at max_ongoing_requests and the
    # router's queue (max_queued_requests) is full. Same envelope as a full service queue.
    message = (
        f"The service `{model}` is overloaded: every replica is busy and the queue of waiting "
        "requests is full. Retry later or scale the service up."
    )
    return JSONResponse(_envelope(message, "rate_limit_error", "queue_full", "model"), status_code=429)


def _unreachable(model: str, error: Exception) -> JSONResponse:
    message = f"The service `{model}` has no replica that can take the request now ({type(error).__name__})."
    body = _envelope(message, "service_unavailable_error", "service_not_running", "model")
    return JSONResponse(body, status_code=503)


def _replica_lost(error: BaseException) -> dict[str, Any]:
    return _envelope(f"The replica serving this request was lost: {type(error).__name__}.", "server_error", None)


@serve.ingress(api)
class OpenAIIngressReplica:
    """The OpenAI API in front of the groups: routes on `model` (an access name) to its group."""

    def __init__(self, groups: Mapping[str, DeploymentHandle[Any]], routes: Mapping[str, str]) -> None:
        self._user_keys = _env_keys(ENV_API_KEYS)
        self._admin_keys = _env_keys(ENV_ADMIN_KEYS)
        if not self._user_keys and not self._admin_keys:
            raise RuntimeError(f"no API key configured: set {ENV_API_KEYS}=<key>[,<key>...] where the ingress runs")
        self._groups = dict(groups)
        self._streams = {name: handle.options(stream=True) for name, handle in groups.items()}
        self._routes = dict(routes)  # access name -> group
        # An empty registry: the core answers requests for unknown models with its own errors.
        self._core = Registry()

    def _access(self, request: Request) -> Union[str, JSONResponse]:
        """The access ("user" or "admin") of a valid Bearer key, else the 401 to send."""
        value = request.headers.get("authorization")
        if value is None:
            return _unauthorized(
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        if value[:7].lower() != "bearer ":
            return _unauthorized("The Authorization header must use Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        presented = value[7:].strip().encode()
        # Every key is compared in constant time, with no early exit.
        admin = any([hmac.compare_digest(presented, k) for k in self._admin_keys])
        user = any([hmac.compare_digest(presented, k) for k in self._user_keys])
        if admin or (user and not self._admin_keys):
            return "admin"
        if user:
            return "user"
        return _unauthorized("Incorrect API key provided.")

    def _core_error(self, call: Any, *args: Any) -> JSONResponse:
        try:
            call(*args)
        except APIStatusError as e:
            return JSONResponse({"error": e.body}, status_code=e.status_code)
        return JSONResponse(_envelope("The request could not be routed.", "server_error", None), status_code=500)

    async def _start(self, group: str, method: str, *args: Any) -> tuple[dict[str, Any], Any]:
        """Calls a replica of `group` and waits for its head. A replica lost before it answered
        has sent nothing, so the request goes to another one."""
        for attempt in range(START_ATTEMPTS):
            stream = getattr(self._streams[group], method).remote(*args)
            try:
                return await stream.__anext__(), stream
            except RayActorError:
                if attempt == START_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    @api.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> Response:
        return await self._post(request, "chat.completions.create", "chat")

    @api.post("/v1/completions")
    async def completions(self, request: Request) -> Response:
        return await self._post(request, "completions.create", "completions")

    @api.post("/v1/embeddings")
    async def embeddings(self, request: Request) -> Response:
        return await self._post(request, "embeddings.create", "embeddings")

    async def _post(self, request: Request, op: str, method: str) -> Response:
        """A request whose body names its `model`: forwarded to that model's group."""
        access = self._access(request)
        if isinstance(access, Response):
            return access
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        model = body.get("model") if isinstance(body, dict) else None
        group = self._routes.get(model) if isinstance(model, str) else None
        if group is None or not isinstance(body, dict):
            # Malformed JSON, no `model` or an unknown one: the core's own 400 or 404.
            return self._core_error(self._core.call, op, raw.decode("utf-8", "replace"))
        try:
            head, stream = await self._start(group, method, body)
        except BackPressureError:
            return _queue_full(str(model))
        except Exception as e:  # no replica could take it (lost, none running yet, ...)
            return _unreachable(str(model), e)
        headers = {REPLICA_HEADER: head["replica"]}
        if head["body"] is not None or head["status"] != 200:
            return JSONResponse(head["body"], status_code=head["status"], headers=headers)
        return StreamingResponse(self._events(stream), media_type="text/event-stream", headers=headers)

    @staticmethod
    async def _events(stream: Any) -> AsyncIterator[str]:
        # A client disconnect cancels this generator; Serve cancels the replica's call with it,
        # which closes the engine's stream and stops generation.
        try:
            async for event in stream:
                yield event
        except Exception as e:  # the replica was lost mid-stream: end it as the server does
            yield _error_event(_replica_lost(e))

    @api.get("/v1/models")
    async def list_models(self, request: Request) -> Response:
        access = self._access(request)
        if isinstance(access, Response):
            return access
        data: list[Any] = []
        for group in self._groups:
            try:
                head, _ = await self._start(group, "models")
            except Exception as e:
                return _unreachable(group, e)
            data.extend(head["body"]["data"])
        return JSONResponse({"object": "list", "data": data})

    @api.get("/v1/models/{model:path}")
    async def retrieve_model(self, model: str, request: Request) -> Response:
        access = self._access(request)
        if isinstance(access, Response):
            return access
        group = self._routes.get(model)
        if group is None:
            return self._core_error(self._core.call, "models.retrieve", json.dumps({"model": model}))
        try:
            head, _ = await self._start(group, "models", model)
        except Exception as e:
            return _unreachable(model, e)
        return JSONResponse(head["body"], status_code=head["status"])

    @api.get("/v1/replicas")
    async def replicas(self, request: Request) -> Response:
        """Admin: every replica of every group, with its services (IDs, status, usage counters)."""
        access = self._access(request)
        if isinstance(access, Response):
            return access
        if access != "admin":
            return _unauthorized("Listing replicas needs an admin key.")
        groups = {}
        for name, handle in self._groups.items():
            results = await handle.broadcast("info").results_async(timeout_s=30, return_exceptions=True)
            # A replica lost since the router last looked answers with an error: it is not listed.
            groups[name] = [r for r in results if isinstance(r, dict)]
        return JSONResponse({"object": "list", "groups": groups})


# The ingress only parses and forwards: no CPU reserved, and no limit of its own on requests.
OpenAIIngress: Deployment = serve.deployment(
    name="OpenAIIngress", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000
)(OpenAIIngressReplica)

# ---------------------------------------------------------------- config and builder


def load_config(source: Union[str, os.PathLike[str], Mapping[str, Any]]) -> dict[str, Any]:
    """Reads and checks a config: a YAML file, or the same structure as a mapping."""
    if isinstance(source, Mapping):
        config = copy.deepcopy(dict(source))
        base = Path.cwd()
    else:
        path = Path(source)
        config = yaml.safe_load(path.read_text())
        base = path.parent
    if not isinstance(config, dict) or not isinstance(config.get("groups"), list) or not config["groups"]:
        raise ValueError("the config needs `groups`: a list of {name, services: [...], ...}")
    unknown = set(config) - {"groups", "ingress"}
    if unknown:
        raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
    seen: set[str] = set()
    for group in config["groups"]:
        if not isinstance(group, dict) or not group.get("name") or not group.get("services"):
            raise ValueError("every group needs a `name` and a non-empty `services` list")
        unknown = set(group) - GROUP_OPTIONS - {"name", "services", "num_cpus"}
        if unknown:
            raise ValueError(f"group {group['name']}: unknown keys: {', '.join(sorted(unknown))}")
        for spec in group["services"]:
            if spec["access_name"] in seen:
                raise ValueError(f"access name {spec['access_name']} is in two groups")
            seen.add(spec["access_name"])
            # Model paths in a file are relative to the file, as in the HTTP server's config.
            spec["model"] = str(base / spec["model"])
    return config


def _group_options(group: Mapping[str, Any]) -> dict[str, Any]:
    options = {k: v for k, v in group.items() if k in GROUP_OPTIONS}
    options["name"] = group["name"]
    options["ray_actor_options"] = {"num_cpus": group.get("num_cpus", 1)}
    # Serve's router holds the backlog (where any replica can take it and the autoscaler sees it):
    # a replica takes twice its slots; the router queues as many as the services' queues would.
    slots = sum(s.get("instances", 1) * s.get("slots", 4) for s in group["services"])
    options.setdefault("max_ongoing_requests", 2 * slots)
    options.setdefault("max_queued_requests", sum(s.get("queue_size", 64) for s in group["services"]))
    if "autoscaling_config" in options:
        options.pop("num_replicas", None)
    return options


def build(config: Union[str, os.PathLike[str], Mapping[str, Any]]) -> serve.Application:
    """The Serve application of a config: one deployment per group, behind the ingress."""
    cfg = load_config(config)
    groups: dict[str, serve.Application] = {}
    routes: dict[str, str] = {}
    for group in cfg["groups"]:
        groups[group["name"]] = ServiceGroup.options(**_group_options(group)).bind(group["services"])
        routes.update((s["access_name"], group["name"]) for s in group["services"])
    return OpenAIIngress.options(**cfg.get("ingress", {})).bind(groups, routes)


def app(args: Mapping[str, Any]) -> serve.Application:
    """The builder for `serve run modelservice.serve:app config=config.yaml`, or for a Serve
    config file (`serve deploy`, KubeRay) whose `args` hold either `config` or `groups` inline."""
    if "config" in args:
        return build(str(args["config"]))
    return build(args)
