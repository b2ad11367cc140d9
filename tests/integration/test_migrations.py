"""Migrations applied at start: idempotent, and safe from two replicas at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
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
        tables = tables_of(url)
        engine = sa.create_engine(async_url(url))
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        engine.dispose()
        assert {"outbox", "inbox", "effects", "alembic_version"} <= tables
        assert version == "0001"
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_database_at_its_heads_is_known_without_alembic():
    """A service's usual start asks the version in one query; a database
    behind, or new, goes through Alembic."""
    versions = Path(__file__).resolve().parents[2] / "services" / "order" / "migrations"
    assert migrations.heads(versions) == {"0003"}
    name = f"shoptest_{RUN_ID}_heads"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        url = _pg_url(name)
        assert not migrations.at_heads(url, versions)  # no alembic_version yet
        migrations.upgrade(url, versions)
        assert migrations.at_heads(url, versions)
        engine = sa.create_engine(async_url(url))
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0002'"))
        assert not migrations.at_heads(url, versions)
        # behind: the upgrade goes through Alembic and runs 0003 again
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE sagas CASCADE"))
        migrations.upgrade(url, versions)
        engine.dispose()
        assert migrations.at_heads(url, versions) and "sagas" in tables_of(url)
        # at its heads, a start imports no Alembic (a process of its own)
        script = (
            "import sys; from services.common import migrations; "
            "migrations.upgrade(sys.argv[1], sys.argv[2]); print('alembic' in sys.modules)"
        )
        ran = subprocess.run(
            [sys.executable, "-c", script, url, str(versions)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 0 and ran.stdout.strip() == "False", ran.stdout + ran.stderr
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("service", ["cart", "order", "inventory", "payment"])
def test_a_service_migrated_down_to_base_leaves_no_table(service):
    """Every migration undoes itself: the outbox, inbox and saga history too."""
    from alembic import command

    name = f"shoptest_{RUN_ID}_down_{service}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        url = _pg_url(name)
        versions = Path(__file__).resolve().parents[2] / "services" / service / "migrations"
        migrations.upgrade(url, versions)
        command.downgrade(migrations.alembic_config(url, versions), "base")
        assert tables_of(url) == {"alembic_version"}
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def tables_of(url: str) -> set[str]:
    engine = sa.create_engine(async_url(url))
    with engine.connect() as conn:
        found = set(
            conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
        )
    engine.dispose()
    return found
