"""The Alembic environment shared by every service (sync psycopg 3)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

# One fixed key: replicas starting together migrate one after the other.
_MIGRATION_LOCK = 0x5305_0001


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "services.common.migrations sets sqlalchemy.url"
    name = context.config.get_main_option("application_name") or "shop-migrate"
    engine = sa.create_engine(
        url, poolclass=sa.pool.NullPool, connect_args={"application_name": name}
    )
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
        # A migration that waits on a lock fails with the statement named
        # (and is retried by services.common.migrations) instead of hanging.
        connection.execute(sa.text("SET lock_timeout = '15s'"))
        connection.execute(sa.text("SET statement_timeout = '60s'"))
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=None)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("shop migrations run online only")
run_migrations_online()
