"""Before and after, interleaved: the same `shopctl bench` runs against two
versions of the project, alternating A B A B ..., so both meet the same
machine noise. Each version runs from its own git worktree (in a temporary
directory) with this checkout's virtualenv and frontend build; the stacks
take turns on the default sandbox ports and databases, never at once.

    python bench/compare.py BEFORE [AFTER] [--rounds 3] [--rate 20] [--duration 20]

BEFORE and AFTER are git revisions (AFTER defaults to the work tree as it
is). Per round and version: `up --runtime local` from that version (timed,
as a person waits for it; `--replicas` is passed to it), then a paced run
and a flood with the bare baseline, both by this work tree's `shopctl
bench` (one instrument for both stacks), then `down`. Prints every run,
then the medians and the after/before ratio of each figure, and what
machine it ran on. The first round warms both versions up (databases
created, files cached): with more than one round, the medians leave it
out."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = (
    ("flood completed/s", "flood", "completed_per_s"),
    ("flood ratio to baseline", "flood", "ratio_to_baseline"),
    ("flood stack CPU ms/order", "flood", "cpu"),
    ("paced p50 ms", "paced", ("checkout_to_completed_ms", "p50")),
    ("paced p99 ms", "paced", ("checkout_to_completed_ms", "p99")),
    ("paced stack CPU ms/order", "paced", "cpu"),
    ("paced services PSS MB", "paced", "services_mb"),
    ("paced whole stack PSS MB", "paced", "stack_mb"),
    ("warm up s", "up", "seconds"),
)
LOAD = "shopctl bench (the load)"


def worktree(revision: str | None, into: Path) -> Path:
    """A checkout of ``revision`` (None: this work tree itself)."""
    if revision is None:
        return ROOT
    path = into / revision.replace("/", "_")
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(path), revision],
        check=True,
        capture_output=True,
    )
    # the frontend build and its node_modules are the same for both: share them
    for shared in ("frontend/dist", "frontend/node_modules"):
        if (ROOT / shared).exists() and not (path / shared).exists():
            (path / shared).symlink_to(ROOT / shared)
    return path


STATE = Path(tempfile.mkdtemp(prefix="shop-compare-state-"))  # one sandbox, both versions


def shopctl(tree: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    # run from the tree, so that tree's shopctl and services load
    return subprocess.run(
        [sys.executable, "-c", "from shopctl.cli import main; main()", *args],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree), "NO_COLOR": "1", "SHOP_STATE_DIR": str(STATE)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def bench(*args: str) -> dict:
    done = shopctl(ROOT, "bench", *args, "--json", "--warmup", "3")
    if done.returncode != 0:
        raise SystemExit(f"bench failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout[done.stdout.index("{") :])


def figure(run: dict, key: str | tuple[str, str]) -> float | None:
    if key in ("services_mb", "stack_mb"):
        # memory (PSS) at the end of the run: the service processes, or every
        # part of the stack (RabbitMQ and PostgreSQL too) but the load
        memory = {part: v for part, v in run.get("rss_mb", {}).items() if part != LOAD}
        if key == "services_mb":
            memory = {p: v for p, v in memory.items() if p not in ("rabbitmq", "postgresql")}
        return round(sum(memory.values())) if memory else None
    if key == "cpu":
        # The same sum for both versions (an older bench has no such figure):
        # the stack's CPU over the measured orders that ended.
        ended = sum(n for outcome, n in run["outcomes"].items() if outcome != "not ended")
        cpu = sum(v for part, v in run["cpu_s"].items() if part != LOAD)
        return round(cpu * 1000 / ended, 1) if ended else None
    value = run.get(key[0], {}).get(key[1]) if isinstance(key, tuple) else run.get(key)
    return float(value) if value is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("after", nargs="?")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--replicas", default="", help="passed to up, e.g. inventory=2,payment=2")
    options = parser.parse_args()
    up_args = ["up", "--runtime", "local"]
    if options.replicas:
        up_args += ["--replicas", options.replicas]

    scratch = Path(tempfile.mkdtemp(prefix="shop-compare-"))
    trees = {
        "before": worktree(options.before, scratch),
        "after": worktree(options.after, scratch),
    }
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    try:
        for round_ in range(1, options.rounds + 1):
            for name, tree in trees.items():
                started = time.monotonic()
                up = shopctl(tree, *up_args)
                up_s = time.monotonic() - started  # warm: the databases are there after round 1
                if up.returncode != 0:
                    raise SystemExit(
                        f"up failed for {name}:\n{up.stdout[-2000:]}{up.stderr[-2000:]}"
                    )
                try:
                    paced = bench("--rate", str(options.rate), "--duration", str(options.duration))
                    flood = bench("--flood", "--duration", str(options.duration), "--baseline")
                finally:
                    shopctl(tree, "down")
                run = {"paced": paced, "flood": flood, "up": {"seconds": round(up_s, 2)}}
                if round_ > 1 or options.rounds == 1:
                    runs[name].append(run)
                line = ", ".join(
                    f"{label} {figure(run[kind], key)}" for label, kind, key in FIGURES
                )
                print(f"round {round_} {name}: {line}", flush=True)
    finally:
        for tree in trees.values():
            if tree != ROOT:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                    capture_output=True,
                )
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(STATE, ignore_errors=True)

    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    print(
        f"\nmedians of {len(runs['after'])} interleaved rounds (of {options.rounds}), {when}, "
        f"{platform.node()} ({os.cpu_count()} CPUs, {platform.python_version()}); "
        f"before {options.before}, after {options.after or 'the work tree'}"
    )
    print(f"{'figure':28} {'before':>10} {'after':>10} {'after/before':>13}")
    for label, kind, key in FIGURES:
        values = {}
        for name in runs:
            found = [v for r in runs[name] if (v := figure(r[kind], key)) is not None]
            values[name] = statistics.median(found) if found else None
        before, after = values["before"], values["after"]
        ratio = f"{after / before:.2f}" if before and after is not None else "-"
        shown = {k: "-" if v is None else f"{v:g}" for k, v in values.items()}
        print(f"{label:28} {shown['before']:>10} {shown['after']:>10} {ratio:>13}")


if __name__ == "__main__":
    main()
