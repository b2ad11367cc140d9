"""scripts/lib.sh writes the bytecode ahead: where PYTHONDONTWRITEBYTECODE is
set, Python never caches what it compiles, so without it every process
compiled every module it imported again (docs/ci.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def loaded_from_bytecode(python: Path, module: str) -> bool:
    """Whether ``module`` is imported from a .pyc, with Python told to write none."""
    run = subprocess.run(
        [str(python), "-v", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=True,
    )
    loads = [line for line in run.stderr.splitlines() if f"{module}.cpython" in line]
    return any(line.startswith("# code object from") and ".pyc" in line for line in loads)


def test_a_venvs_packages_are_imported_from_bytecode_after_setup(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "shop_probe_module.py").write_text("VALUE = 1\n")
    (venv / ".shop-installed").touch()
    assert not loaded_from_bytecode(python, "shop_probe_module")  # nothing wrote it

    subprocess.run(
        ["bash", "-c", f'source scripts/lib.sh && VENV="{venv}" && compile_bytecode'],
        cwd=ROOT,
        check=True,
    )
    assert loaded_from_bytecode(python, "shop_probe_module")
    assert (venv / ".shop-bytecode").is_file()  # the packages once, not at every start
