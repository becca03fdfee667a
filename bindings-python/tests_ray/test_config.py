"""The config and the builder of modelservice.serve, without a cluster: what a YAML file may say,
what each group becomes as a Serve deployment, and the SHA-256 check of model files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from modelservice.serve import _check_sha256, _group_options, app, load_config

YAML = """
ingress: {num_replicas: 2}
groups:
  - name: small
    num_replicas: 3
    num_cpus: 2
    services:
      - {name: a, access_name: u/a, model: models/a.gguf, slots: 2, instances: 2, queue_size: 10}
      - {name: b, access_name: u/b, model: /abs/b.gguf}
  - name: auto
    autoscaling_config: {min_replicas: 1, max_replicas: 4, target_ongoing_requests: 3}
    num_replicas: 5
    services:
      - {name: c, access_name: u/c, model: /abs/c.gguf}
"""


def test_yaml_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(YAML)
    config = load_config(path)
    small, auto = config["groups"]
    # Model paths are relative to the file, as in the HTTP server's config.
    assert small["services"][0]["model"] == str(tmp_path / "models" / "a.gguf")
    assert small["services"][1]["model"] == "/abs/b.gguf"
    options = _group_options(small)
    assert options["name"] == "small" and options["num_replicas"] == 3
    assert options["ray_actor_options"] == {"num_cpus": 2}
    # A replica takes twice its slots (2x2 + 4), the router queues what the services would (10 + 64).
    assert (options["max_ongoing_requests"], options["max_queued_requests"]) == (16, 74)
    # Autoscaling replaces a fixed count.
    assert (
        "num_replicas" not in _group_options(auto) and _group_options(auto)["autoscaling_config"]["max_replicas"] == 4
    )
    # `serve run modelservice.serve:app config=config.yaml` builds the application.
    assert app({"config": str(path)}) is not None


@pytest.mark.parametrize(
    "config, message",
    [
        ({}, "needs `groups`"),
        ({"groups": [{"name": "g", "services": []}]}, "non-empty `services`"),
        ({"groups": [{"name": "g", "replicas": 2, "services": [{}]}]}, "unknown keys: replicas"),
        ({"groups": [], "keys": []}, "needs `groups`"),
        (
            {
                "groups": [
                    {"name": "g", "services": [{"access_name": "u/a", "model": "/m"}]},
                    {"name": "h", "services": [{"access_name": "u/a", "model": "/m"}]},
                ]
            },
            "u/a is in two groups",
        ),
    ],
)
def test_config_errors(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_config(config)


def test_sha256_check(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(100))
    good = hashlib.sha256(model.read_bytes()).hexdigest()
    _check_sha256(str(model), good.upper())
    with pytest.raises(ValueError, match="SHA-256"):
        _check_sha256(str(model), "0" * 64)
