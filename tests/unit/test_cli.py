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


def test_up_with_an_unknown_runtime_is_a_usage_error():
    result = shopctl("up", "--runtime", "podman")
    assert result.returncode == 2
    assert "unknown runtime 'podman'" in result.stderr
    assert "Traceback" not in result.stderr


def test_up_on_docker_without_an_engine_exits_4(tmp_path, monkeypatch):
    # an engine's socket where none listens, whether or not this machine runs one
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    result = shopctl("up", "--runtime", "docker")
    assert result.returncode == 4
    assert result.stderr.startswith("error: no Docker engine answers")


def test_seed_goes_to_the_sandboxs_own_gateway_port(monkeypatch):
    """Not 8080 whatever the sandbox's port: `up` prints SHOP_GATEWAY_PORT's."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("SHOP_GATEWAY_PORT", str(port))
    result = shopctl("seed")
    assert result.returncode != 0
    assert f"the gateway at http://127.0.0.1:{port} cannot be reached" in result.stderr


def test_restart_of_an_unknown_part_is_a_usage_error():
    result = shopctl("restart", "warehouse")
    assert result.returncode == 2
    assert "no part named 'warehouse'" in result.stderr


def test_catalog_prints_the_asyncapi_document():
    result = shopctl("catalog")
    assert result.returncode == 0
    assert json.loads(result.stdout)["asyncapi"] == "3.0.0"


def test_doctor_reports_the_machines_servers():
    result = shopctl("doctor")
    assert "PostgreSQL" in result.stdout and "RabbitMQ" in result.stdout
    assert result.returncode == (0 if "missing" not in result.stdout else 1)


def test_the_command_line_loads_no_database_http_or_broker_client_until_a_command_asks():
    """Every shopctl command imports the whole command line first: psycopg,
    httpx and aio-pika (about 0.15 CPU-s together) wait for the commands
    that talk to a database, Prometheus or the broker."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, shopctl.cli; "
            "print(' '.join(m for m in ('psycopg', 'httpx', 'aio_pika') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == ""
