"""`shopctl k8s` from a shell, and the Kubernetes runtime's reading of a
cluster's answers. No cluster runs here: apply, status and why against
one were never run (docs/kubernetes.md); what is checked is everything
before the cluster and the one-line errors without one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from shopctl.runtimes import kubernetes
from shopctl.runtimes.kubernetes import KubernetesRuntime, Target, part_statuses, remember
from shopctl.runtimes.select import current_runtime
from shopctl.settings import SandboxSettings

DEPLOY = Path(__file__).parents[2] / "deploy" / "kubernetes"


def shopctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from shopctl.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_render_writes_the_committed_tree(tmp_path: Path):
    result = shopctl("k8s", "render", "--out", str(tmp_path / "k8s"))
    assert result.returncode == 0, result.stderr
    written = {
        str(p.relative_to(tmp_path / "k8s")): p.read_text()
        for p in (tmp_path / "k8s").rglob("*.yaml")
    }
    assert written["base/order.yaml"] == (DEPLOY / "base" / "order.yaml").read_text()
    assert len(written) == len([p for p in DEPLOY.rglob("*.yaml") if "crds" not in p.parts])
    again = shopctl("k8s", "render", "--out", str(tmp_path / "k8s"))
    assert "0 files written (all up to date)" in again.stdout


def test_render_of_an_overlay_prints_what_apply_would_send(tmp_path: Path):
    result = shopctl("k8s", "render", "--out", str(tmp_path / "k8s"), "--overlay", "sandbox")
    assert result.returncode == 0, result.stderr
    objects = [d for d in YAML(typ="safe").load_all(result.stdout) if d]
    kinds = [d["kind"] for d in objects]
    assert kinds.count("StatefulSet") == 1 + 7  # RabbitMQ's three nodes, a database each
    config = next(d for d in objects if d["metadata"]["name"] == "shop-config")
    assert config["data"]["SHOP_FAULT_INJECTION"] == "true"


def test_render_refuses_a_folder_of_other_files(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine")
    result = shopctl("k8s", "render", "--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "give --out an empty or new folder" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing half-written


def test_apply_without_a_cluster_is_one_line(tmp_path: Path):
    result = shopctl("k8s", "apply", env={"KUBECONFIG": str(tmp_path / "none")})
    assert result.returncode == 4
    first, *rest = result.stderr.splitlines()
    assert first == "error: no Kubernetes cluster is configured: kubectl has no current context"
    assert "Traceback" not in result.stderr and len(rest) == 1


def test_an_unknown_overlay_is_a_usage_error():
    result = shopctl("k8s", "apply", "--overlay", "staging")
    assert result.returncode == 2 and "staging" in result.stderr


def test_pods_read_as_parts():
    def pod(name: str, phase: str, ready: bool, restarts: int) -> dict[str, object]:
        return {
            "metadata": {"labels": {"app.kubernetes.io/name": name}},
            "status": {
                "phase": phase,
                "startTime": "2026-12-05T00:00:00Z",
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                "containerStatuses": [{"restartCount": restarts}],
            },
        }

    rows = part_statuses(
        {
            "items": [
                pod("order", "Running", True, 0),
                pod("order", "Running", True, 2),
                pod("payment", "Running", False, 5),
                pod("shipping", "Pending", False, 0),
            ]
        }
    )
    by_name = {r.name: r for r in rows}
    assert by_name["order (2 pods)"].health == "ready" and by_name["order (2 pods)"].restarts == 2
    assert (by_name["payment"].state, by_name["payment"].health) == ("running", "not ready")
    assert (by_name["shipping"].state, by_name["shipping"].health) == ("stopped", "-")


def test_status_looks_at_the_applied_stack(tmp_path: Path, monkeypatch):
    """After `k8s apply`, with no local or docker stack, status, why and
    trace use the cluster's; without a cluster that is one clear error."""
    settings = SandboxSettings(state_dir=tmp_path)
    monkeypatch.setattr("shopctl.runtimes.select.docker_engine_error", lambda: "no engine")
    assert current_runtime(settings).name == "local"
    remember(settings, Target("kind-shop"))
    chosen = current_runtime(settings)
    assert isinstance(chosen, KubernetesRuntime) and chosen.target.context == "kind-shop"
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    result = shopctl("status", env={"SHOP_STATE_DIR": str(tmp_path), "DOCKER_HOST": "unix:///none"})
    assert result.returncode == 1
    assert result.stderr.startswith("error: kubectl get pods: ")
    assert kubernetes.remembered(settings) == Target("kind-shop")
