"""The frontend's static build (frontend/dist), which the gateway serves at /
on both runtimes: built with npm when missing or older than its sources,
left alone otherwise (a warm `up` costs one look at file times)."""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from shopctl.errors import ShopError
from shopctl.settings import PROJECT_ROOT

FRONTEND = PROJECT_ROOT / "frontend"
DIST = FRONTEND / "dist"
SOURCES = ("src", "public", "index.html", "package.json", "package-lock.json", "vite.config.ts")


def _newest_source() -> float:
    newest = 0.0
    for name in SOURCES:
        path = FRONTEND / name
        files = path.rglob("*") if path.is_dir() else [path]
        for file in files:
            if file.is_file():
                newest = max(newest, file.stat().st_mtime)
    return newest


def is_current() -> bool:
    index = DIST / "index.html"
    return index.is_file() and index.stat().st_mtime >= _newest_source()


def ensure_built() -> str:
    """Build the frontend when it is stale; one line saying what happened
    ("" when the build was current)."""
    if not (FRONTEND / "package.json").is_file():
        return "no frontend in this checkout"
    if is_current():
        return ""
    with _build_lock():
        if is_current():  # another shopctl built it while this one waited
            return ""
        return _build()


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One build at a time, whichever sandbox asks."""
    FRONTEND.mkdir(exist_ok=True)
    with (FRONTEND / ".build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build() -> str:
    npm = shutil.which("npm")
    if npm is None:
        if (DIST / "index.html").is_file():
            return "frontend: npm not found; serving the older build"
        DIST.mkdir(parents=True, exist_ok=True)
        (DIST / "index.html").write_text(
            "<!doctype html><title>shop</title><p>The frontend has not been built here: "
            "install Node.js 20 and npm, then run <code>shopctl up</code> again. "
            "The API is at <a href='/docs'>/docs</a>.</p>\n"
        )
        return "frontend: not built (npm not found: install Node.js 20 and npm)"
    steps = (
        [[npm, "ci", "--no-audit", "--no-fund"]] if not (FRONTEND / "node_modules").is_dir() else []
    )
    steps.append([npm, "run", "build"])
    for step in steps:
        done = subprocess.run(step, cwd=FRONTEND, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise ShopError(
                f"building the frontend failed ({' '.join(step[1:])}): " + " / ".join(tail),
                hint="cd frontend && npm ci && npm run build",
            )
    (DIST / "index.html").touch()  # newer than every source now
    return "frontend: built now"


def served_dir() -> Path | None:
    return DIST if (DIST / "index.html").is_file() else None
