"""The stack's share of a PostgreSQL server's connections (case L1).

Every process of the stack opens at most ``pool_size + max_overflow``
pooled connections plus one for the outbox relay's LISTEN. Left at the
services' defaults, seven parts could ask for 147 against PostgreSQL's
default ``max_connections`` of 100, and under load they did ("remaining
connection slots are reserved"). So the runtime reads the server's limit,
keeps a reserve for people and tools and leaves what other clients hold,
and gives each process an equal part of the rest."""

from __future__ import annotations

from dataclasses import dataclass

from shopctl.errors import ShopError

LISTEN_CONNECTIONS = 1  # the relay's LISTEN (the start-up migration comes before it)
DEFAULT_CEILING = 21  # the services' defaults: pool 10 + overflow 10 + LISTEN
MINIMUM = 3  # pool 1 + overflow 1 + LISTEN


@dataclass(frozen=True)
class ConnectionBudget:
    max_connections: int
    superuser_reserved: int
    reserve: int  # kept free for people and tools (psql, shopctl, backups)
    held_by_others: int
    processes: int
    per_process: int

    @property
    def available(self) -> int:
        return self.max_connections - self.superuser_reserved - self.reserve - self.held_by_others

    @property
    def pool_size(self) -> int:
        pooled = self.per_process - LISTEN_CONNECTIONS
        return (pooled + 1) // 2

    @property
    def max_overflow(self) -> int:
        return self.per_process - LISTEN_CONNECTIONS - self.pool_size

    @property
    def total(self) -> int:
        return self.per_process * self.processes

    def environment(self) -> dict[str, str]:
        """What each process starts with."""
        return {
            "SHOP_DB_POOL_SIZE": str(self.pool_size),
            "SHOP_DB_MAX_OVERFLOW": str(self.max_overflow),
        }

    def describe(self) -> str:
        return (
            f"{self.max_connections} max - {self.superuser_reserved} superuser - "
            f"{self.reserve} reserve - {self.held_by_others} held by others = "
            f"{self.available} free; the stack takes {self.total} at most: "
            f"{self.processes} processes x {self.per_process} "
            f"(pool {self.pool_size} + overflow {self.max_overflow} + {LISTEN_CONNECTIONS} listen)"
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "max_connections": self.max_connections,
            "superuser_reserved": self.superuser_reserved,
            "reserve": self.reserve,
            "held_by_others": self.held_by_others,
            "processes": self.processes,
            "per_process": self.per_process,
        }


def plan_budget(
    max_connections: int,
    superuser_reserved: int,
    held_by_others: int,
    processes: int,
    reserve: int,
    ceiling: int = DEFAULT_CEILING,
) -> ConnectionBudget:
    """An equal share for each process, at most ``ceiling``; ShopError when
    the share would be below what a process needs to work."""
    free = max_connections - superuser_reserved - reserve - held_by_others
    share = min(ceiling, free // max(processes, 1))
    if share < MINIMUM:
        raise ShopError(
            f"PostgreSQL has {max(free, 0)} connections free for the stack's {processes} "
            f"processes, and each needs at least {MINIMUM}",
            hint=f"raise max_connections (now {max_connections}), stop other clients "
            f"({held_by_others} connections now), or lower SHOP_DB_RESERVE ({reserve})",
        )
    return ConnectionBudget(
        max_connections, superuser_reserved, reserve, held_by_others, processes, share
    )


def read_budget(
    admin_url: str,
    processes: int,
    reserve: int,
    own_databases: list[str] | None = None,
    ceiling: int = DEFAULT_CEILING,
) -> ConnectionBudget:
    """The budget off the server at ``admin_url`` as it is now. Connections
    to ``own_databases`` (the stack's own, from parts still running) are not
    counted as others'."""
    import psycopg  # where a database is asked: every command imports this module

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as db:
        row = db.execute(
            "SELECT current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int,"
            " (SELECT count(*) FROM pg_stat_activity"
            "   WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            "   AND NOT coalesce(datname = ANY(%s), false))::int",
            (own_databases or [],),
        ).fetchone()
    assert row is not None
    return plan_budget(row[0], row[1], row[2], processes, reserve, ceiling)
