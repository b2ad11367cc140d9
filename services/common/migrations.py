"""Per-service schema migrations with Alembic, applied when a service starts.

Every service keeps only its revision files (``services/<name>/migrations``);
the Alembic environment is shared and lives in ``services/common/alembic``.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from psycopg.errors import LockNotAvailable
from sqlalchemy.exc import OperationalError

from .db import async_url

_ENV_DIR = Path(__file__).parent / "alembic"
# Alembic's `context` and `op` are module-level proxies: one upgrade at a
# time per process. Across processes the advisory lock in env.py orders them.
_IN_PROCESS = threading.Lock()
_LOCK_RETRIES = 4
log = logging.getLogger(__name__)


def alembic_config(
    database_url: str, versions_dir: str | Path, application_name: str = "shop-migrate"
) -> Config:
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
