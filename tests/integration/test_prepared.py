"""Prepared statements (services.common.db.Prepared): an SQLAlchemy Core
statement run on the driver's connection does what SQLAlchemy would have
done with it, against the real PostgreSQL."""

from __future__ import annotations

import enum
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert

from services.common.db import Driver, Prepared, create_engine


class Colour(enum.StrEnum):
    RED = "RED"
    GREEN = "GREEN"
    BLUE = "BLUE"


metadata = sa.MetaData()
things = sa.Table(
    "prepared_things",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("colour", sa.String(10), nullable=False),
    sa.Column("tags", JSONB, nullable=False),
    sa.Column("n", sa.Integer, nullable=False, server_default="0"),
)
# As the services write theirs: bind parameters, a fixed IN list, JSON, an
# enum member given as a literal, RETURNING read by name.
_ADD = Prepared(
    insert(things)
    .values(
        id=sa.bindparam("id"),
        colour=Colour.RED,
        tags=sa.bindparam("tags", type_=JSONB),
    )
    .on_conflict_do_nothing()
    .returning(things.c.id, things.c.colour)
)
_BUMP = Prepared(
    things.update()
    .where(things.c.id == sa.bindparam("id"), things.c.colour.in_([Colour.RED, Colour.GREEN]))
    .values(n=things.c.n + sa.bindparam("by"), colour=sa.bindparam("colour"))
    .returning(things.c.n)
)
_READ = Prepared(
    sa.select(things.c.colour, things.c.tags, things.c.n).where(things.c.id == sa.bindparam("id"))
)


@pytest.fixture
async def engine(settings):
    engine = create_engine(settings)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def test_a_prepared_statement_does_what_sqlalchemy_does(engine):
    ids = [uuid.uuid4(), uuid.uuid4()]
    tags = {"a": [1, 2], "b": None}
    async with engine.begin() as conn:
        db = await Driver.of(conn)
        added = await db.run(_ADD, {"id": ids[0], "tags": tags})
        assert added.rowcount == 1
        row = added.first()
        assert (row.id, row.colour) == (ids[0], "RED")
        assert (await db.run(_ADD, {"id": ids[0], "tags": tags})).first() is None  # conflict
        # the same statement through SQLAlchemy, for the second row
        await conn.execute(_ADD.statement, {"id": ids[1], "tags": tags})
        bumped = await db.run(_BUMP, {"id": ids[0], "by": 5, "colour": Colour.BLUE})
        assert bumped.scalar_one() == 5
        # BLUE is not in the IN list: nothing moves
        assert (await db.run(_BUMP, {"id": ids[0], "by": 1, "colour": "RED"})).rowcount == 0
    async with engine.connect() as conn:
        through_sqlalchemy = [
            tuple((await conn.execute(_READ.statement, {"id": i})).one()) for i in ids
        ]
        db = await Driver.of(conn)
        prepared = [tuple((await db.run(_READ, {"id": i})).first()) for i in ids]
    assert prepared == through_sqlalchemy
    assert prepared == [("BLUE", tags, 5), ("RED", tags, 0)]


async def test_a_failed_statement_is_sqlalchemys_error_and_undoes_the_transaction(engine):
    thing = uuid.uuid4()
    plain_insert = Prepared(
        things.insert().values(id=sa.bindparam("id"), colour="RED", tags=sa.bindparam("tags"))
    )
    async with engine.begin() as conn:
        await (await Driver.of(conn)).run(plain_insert, {"id": thing, "tags": []})
    with pytest.raises(sa.exc.IntegrityError):
        async with engine.begin() as conn:
            db = await Driver.of(conn)
            await db.run(_BUMP, {"id": thing, "by": 1, "colour": "GREEN"})
            await db.run(plain_insert, {"id": thing, "tags": []})  # the same key again
    async with engine.connect() as conn:
        assert (await (await Driver.of(conn)).run(_READ, {"id": thing})).first().n == 0


class Upper(sa.TypeDecorator[str]):
    impl = sa.String
    cache_ok = True

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        return value.upper() if value is not None else None


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        # a Python-side default is made by SQLAlchemy's execution
        (
            sa.Table(
                "d",
                sa.MetaData(),
                sa.Column("id", sa.Uuid, primary_key=True, default=uuid.uuid4),
                sa.Column("n", sa.Integer),
            )
            .insert()
            .values(n=sa.bindparam("n")),
            "Python-side defaults",
        ),
        # an IN list given at run time expands in SQLAlchemy's execution
        (
            sa.select(things.c.id).where(
                things.c.colour.in_(sa.bindparam("colours", expanding=True))
            ),
            "IN list passed at run time",
        ),
        # a result processor runs in SQLAlchemy's result
        (sa.select(sa.literal_column("'x'", Upper).label("x")), "result processor"),
    ],
)
async def test_a_statement_that_needs_sqlalchemys_execution_is_refused(engine, statement, why):
    async with engine.connect() as conn:
        db = await Driver.of(conn)
        with pytest.raises(TypeError, match=why):
            await db.run(Prepared(statement), {})
