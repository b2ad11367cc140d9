"""`shopctl k8s`: the stack's Kubernetes manifests (deploy/kubernetes),
written from the stack description, built, applied and removed."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shopctl.commands.common import err, out
from shopctl.errors import ShopError, UsageError
from shopctl.settings import PROJECT_ROOT, SandboxSettings

if TYPE_CHECKING:
    from shopctl.runtimes.kubernetes import Kubectl

app = typer.Typer(
    help="Kubernetes: render the manifests, apply them to a cluster, remove them.",
    no_args_is_help=True,
)
DEPLOY = PROJECT_ROOT / "deploy" / "kubernetes"


class Overlay(StrEnum):
    sandbox = "sandbox"
    production = "production"


OverlayOption = Annotated[
    Overlay,
    typer.Option("--overlay", help="sandbox (fault switches on, its own infrastructure) or "
                 "production (the operators', secrets of your own)"),
]  # fmt: skip


def _write_tree(root: Path) -> list[Path]:
    from shopctl.k8s.manifests import render

    written = []
    for relative, text in render().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written


def _built(root: Path, overlay: Overlay) -> str:
    from shopctl.runtimes.kubernetes import Kubectl

    return Kubectl().run("kustomize", str(root / "overlays" / overlay.value), timeout=60)


@app.command()
def render(
    overlay: Annotated[
        Overlay | None,
        typer.Option(
            "--overlay",
            help="print this overlay built (kubectl kustomize), what `apply` would send",
        ),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="where the base, components and overlays go")
    ] = DEPLOY,
) -> None:
    """Write deploy/kubernetes from the stack description (shopctl/stack.py);
    with --overlay, print that overlay's objects as kustomize builds them."""
    if out_dir.is_file() or (
        out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "base").is_dir()
    ):
        raise UsageError(f"{out_dir} holds other files: give --out an empty or new folder")
    written = _write_tree(out_dir)
    if overlay is not None:
        typer.echo(_built(out_dir, overlay), nl=False)
        return
    where = (
        out_dir if not out_dir.is_relative_to(PROJECT_ROOT) else out_dir.relative_to(PROJECT_ROOT)
    )
    out.print(f"{where}: {len(written)} file{'s' if len(written) != 1 else ''} written"
              + ("" if written else " (all up to date)"), soft_wrap=True)  # fmt: skip
    err.print("[dim]next: shopctl k8s render --overlay sandbox | kubectl apply -f -, "
              "or shopctl k8s apply (docs/kubernetes.md)[/]", soft_wrap=True)  # fmt: skip


@app.command()
def apply(
    overlay: OverlayOption = Overlay.sandbox,
    context: Annotated[
        str | None, typer.Option(help="the kubeconfig context (default: the current one)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="the API server checks everything, keeps nothing")
    ] = False,
) -> None:
    """Apply an overlay to the cluster kubectl points at; then `shopctl
    status`, `why`, `trace` and `logs` look at that stack."""
    from shopctl.runtimes.kubernetes import Kubectl, Target, current_context, remember

    target = Target(context or current_context(), overlay=overlay.value)
    kubectl = Kubectl(target)
    if overlay is Overlay.production:
        _check_production_prerequisites(kubectl)
    manifests = _built(DEPLOY, overlay)
    args = ["apply", "--server-side", "--field-manager=shopctl", "-f", "-"]
    if dry_run:
        args.append("--dry-run=server")
    result = kubectl.run(*args, input=manifests, timeout=300)
    out.print(result.rstrip())
    if dry_run:
        out.print("[dim]dry run: nothing was kept[/]")
        return
    remember(SandboxSettings(), target)
    out.print(f"applied the {overlay.value} overlay to {target.context} (namespace shop); "
              "`shopctl status` shows its pods")  # fmt: skip


def _check_production_prerequisites(kubectl: Kubectl) -> None:
    """The operators' resource types must be installed before their objects."""
    missing = []
    for kind, operator in (
        ("rabbitmqclusters.rabbitmq.com", "the RabbitMQ Cluster Operator"),
        ("clusters.postgresql.cnpg.io", "CloudNativePG"),
        ("scaledobjects.keda.sh", "KEDA"),
    ):
        try:
            kubectl.run("get", "crd", kind)
        except ShopError:
            missing.append(operator)
    if missing:
        raise ShopError(
            f"the production overlay needs {', '.join(missing)} on the cluster",
            hint="install them first (docs/kubernetes.md, 'Production')",
        )


@app.command()
def delete(
    context: Annotated[
        str | None, typer.Option(help="the kubeconfig context (default: the applied one)")
    ] = None,
) -> None:
    """Remove what `apply` put on the cluster (the namespace and all in it)."""
    from shopctl.runtimes.kubernetes import Kubectl, Target, current_context, forget, remembered

    settings = SandboxSettings()
    known = remembered(settings)
    target = Target(context or (known.context if known else current_context()))
    Kubectl(target).run("delete", "namespace", "shop", "--wait=false")
    forget(settings)
    out.print(f"deleting namespace shop on {target.context}")
