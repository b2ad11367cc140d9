"""The sandbox as containers through docker-py."""

from __future__ import annotations


def docker_engine_error() -> str | None:
    """None when a Docker engine answers, else why not (one line)."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:  # pragma: no cover - docker-py is a dependency
        return "docker-py is not installed"
    try:
        client = docker.from_env(timeout=3)
        client.ping()
        client.close()
    except DockerException as exc:
        text = str(exc)
        if "FileNotFoundError" in text or "No such file" in text or "Connection refused" in text:
            return "no engine at the Docker socket"
        return text.splitlines()[0][:160]
    return None


class DockerRuntime:
    name = "docker"
