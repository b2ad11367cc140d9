"""How a runtime is chosen: the one selector, above the runtimes it picks
from (they import only ``base``, so nothing here is imported back)."""

from __future__ import annotations

from shopctl.errors import EXIT_NO_RUNTIME, ShopError, UsageError
from shopctl.runtimes.base import Runtime
from shopctl.runtimes.docker import DockerRuntime, docker_engine_error
from shopctl.runtimes.kubernetes import KubernetesRuntime, remembered
from shopctl.runtimes.local import LocalRuntime
from shopctl.settings import SandboxSettings


def select_runtime(choice: str, settings: SandboxSettings) -> Runtime:
    """docker, local, or auto: docker when an engine answers, local otherwise."""
    if choice == "local":
        return LocalRuntime(settings)
    error = docker_engine_error()
    if choice == "docker":
        if error:
            raise ShopError(
                f"no Docker engine answers ({error})",
                hint="start dockerd, or use --runtime local",
                exit_code=EXIT_NO_RUNTIME,
            )
        return DockerRuntime(settings)
    if choice == "auto":
        if error:
            return LocalRuntime(settings)
        # auto takes docker only with the configured images: a first docker
        # `up` builds an image, which a plain `scripts/sandbox` should not.
        docker_runtime = DockerRuntime(settings, stand_ins=False)
        missing = docker_runtime.missing_images()
        if missing:
            # Without a registry a missing image cannot be pulled: stay local.
            docker_runtime.skipped_because = f"images not here: {', '.join(missing)}"
            local = LocalRuntime(settings)
            local.chosen_because = docker_runtime.skipped_because
            return local
        return docker_runtime
    raise UsageError(f"unknown runtime {choice!r}; use docker, local or auto")


def current_runtime(settings: SandboxSettings) -> Runtime:
    """The runtime whose stack is up (for down, status, logs, restart):
    the one that left state behind, else local: a stack this machine runs
    first, then one `shopctl k8s apply` put on a cluster."""
    local = LocalRuntime(settings)
    if local.has_state():
        return local
    if not docker_engine_error():
        docker_runtime = DockerRuntime(settings, stand_ins=False)  # images play no part here
        if docker_runtime.has_state():
            return docker_runtime
    if remembered(settings) is not None:
        return KubernetesRuntime(settings)
    return local
