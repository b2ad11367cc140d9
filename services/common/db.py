"""The async database layer: one pooled engine per service on psycopg 3."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .settings import ServiceSettings


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    """A pooled engine whose connections cannot hang forever: statement and
    idle-in-transaction timeouts are set per session, and dead connections
    are dropped before use (pre-ping) so a PostgreSQL restart heals itself.
    SHOP_DB_PRE_PING=false saves that round trip per checkout; its effect
    was below this machine's noise (docs/performance.md), so it stays on."""
    options = (
        f"-c statement_timeout={settings.db_statement_timeout_ms} "
        f"-c idle_in_transaction_session_timeout={settings.db_idle_in_transaction_timeout_ms}"
    )
    return create_async_engine(
        async_url(settings.database_url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_pre_ping=settings.db_pre_ping,
        pool_recycle=1800,
        connect_args={"options": options, "application_name": settings.service_name},
    )


def async_url(url: str) -> str:
    """The SQLAlchemy URL with the psycopg 3 driver, whatever the caller wrote."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def libpq_dsn(url: str) -> str:
    """A plain libpq URL (for psycopg used directly, e.g. LISTEN)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)
