"""Docker cannot run on this machine: check the compose file's structure instead."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import metrics
from tests.support.dashboard import dashboard_queries, grouped_labels, metric_names, runnable

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
        "GF_SECURITY_ADMIN_USER",
        "GF_SECURITY_ADMIN_PASSWORD",
        "GF_USERS_ALLOW_SIGN_UP",
        "GF_AUTH_ANONYMOUS_ENABLED",
    }
    assert names, "no environment names found: the scan is broken"
    assert names - documented_variables() == set()


# --- Prometheus and Grafana (docs/operations.md) ---------------------------------------------

DEPLOY = REPO / "deploy"
# What the dashboard must show, as the metric each panel's query reads.
DASHBOARD_METRICS = {
    "chat_time_to_first_token_seconds_bucket",
    "chat_inter_token_latency_seconds_bucket",
    "chat_queue_wait_seconds_bucket",
    "chat_generations_total",
    "chat_tokens_total",
    "chat_websocket_connections",
    "chat_moderation_decisions_total",
    "chat_rate_limit_refusals_total",
    "vllm:num_requests_running",
    "vllm:kv_cache_usage_perc",
}


def mounted(service: dict[str, Any], target: str) -> Path:
    """The repository path that a service mounts at `target`."""
    for volume in service["volumes"]:
        source, _, rest = volume.partition(":")
        if rest.split(":")[0] == target:
            return REPO / source
    raise AssertionError(f"nothing is mounted at {target}")


def test_prometheus_scrapes_the_web_and_every_worker_with_the_metrics_token() -> None:
    services = compose()["services"]
    prometheus = services["prometheus"]
    config = yaml.safe_load(mounted(prometheus, "/etc/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}

    assert jobs["chat-web"]["static_configs"][0]["targets"] == ["web:8000"]
    assert jobs["chat-web"]["metrics_path"] == "/metrics"
    workers = jobs["chat-workers"]["dns_sd_configs"][0]
    assert set(workers["names"]) == {"worker", "worker-cpu", "beat"} and workers["port"] == 9100
    for job in jobs.values():
        token_file = job["authorization"]["credentials_file"]
        assert job["authorization"]["type"] == "Bearer"
        assert token_file in " ".join(prometheus["command"])  # written from METRICS_TOKEN
    assert prometheus["environment"]["METRICS_TOKEN"].startswith("${METRICS_TOKEN:?")
    # The workers serve what Prometheus scrapes; the web answers to the name it scrapes.
    app = compose()["x-app-env"]
    assert app["WORKER_METRICS_PORT"] == "9100"
    assert "web" in app["DJANGO_ALLOWED_HOSTS"].split(":-", 1)[1].rstrip("}").split(",")


def test_grafana_has_the_prometheus_data_source_and_the_dashboard_provisioned() -> None:
    grafana = compose()["services"]["grafana"]
    provisioning = mounted(grafana, "/etc/grafana/provisioning")
    (source,) = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["url"] == "http://prometheus:9090" and source["type"] == "prometheus"
    (provider,) = yaml.safe_load((provisioning / "dashboards/chat.yml").read_text())["providers"]
    dashboards = mounted(grafana, provider["options"]["path"])
    assert dashboards == DEPLOY / "grafana/dashboards" and (dashboards / "chat.json").is_file()
    dashboard = json.loads((dashboards / "chat.json").read_text())
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {source["uid"]}
    # Signed in only, with a password the operator set; on the host's loopback.
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${GRAFANA_ADMIN_PASSWORD:?"
    )
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert all(port.startswith("127.0.0.1:") for port in grafana["ports"])


def test_the_dashboard_shows_every_metric_the_operators_watch() -> None:
    queries = " ".join(dashboard_queries())
    names = set(re.findall(r"[a-z_][a-z0-9_:]*", queries))
    assert names >= DASHBOARD_METRICS, DASHBOARD_METRICS - names
    defined = {
        f"{metric._name}{suffix}"
        for metric in (
            metrics.TIME_TO_FIRST_TOKEN, metrics.INTER_TOKEN_LATENCY, metrics.QUEUE_WAIT,
            metrics.GENERATIONS, metrics.TOKENS, metrics.WEBSOCKET_CONNECTIONS,
            metrics.MODERATION_DECISIONS, metrics.RATE_LIMIT_REFUSALS,
        )
        for suffix in ("", "_bucket", "_total")
    }  # fmt: skip
    chat_names = {name for name in names if name.startswith("chat_")}
    assert chat_names <= defined, chat_names - defined


needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool is not installed (Debian's prometheus)"
)


@needs_promtool
def test_prometheus_accepts_the_config_and_every_dashboard_query(tmp_path: Path) -> None:
    """`promtool` (Debian's prometheus package) parses the scrape config and, written as
    recording rules, every PromQL query of the dashboard ($__rate_interval as Grafana fills it)."""
    config = tmp_path / "prometheus.yml"
    text = (DEPLOY / "prometheus/prometheus.yml").read_text()
    (tmp_path / "token").write_text("t")
    config.write_text(text.replace("/prometheus/metrics-token", str(tmp_path / "token")))
    checked = subprocess.run(
        ["promtool", "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query{i}", "expr": q.replace("$__rate_interval", "1m")}
                    for i, q in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    checked = subprocess.run(
        ["promtool", "check", "rules", str(tmp_path / "rules.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_reader_finds_each_querys_metrics_and_grouping_labels() -> None:
    # What the Prometheus e2e test (tests/e2e/test_prometheus_scrape.py) checks against a scrape.
    query = "histogram_quantile(0.95, sum by (le, model) (rate(chat_x_bucket[$__rate_interval])))"

    assert metric_names(query) == {"chat_x_bucket"}
    assert grouped_labels(query) == {"chat_x_bucket": {"le", "model"}}
    assert metric_names('sum(vllm:num_requests_running{pid="1"})') == {"vllm:num_requests_running"}
    assert runnable(query).endswith("(rate(chat_x_bucket[1m])))")
    assert all(metric_names(query) for query in dashboard_queries())
