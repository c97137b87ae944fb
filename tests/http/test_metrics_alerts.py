"""infra/prometheus/: the alert rules name only metrics the gateway exports (checked
against a live /metrics), with the thresholds the README promises; the example scrape
configuration loads them. No promtool here: the YAML is read and every `expr` checked."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.app import create_app
from gateway.config import Settings
from tests.backends import on_backends

INFRA = Path(__file__).resolve().parents[2] / "infra" / "prometheus"
# What PromQL itself names in our expressions: functions, aggregations, operators.
PROMQL = frozenset({"sum", "max", "min", "rate", "increase", "by", "without", "and", "or"})
_LABELS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def rules() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load((INFRA / "alerts.yml").read_text(encoding="utf-8"))
    return {rule["alert"]: rule for group in document["groups"] for rule in group["rules"]}


def metric_names(expr: str) -> set[str]:
    """The series an expression selects: its names, once label sets and ranges are gone."""
    bare = _RANGE.sub("", _LABELS.sub("", expr))
    return {name for name in _NAME.findall(bare) if name not in PROMQL}


def test_the_scrape_configuration_loads_the_rules_and_scrapes_metrics() -> None:
    config = yaml.safe_load((INFRA / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["rule_files"] == ["alerts.yml"]
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"


def test_the_alerts_have_the_promised_thresholds() -> None:
    found = rules()
    assert set(found) == {
        "GatewayEvidenceSealingLag",
        "GatewayServerErrors",
        "GatewaySchedulerStalled",
    }
    lag = found["GatewayEvidenceSealingLag"]
    assert (lag["expr"], lag["for"]) == ("max(gateway_evidence_sealing_lag_seconds) > 120", "5m")
    errors = found["GatewayServerErrors"]
    assert errors["for"] == "10m"
    assert " ".join(errors["expr"].split()) == (
        'sum(rate(gateway_http_requests_total{status="5xx"}[5m])) '
        "/ sum(rate(gateway_http_requests_total[5m])) > 0.01"
    )
    stalled = found["GatewaySchedulerStalled"]
    assert stalled["expr"] == "sum(increase(gateway_job_runs_total[15m])) == 0"


def test_every_expression_names_only_the_gateway_metrics_it_means() -> None:
    named = {name for rule in rules().values() for name in metric_names(rule["expr"])}
    assert named == {
        "gateway_evidence_sealing_lag_seconds",
        "gateway_http_requests_total",
        "gateway_job_runs_total",
    }


@pytest.mark.anyio
@on_backends("sqlite+file")
async def test_those_metrics_are_in_a_live_scrape(settings: Settings) -> None:
    from gateway.jobs.scheduler import start_scheduler

    app = create_app(settings=settings)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        # The job-run series exist from the scheduler's start; it runs nothing here.
        start_scheduler(app.state.runtime).shutdown(wait=False)
        await client.get("/healthz")
        text = (await client.get("/metrics")).text
    exported = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    named = {name for rule in rules().values() for name in metric_names(rule["expr"])}
    assert named <= exported
