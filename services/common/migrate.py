"""``python -m services.common.migrate``: bring one service's database to its
newest schema and exit, as a Kubernetes init container does before the
service starts (deploy/kubernetes). Reads the service's own settings
(``SHOP_SERVICE_NAME``, ``SHOP_DATABASE_URL``); waits for the database as the
service would. Replicas starting at once are ordered by the migrations'
advisory lock; the service's own start then finds nothing to do."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from . import migrations
from .runtime import wait_for_database
from .settings import ServiceSettings

SERVICES = Path(__file__).parents[1]


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = ServiceSettings()
    versions = SERVICES / settings.service_name / "migrations"
    if not versions.is_dir():
        print(f"no migrations for a service named {settings.service_name!r}", file=sys.stderr)
        return 2
    asyncio.run(wait_for_database(settings))
    migrations.upgrade(
        settings.database_url, versions, application_name=f"{settings.service_name}-migrate"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
