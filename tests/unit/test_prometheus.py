"""Prometheus beside the stack: its configuration made from the stack
description (checked by promtool itself), and the dashboard made in code."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from shopctl.observe import dashboard
from shopctl.runtimes.prometheus import RULES, configuration, describe_alert


def test_every_part_and_replica_is_a_target_and_rabbitmq_is_scraped_for_this_vhost() -> None:
    config = configuration(
        {"order": ["127.0.0.1:8103"], "inventory": ["127.0.0.1:8104", "127.0.0.1:9104"]},
        broker_url="amqp://guest:guest@127.0.0.1:5672/shoptest_x",
    )
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["inventory"]["static_configs"] == [
        {"targets": ["127.0.0.1:8104", "127.0.0.1:9104"]}
    ]
    rabbitmq = jobs["rabbitmq"]
    assert rabbitmq["static_configs"] == [{"targets": ["127.0.0.1:15692"]}]
    assert rabbitmq["metrics_path"] == "/metrics/detailed"
    assert rabbitmq["params"]["vhost"] == ["shoptest_x"]
    assert config["rule_files"] == [str(RULES)]
    default = configuration({}, broker_url="amqp://guest:guest@127.0.0.1:5672/")
    assert default["scrape_configs"][0]["params"]["vhost"] == ["/"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="no promtool (scripts/test has it)")
def test_promtool_takes_the_configuration(tmp_path: Path) -> None:
    config = configuration(
        {"gateway": ["127.0.0.1:8080"]}, broker_url="amqp://guest:guest@127.0.0.1:5672/"
    )
    path = tmp_path / "prometheus.yml"
    path.write_text(json.dumps(config))
    checked = subprocess.run(
        ["promtool", "check", "config", str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "5 rules found" in checked.stdout


def test_a_firing_alert_reads_as_one_line() -> None:
    alert = {
        "labels": {"alertname": "ShopDeadLetters", "queue": "payment.stock.reserved.dlq"},
        "annotations": {"summary": "3 dead letters wait on payment.stock.reserved.dlq"},
        "state": "firing",
    }
    assert describe_alert(alert) == (
        "ShopDeadLetters: 3 dead letters wait on payment.stock.reserved.dlq"
    )


def test_the_committed_dashboard_is_what_the_code_makes() -> None:
    assert dashboard.DASHBOARD_FILE.read_text() == dashboard.render(), (
        "run: python -m shopctl.observe.dashboard > observability/grafana/dashboards/shop.json"
    )
    model = json.loads(dashboard.DASHBOARD_FILE.read_text())
    panels = [p for p in model["panels"] if p["type"] == "timeseries"]
    assert [p["title"] for p in panels] == [p.title for p in dashboard.PANELS]
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": dashboard.DATASOURCE_UID}
        [target] = panel["targets"]
        assert target["expr"] and target["exemplar"] is True
    provisioned = Path(dashboard.ROOT, "observability/grafana/provisioning/datasources")
    assert f"uid: {dashboard.DATASOURCE_UID}" in (provisioned / "prometheus.yml").read_text()
