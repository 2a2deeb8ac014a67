"""Docker cannot run on this machine: check the compose file's structure instead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "docker-compose.yml").read_text()))


def documented_variables() -> set[str]:
    return {
        line.split("=", 1)[0]
        for line in (REPO / ".env.example").read_text().splitlines()
        if re.match(r"^[A-Z][A-Z0-9_]*=", line)
    }


def test_it_defines_the_data_services_and_the_app_services() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "mongo", "web", "worker", "beat", "worker-cpu"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["mongo"]["image"].startswith("mongo:7")


def test_data_services_have_volumes_and_healthchecks() -> None:
    services = compose()["services"]
    for name in ("postgres", "redis", "mongo"):
        assert services[name]["volumes"], name
        assert services[name]["healthcheck"]["test"], name
    assert set(compose()["volumes"]) >= {"postgres-data", "redis-data", "mongo-data"}


def test_app_services_wait_for_healthy_dependencies() -> None:
    services = compose()["services"]
    for name in ("web", "worker", "worker-cpu"):
        depends = services[name]["depends_on"]
        for data_service in ("postgres", "redis", "mongo"):
            assert depends[data_service]["condition"] == "service_healthy", (name, data_service)
        assert depends["migrate"]["condition"] == "service_completed_successfully", name


def test_the_gpu_worker_reserves_a_gpu_and_the_cpu_worker_is_a_profile() -> None:
    services = compose()["services"]
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert services["worker-cpu"]["profiles"] == ["cpu"]
    assert services["worker-cpu"]["build"]["target"] == "worker-cpu"
    assert "profiles" not in services["worker"]


def test_every_environment_name_is_documented_in_env_example() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    names = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    for service in compose()["services"].values():
        environment = service.get("environment") or {}
        if isinstance(environment, dict):
            names |= set(environment)
    # The images' own variables (postgres, mongo, redis-cli), set from documented ones.
    names -= {
        "POSTGRES_DB",
        "POSTGRES_USER",
        "MONGO_INITDB_ROOT_USERNAME",
        "MONGO_INITDB_ROOT_PASSWORD",
        "REDISCLI_AUTH",
    }
    assert names, "no environment names found: the scan is broken"
    assert names - documented_variables() == set()
