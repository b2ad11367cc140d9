"""Per-service schema migrations with Alembic, applied when a service starts.

Every service keeps only its revision files (``services/<name>/migrations``);
the Alembic environment is shared and lives in ``services/common/alembic``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg.errors import LockNotAvailable
from sqlalchemy.exc import OperationalError

from .db import async_url, libpq_dsn

if TYPE_CHECKING:
    from alembic.config import Config

_ENV_DIR = Path(__file__).parent / "alembic"
# Alembic's `context` and `op` are module-level proxies: one upgrade at a
# time per process. Across processes the advisory lock in env.py orders them.
_IN_PROCESS = threading.Lock()
_LOCK_RETRIES = 4
log = logging.getLogger(__name__)


# a migration file's own lines: revision = "0002", down_revision = "0001"
_ASSIGNED = re.compile(r"^(revision|down_revision)\b[^=\n]*=(.*)$", re.MULTILINE)


def heads(versions_dir: str | Path) -> set[str]:
    """The newest revisions of a migrations folder, read from its files'
    ``revision`` and ``down_revision`` lines (a merge names several)."""
    named: dict[str, set[str]] = {"revision": set(), "down_revision": set()}
    for path in Path(versions_dir).glob("*.py"):
        for name, value in _ASSIGNED.findall(path.read_text()):
            named[name].update(re.findall(r"[\"']([^\"']+)[\"']", value))
    return named["revision"] - named["down_revision"]


def at_heads(database_url: str, versions_dir: str | Path) -> bool:
    """Whether the database is at the folder's heads already (a service's
    usual start), asked in one query: Alembic's import alone costs a third
    of a CPU-second, seven services at once on every start of a stack."""
    wanted = heads(versions_dir)
    if not wanted:
        return False
    try:
        with psycopg.connect(libpq_dsn(database_url), connect_timeout=5) as conn:
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except psycopg.Error:  # no such table yet, or unreachable: Alembic says
        return False
    return {str(row[0]) for row in rows} == wanted


def alembic_config(
    database_url: str, versions_dir: str | Path, application_name: str = "shop-migrate"
) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("application_name", application_name)
    config.set_main_option("script_location", str(_ENV_DIR))
    config.set_main_option("version_locations", str(Path(versions_dir)))
    config.set_main_option("path_separator", "os")
    # '%' would be read as interpolation by configparser.
    config.set_main_option("sqlalchemy.url", async_url(database_url).replace("%", "%%"))
    return config


def upgrade(
    database_url: str,
    versions_dir: str | Path,
    revision: str = "heads",
    application_name: str = "shop-migrate",
) -> None:
    """Bring the database to ``revision``. Safe to call from several replicas
    at once: the environment holds a PostgreSQL advisory lock meanwhile."""
    if revision == "heads" and at_heads(database_url, versions_dir):
        log.debug("database at %s already", sorted(heads(versions_dir)))
        return
    from alembic import command

    with _IN_PROCESS:
        for attempt in range(1, _LOCK_RETRIES + 1):
            try:
                config = alembic_config(database_url, versions_dir, application_name)
                command.upgrade(config, revision)
                return
            except OperationalError as exc:
                if not isinstance(exc.orig, LockNotAvailable) or attempt == _LOCK_RETRIES:
                    raise
                log.warning("migration waited too long for a lock (%s); retrying", exc.orig)
                time.sleep(attempt)
