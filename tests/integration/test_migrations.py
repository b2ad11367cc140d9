"""Migrations applied at start: idempotent, and safe from two replicas at once."""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa

from services.common import migrations
from services.common.db import async_url
from tests.conftest import FIXTURE_MIGRATIONS, RUN_ID, _admin, _pg_url


def test_two_replicas_migrate_a_new_database_at_once():
    name = f"shoptest_{RUN_ID}_fresh"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        url = _pg_url(name)

        script = (
            "import sys; from services.common import migrations; "
            "migrations.upgrade(sys.argv[1], sys.argv[2])"
        )
        replicas = [
            subprocess.Popen([sys.executable, "-c", script, url, str(FIXTURE_MIGRATIONS)])
            for _ in range(2)
        ]
        assert [p.wait(timeout=60) for p in replicas] == [0, 0]
        migrations.upgrade(url, FIXTURE_MIGRATIONS)  # and again: nothing to do
        engine = sa.create_engine(async_url(url))
        with engine.connect() as conn:
            tables = set(
                conn.execute(
                    sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                ).scalars()
            )
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        engine.dispose()
        assert {"outbox", "inbox", "effects", "alembic_version"} <= tables
        assert version == "0001"
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
