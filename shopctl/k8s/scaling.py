"""KEDA's rule for the consumers (deploy/kubernetes/components/keda), run on a
real broker's queue depths: what `bench --flood` prints beside its figures,
so the scaling a cluster would do is seen on this machine's load.

KEDA's rabbitmq trigger (protocol http) reads the management API's
``messages`` of each queue its regex names, ready and unacknowledged
alike, sums them (``operation: sum``), and the HPA asks for
ceil(sum / value) replicas within the ScaledObject's bounds. Here the
same numbers come from RabbitMQ's Prometheus plugin (``/metrics/detailed``,
``rabbitmq_detailed_queue_messages``: ready plus unacknowledged) on the
local runtime, or the management API on the docker runtime's broker."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

from shopctl.k8s.manifests import QUEUE_TARGET_PER_REPLICA, scaling
from shopctl.stack import SERVICES

_DETAILED = re.compile(
    r'^rabbitmq_detailed_queue_messages\{vhost="(?P<vhost>[^"]*)",queue="(?P<queue>[^"]*)"\} '
    r"(?P<value>[0-9.e+]+)$",
    re.MULTILINE,
)


def depths_from_prometheus(text: str, vhost: str = "/") -> dict[str, int]:
    """Queue -> messages (ready + unacknowledged), from the plugin's text."""
    return {
        m["queue"]: int(float(m["value"])) for m in _DETAILED.finditer(text) if m["vhost"] == vhost
    }


def read_depths(source: str, vhost: str = "/") -> dict[str, int]:
    """``source``: the plugin's base URL (http://host:15692) or the management
    API's (http://user:pass@host:15672/api)."""
    if source.rstrip("/").endswith("/api"):
        queues = httpx.get(
            source.rstrip("/") + "/queues", params={"columns": "name,vhost,messages"}, timeout=5
        ).json()
        return {q["name"]: int(q.get("messages") or 0) for q in queues if q["vhost"] == vhost}
    answer = httpx.get(
        source.rstrip("/") + "/metrics/detailed",
        params={"family": "queue_coarse_metrics", "vhost": vhost},
        timeout=5,
    )
    answer.raise_for_status()
    return depths_from_prometheus(answer.text, vhost)


def replicas_wanted(depths: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Service -> (summed depth of its queues, replicas KEDA would ask)."""
    wanted = {}
    for target in SERVICES:
        rule = scaling(target)
        if rule.queue_pattern is None:
            continue
        pattern = re.compile(rule.queue_pattern)
        depth = sum(count for queue, count in depths.items() if pattern.search(queue))
        wanted[target.name] = (depth, rule.keda_replicas(depth, rule.minimum))
    return wanted


@dataclass
class DepthSampler:
    """Reads the depths every ``every_s`` in a thread while a load runs; keeps
    each service's deepest moment."""

    source: str
    vhost: str = "/"
    every_s: float = 1.0
    samples: int = 0
    failures: int = 0
    peaks: dict[str, tuple[int, int]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> DepthSampler:
        self._thread = threading.Thread(target=self._run, name="keda-depths", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                wanted = replicas_wanted(read_depths(self.source, self.vhost))
            except (httpx.HTTPError, ValueError, KeyError):
                self.failures += 1
                continue
            self.samples += 1
            for service, (depth, replicas) in wanted.items():
                if depth >= self.peaks.get(service, (-1, 0))[0]:
                    self.peaks[service] = (depth, replicas)

    def figures(self) -> dict[str, Any]:
        rule = next(scaling(s) for s in SERVICES if s.consumes)
        return {
            "rule": f"ceil(messages / {QUEUE_TARGET_PER_REPLICA}) within "
            f"[{rule.minimum}, {rule.maximum}]",
            "samples": self.samples,
            "unread": self.failures,
            "peak": {
                service: {"messages": depth, "replicas": replicas}
                for service, (depth, replicas) in sorted(self.peaks.items())
            },
        }
