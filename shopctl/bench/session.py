"""A bench against the stack that is up: what its runtime says of its
processes and connections, the bare pipeline first when asked, and the
figures, baseline included, for the CLI and the report to read."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from shopctl.bench.baseline import Window, measure_baseline
from shopctl.bench.flood import (
    BARE,
    MACHINE,
    BenchResult,
    Figures,
    busy_share,
    cpu_by_part,
    infrastructure_pids,
    per_unit_ms,
    run_bench,
)
from shopctl.observe.deadletters import dead_letter_queues
from shopctl.runtimes.base import Runtime
from shopctl.settings import SandboxSettings
from shopctl.stack import replica_of

T = TypeVar("T")


def on_services_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run the bench and its baseline on the event loop the services run on
    (uvicorn's uvloop), so the bare pipeline is measured at its best and the
    load takes no more of the shared machine than it must; asyncio's own
    loop where uvloop is missing."""
    try:
        import uvloop
    except ImportError:
        import asyncio

        return asyncio.run(work)
    return uvloop.run(work)


def part_pids(settings: SandboxSettings, runtime: Runtime) -> Callable[[], dict[str, list[int]]]:
    """The processes of each part, as the runtime runs them."""

    def pids() -> dict[str, list[int]]:
        if runtime.name == "docker":
            from shopctl.runtimes.docker import DockerRuntime

            assert isinstance(runtime, DockerRuntime)
            return runtime.part_pids()  # the containers' processes, not the machine's
        found = infrastructure_pids()
        if runtime.name == "local":
            state = json.loads((settings.state_dir / "local" / "state.json").read_text())
            for name, entry in state["parts"].items():
                # a replica's process is counted with its service, as on docker
                found.setdefault(replica_of(name)[0], []).append(int(entry["pid"]))
        return found

    return pids


def stack_connections(
    settings: SandboxSettings, runtime: Runtime
) -> Callable[[], dict[str, int] | None]:
    def connections() -> dict[str, int] | None:
        """The stack's sessions on the local runtime's PostgreSQL, by the
        part whose database they are on (None on docker)."""
        if runtime.name != "local":
            return None
        import psycopg

        prefix = f"{settings.database_prefix}_"
        try:
            with psycopg.connect(settings.pg_admin_url, autocommit=True, connect_timeout=3) as db:
                rows = db.execute(
                    "SELECT datname, count(*) FROM pg_stat_activity WHERE datname LIKE %s "
                    "GROUP BY datname",
                    (f"{prefix}%",),
                ).fetchall()
        except psycopg.Error:
            return None
        return {str(name).removeprefix(prefix): int(n) for name, n in rows}

    return connections


def bench_stack(
    settings: SandboxSettings,
    runtime: Runtime,
    *,
    rate: float | None,
    in_flight: int,
    duration_s: float,
    warmup_s: float,
    customers: int,
    skus: int,
    mix: dict[str, int],
    baseline: bool,
    progress: Callable[[str], None],
) -> tuple[BenchResult, Figures]:
    """Run the bench (after the bare pipeline when ``baseline``); its result
    and its figures, the ratio to the baseline among them."""
    bare, window = None, None
    if baseline:
        progress("the bare pipeline first (7 hops, same broker and database)")
        # what the bare pipeline's journeys cost each part of the machine
        window = Window(parts=lambda: cpu_by_part({**infrastructure_pids(), BARE: [os.getpid()]}))
        bare = on_services_loop(
            measure_baseline(
                runtime.broker_url(),
                settings.pg_admin_url,
                duration_s=min(duration_s, 15.0),
                in_flight=in_flight,
                progress=progress,
                window=window,
            )
        )
    result = on_services_loop(
        run_bench(
            f"http://127.0.0.1:{settings.gateway_port}",
            runtime.broker_url(),
            (settings.admin_email, settings.admin_password),
            rate=rate,
            duration_s=duration_s,
            warmup_s=warmup_s,
            customers=customers,
            skus=skus,
            mix=mix,
            pids=part_pids(settings, runtime),
            queue_names=[q.removesuffix(".dlq") for q in dead_letter_queues()],
            in_flight=in_flight,
            connections=stack_connections(settings, runtime),
            sample_s=min(10.0, max(2.0, duration_s / 10)),
            progress=progress,
        )
    )
    figures = result.summary()
    if bare is not None and window is not None:
        figures["baseline_per_s"] = round(bare, 1)
        figures["ratio_to_baseline"] = round(figures["completed_per_s"] / bare, 3) if bare else None
        figures["baseline_cpu_ms_a_journey"] = per_unit_ms(window.parts_cpu_s, window.journeys)
        figures["baseline_machine_busy_share"] = busy_share(
            window.parts_cpu_s.get(MACHINE, 0.0), window.wall_s
        )
    return result, figures
