"""shopctl from a shell: exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys


def shopctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from shopctl.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unknown_command_is_a_usage_error():
    result = shopctl("bogus")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_up_says_plainly_that_no_runtime_exists_yet():
    result = shopctl("up")
    assert result.returncode == 4
    assert result.stderr.startswith("error: the stack cannot start yet")
    assert "Traceback" not in result.stderr


def test_catalog_prints_the_asyncapi_document():
    result = shopctl("catalog")
    assert result.returncode == 0
    assert json.loads(result.stdout)["asyncapi"] == "3.0.0"


def test_doctor_reports_the_machines_servers():
    result = shopctl("doctor")
    assert "PostgreSQL" in result.stdout and "RabbitMQ" in result.stdout
    assert result.returncode == (0 if "missing" not in result.stdout else 1)
