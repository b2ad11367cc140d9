"""Prometheus beside the local runtime's stack: the machine's `prometheus`
(Debian's package; scripts/sandbox installs it), started by `up` with a
configuration made from the stack description (every part and replica a
target, RabbitMQ's rabbitmq_prometheus plugin another), the shop's alerting
rules (observability/prometheus/rules.yml), stopped by `down`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shopctl.errors import ShopError
from shopctl.runtimes import processes

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "observability" / "prometheus" / "rules.yml"
RABBITMQ_METRICS_PORT = 15692  # the rabbitmq_prometheus plugin's
SCRAPE_INTERVAL = "5s"
# RabbitMQ's per-queue figures the rules read (the plugin's /metrics/detailed)
RABBITMQ_FAMILIES = ["queue_coarse_metrics", "queue_consumer_count"]


def binary() -> str | None:
    return shutil.which("prometheus")


def configuration(
    targets: dict[str, list[str]],
    *,
    broker_url: str,
    rules: Path = RULES,
    interval: str = SCRAPE_INTERVAL,
) -> dict[str, Any]:
    """Prometheus' configuration: one job a part (each process a target,
    labelled with its instance name) and one for RabbitMQ's queues of this
    stack's virtual host. JSON is YAML: Prometheus reads it as it is."""
    parsed = urlsplit(broker_url)
    vhost = parsed.path[1:] or "/"
    jobs: list[dict[str, Any]] = [
        {
            "job_name": part,
            "static_configs": [{"targets": addresses}],
        }
        for part, addresses in targets.items()
    ]
    jobs.append(
        {
            "job_name": "rabbitmq",
            "metrics_path": "/metrics/detailed",
            "params": {"family": RABBITMQ_FAMILIES, "vhost": [vhost]},
            "static_configs": [
                {"targets": [f"{parsed.hostname or '127.0.0.1'}:{RABBITMQ_METRICS_PORT}"]}
            ],
        }
    )
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rules)],
        "scrape_configs": jobs,
    }


@dataclass
class LocalPrometheus:
    """One Prometheus process of a sandbox, its data under ``home``."""

    home: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "prometheus.log"

    def start(self, config: dict[str, Any], marker: str = "", timeout: float = 30.0) -> int:
        """Write the configuration, start Prometheus and wait until it is
        ready; returns its pid. Raises ShopError with the reason. ``marker``
        names the sandbox in its environment, as the parts' does: `down`
        finds it even when the state file was lost."""
        executable = binary()
        if executable is None:
            raise ShopError(
                "prometheus is not installed",
                hint="scripts/sandbox installs it (Debian: apt-get install prometheus)",
            )
        self.home.mkdir(parents=True, exist_ok=True)
        config_file = self.home / "prometheus.yml"
        config_file.write_text(json.dumps(config, indent=2) + "\n")
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                [
                    executable,
                    f"--config.file={config_file}",
                    f"--storage.tsdb.path={self.home / 'data'}",
                    "--storage.tsdb.retention.time=2d",
                    f"--web.listen-address={self.host}:{self.port}",
                    "--enable-feature=exemplar-storage",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives shopctl, as the parts do
                env={
                    **os.environ,
                    processes.MARKER_VARIABLE: marker,
                    "SHOP_SERVICE_NAME": "prometheus",
                },
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = self.log_path.read_text(errors="replace").splitlines()[-3:]
                raise ShopError(
                    f"prometheus exited with {process.returncode}",
                    hint="its log: " + " | ".join(tail),
                )
            if self.ready():
                return process.pid
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGTERM)
        raise ShopError(
            f"prometheus was not ready in {timeout:g} s", hint=f"its log: {self.log_path}"
        )

    def ready(self) -> bool:
        import httpx  # only where Prometheus is asked: every command imports this module

        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, pid: int) -> None:
        processes.stop_pid(pid, 10)

    def forget(self) -> None:
        """Its data, with the stack's (down --volumes)."""
        shutil.rmtree(self.home, ignore_errors=True)


def firing_alerts(url: str, timeout: float = 2.0) -> list[dict[str, Any]]:
    """The alerts firing now at the Prometheus at ``url`` (none when it
    does not answer)."""
    import httpx

    try:
        answer = httpx.get(f"{url}/api/v1/alerts", timeout=timeout)
        alerts = answer.json()["data"]["alerts"]
    except (httpx.HTTPError, ValueError, KeyError):
        return []
    return [a for a in alerts if a.get("state") == "firing"]


def describe_alert(alert: dict[str, Any]) -> str:
    """One line: the alert's name and its summary."""
    labels = alert.get("labels", {})
    summary = alert.get("annotations", {}).get("summary", "")
    return f"{labels.get('alertname', '?')}: {summary}".rstrip(": ")
