"""The docker runtime's app image is named by what goes into it: a change to
any file the Dockerfile copies (or to the base image) makes another hash,
so `up` rebuilds without --build; bytecode and caches do not."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopctl.runtimes import docker as docker_runtime
from shopctl.runtimes.docker import IMAGE_INPUTS, content_hash


@pytest.fixture
def tree(tmp_path: Path, monkeypatch) -> Path:
    for name in IMAGE_INPUTS:
        target = tmp_path / name
        if "." in Path(name).name:  # a file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"{name}\n")
        else:
            (target / "pkg").mkdir(parents=True)
            (target / "pkg" / "module.py").write_text("x = 1\n")
    (tmp_path / "tests").mkdir()
    monkeypatch.setattr(docker_runtime, "PROJECT_ROOT", tmp_path)
    return tmp_path


def test_a_source_change_makes_another_hash(tree: Path):
    before = content_hash("shop/python:local")
    assert content_hash("shop/python:local") == before  # the same files, the same name
    (tree / "services" / "pkg" / "module.py").write_text("x = 2\n")
    changed = content_hash("shop/python:local")
    assert changed != before
    (tree / "frontend" / "dist" / "pkg" / "extra.js").write_text("new")
    assert content_hash("shop/python:local") not in (before, changed)
    assert content_hash("python:3.11-slim-bookworm") != content_hash("shop/python:local")


def test_caches_and_what_the_image_leaves_out_do_not_count(tree: Path):
    before = content_hash("shop/python:local")
    cache = tree / "services" / "pkg" / "__pycache__"
    cache.mkdir()
    (cache / "module.cpython-311.pyc").write_bytes(b"\0")
    (tree / "tests" / "test_x.py").write_text("assert True\n")
    # the sandbox's code is not in the image: changing it builds nothing
    (tree / "shopctl" / "pkg").mkdir(parents=True)
    (tree / "shopctl" / "pkg" / "cli.py").write_text("x = 3\n")
    assert content_hash("shop/python:local") == before
