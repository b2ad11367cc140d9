"""The transactional outbox and its relay against the real servers (P1-P5)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import psycopg
import pytest
import sqlalchemy as sa

from services.common.broker import Broker
from services.common.db import create_engine, libpq_dsn
from services.common.events import OrderCompleted, ProductCreated
from services.common.metrics import Metrics
from services.common.outbox import OutboxRelay, OutboxRow, unit_of_work
from services.common.schema import OUTBOX_CHANNEL
from services.common.settings import ServiceSettings
from tests.conftest import eventually


class Stack:
    """An engine, a broker connection and a relay, as one service holds them."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.engine = create_engine(settings)
        self.broker = Broker(settings)
        self.relay = OutboxRelay(self.engine, self.broker, settings)

    async def __aenter__(self) -> Stack:
        await self.broker.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.relay.stop()
        await self.broker.close()
        await self.engine.dispose()

    async def commit(self, *events: object) -> list[str]:
        async with unit_of_work(self.engine, "test", on_commit=self.relay.wake) as uow:
            ids = [str(uow.emit(e, correlation_id=uuid.uuid4()).id) for e in events]  # type: ignore[arg-type]
        return ids

    async def commit_with_id(self, event_id: uuid.UUID) -> None:
        """An outbox row with this event id, committed on its own connection."""
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO outbox (event_id, event_type, routing_key, correlation_id, body)"
                    " VALUES (:id, 'OrderCompleted', 'order.completed', 'x', '\\x00')"
                ),
                {"id": event_id},
            )

    async def scalar(self, sql: str) -> object:
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.text(sql))).scalar()


def completed() -> OrderCompleted:
    return OrderCompleted(order_id=uuid.uuid4())


async def test_rolled_back_transaction_publishes_nothing(settings, probe_factory):
    probe = await probe_factory("order.completed")
    async with Stack(settings) as stack:
        stack.relay.start()
        with pytest.raises(RuntimeError, match="business rule"):
            async with unit_of_work(stack.engine, "test", on_commit=stack.relay.wake) as uow:
                uow.emit(completed(), correlation_id="rolled-back")
                raise RuntimeError("business rule broken")
        assert await stack.scalar("SELECT count(*) FROM outbox") == 0

        # A later committed event arrives alone: nothing of the rollback went out.
        [marker] = await stack.commit(completed())
        await probe.wait_for(1)
        await eventually(
            lambda: stack.scalar("SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL")
        )
        assert probe.ids() == [marker]


async def test_committed_event_reaches_bound_queue_exactly_once(settings, probe_factory):
    probe = await probe_factory("order.completed")
    async with Stack(settings) as stack:
        stack.relay.start()
        [event_id] = await stack.commit(completed())
        await probe.wait_for(1)
        await eventually(lambda: stack.scalar("SELECT published_at IS NOT NULL FROM outbox"))
        # Nothing left to publish, and a second marker proves the queue saw no repeat.
        assert await stack.relay.drain_once() == 0
        [marker] = await stack.commit(completed())
        await probe.wait_for(2)
        assert probe.ids() == [event_id, marker]
        body = probe.messages[0]
        assert body.type == "OrderCompleted"
        assert body.content_type == "application/cloudevents+json"


async def test_event_committed_while_no_relay_runs_is_published_on_start(settings, probe_factory):
    """The process died right after the commit: the next relay publishes it once."""
    probe = await probe_factory("order.completed")
    async with Stack(settings) as stack:
        [event_id] = await stack.commit(completed())
        assert await stack.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 1
    async with Stack(settings) as restarted:
        restarted.relay.start()
        await probe.wait_for(1)
        await eventually(lambda: restarted.scalar("SELECT published_at IS NOT NULL FROM outbox"))
        [marker] = await restarted.commit(completed())
        await probe.wait_for(2)
        assert probe.ids() == [event_id, marker]


class StuckRelay(OutboxRelay):
    """A relay that claims rows and then hangs before publishing, to be killed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.claimed = asyncio.Event()

    async def _publish(self, row: OutboxRow) -> None:
        self.claimed.set()
        await asyncio.Event().wait()


async def test_relay_killed_between_claim_and_publish_another_publishes_once(
    settings, probe_factory
):
    probe = await probe_factory("order.completed")
    async with Stack(settings) as stack:
        stuck = StuckRelay(stack.engine, stack.broker, settings)
        stuck.start()
        [event_id] = await stack.commit(completed())
        stuck.wake()
        await asyncio.wait_for(stuck.claimed.wait(), 10)
        await stuck.stop()  # killed mid-flight: the claim is held, nothing published
        assert await stack.scalar("SELECT claimed_until IS NOT NULL FROM outbox") is True
        assert probe.messages == []

        stack.relay.start()  # a fresh relay takes the row once the lease expires
        await probe.wait_for(1)
        await eventually(lambda: stack.scalar("SELECT published_at IS NOT NULL FROM outbox"))
        [marker] = await stack.commit(completed())
        await probe.wait_for(2)
        assert probe.ids() == [event_id, marker]


async def test_unroutable_event_stays_unsent_until_a_queue_is_bound(settings, probe_factory):
    """P2: no binding for the key means an error for the relay, not a silent drop."""
    product = ProductCreated(sku="SKU-1", name="n", price_cents=1, currency="EUR", initial_stock=1)
    async with Stack(settings) as stack:
        await stack.commit(product)
        assert await stack.relay.drain_once() == 0
        row = await stack.scalar("SELECT last_error FROM outbox WHERE published_at IS NULL")
        assert "NO_ROUTE" in str(row)

        probe = await probe_factory("product.created")
        stack.relay.start()
        await probe.wait_for(1)
        await eventually(lambda: stack.scalar("SELECT published_at IS NOT NULL FROM outbox"))
        assert len(probe.messages) == 1


async def test_two_relays_on_one_outbox_publish_each_row_once(settings, probe_factory):
    """P5: two replicas sweep one outbox at once; every row goes out once."""
    probe = await probe_factory("order.completed")
    settings = settings.model_copy(update={"outbox_batch_size": 7})
    async with Stack(settings) as first, Stack(settings) as second:
        for stack in (first, second):
            stack.relay.metrics = Metrics(settings.service_name)
        ids: list[str] = []
        for _ in range(20):
            ids += await first.commit(*(completed() for _ in range(10)))
        first.relay.start()
        second.relay.start()
        await probe.wait_for(len(ids), timeout=30)
        await eventually(
            lambda: first.scalar("SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL")
        )
        [marker] = await second.commit(completed())
        await probe.wait_for(len(ids) + 1)
        counts = Counter(probe.ids())
        assert set(counts) == {*ids, marker}
        assert max(counts.values()) == 1
        assert await first.scalar("SELECT max(publish_attempts) FROM outbox") == 1
        shares = [published(stack.relay.metrics) for stack in (first, second)]
        assert sum(shares) == len(ids) + 1
        assert min(shares) > 0, f"one relay did all the work: {shares}"


def published(metrics: Metrics | None) -> float:
    assert metrics is not None
    value = metrics.registry.get_sample_value(
        "shop_events_published_total", {"event_type": "OrderCompleted"}
    )
    return value or 0.0


async def test_rows_handed_to_the_running_relay_go_out_without_a_claim_or_a_notify(
    settings, probe_factory
):
    """The fast path: the rows are written claimed by the process's own relay
    and published at commit; no sweep, no claim, no NOTIFY is needed."""
    probe = await probe_factory("order.completed")
    settings = settings.model_copy(update={"outbox_poll_interval_s": 600.0})
    async with Stack(settings) as stack:
        stack.relay.start()
        await asyncio.wait_for(stack.relay.listening.wait(), 10)
        await eventually(lambda: stack.relay._sweep is False)  # the start's sweep is done
        async with await psycopg.AsyncConnection.connect(
            libpq_dsn(settings.database_url), autocommit=True
        ) as listener:
            await listener.execute(f"LISTEN {OUTBOX_CHANNEL}")
            async with unit_of_work(stack.engine, "test", relay=stack.relay) as uow:
                first = uow.emit(completed(), correlation_id=uuid.uuid4())
                second = uow.emit(completed(), correlation_id=uuid.uuid4())
            await probe.wait_for(2)
            assert [n async for n in listener.notifies(timeout=0.3)] == []
            # whereas a transaction with no relay to hand to wakes every relay
            await stack.commit(completed())
            assert len([n async for n in listener.notifies(timeout=5, stop_after=1)]) == 1
        await probe.wait_for(3)
        assert sorted(probe.ids()[:2]) == sorted([str(first.id), str(second.id)])
        await eventually(
            lambda: stack.scalar("SELECT count(*) = 3 FROM outbox WHERE published_at IS NOT NULL")
        )
        # The handed-over rows were never claimed by a sweep; the other was.
        attempts = await stack.scalar("SELECT array_agg(publish_attempts ORDER BY id) FROM outbox")
        assert attempts == [0, 0, 1]


async def test_rows_a_relay_was_handed_and_never_published_are_swept_after_the_lease(
    settings, probe_factory
):
    """The process died between its commit and its publish: the rows are
    claimed by a relay that is gone; once the lease is over another relay
    publishes them, once."""
    probe = await probe_factory("order.completed")
    settings = settings.model_copy(update={"outbox_lease_s": 1.5, "outbox_poll_interval_s": 0.2})

    class Dying(OutboxRelay):
        def hand_over(self, rows):  # the process dies before publishing
            pass

    async with Stack(settings) as stack, Stack(settings) as other:
        dying = Dying(stack.engine, stack.broker, settings)
        dying.start()
        async with unit_of_work(stack.engine, "test", relay=dying) as uow:
            event = uow.emit(completed(), correlation_id=uuid.uuid4())
        for task in dying._tasks:
            task.cancel()  # killed: no graceful stop
        assert await stack.scalar("SELECT claimed_until > now() FROM outbox") is True

        other.relay.start()
        await asyncio.sleep(0.8)
        assert probe.messages == [], "published while another relay still held the claim"
        await probe.wait_for(1, timeout=10)
        await eventually(lambda: stack.scalar("SELECT published_at IS NOT NULL FROM outbox"))
        assert probe.ids() == [str(event.id)]


async def test_a_stopping_relay_publishes_what_was_handed_to_it(settings, probe_factory):
    probe = await probe_factory("order.completed")
    async with Stack(settings) as stack:
        stack.relay.start()
        rows = []

        class Keeper:  # rows written for a relay, kept to hand over later
            claim_s = 30.0
            kept: list = []

            def hand_over(self, handed):
                self.kept.extend(handed)

        keeper = Keeper()
        async with unit_of_work(stack.engine, "test", relay=keeper) as uow:
            rows.append(uow.emit(completed(), correlation_id=uuid.uuid4()))
        # Handed over just as the relay stops: it still goes out, and is marked.
        stack.relay._stopping = True
        stack.relay.hand_over(keeper.kept)
        await stack.relay.stop()
        await probe.wait_for(1)
        assert probe.ids() == [str(rows[0].id)]
        assert await stack.scalar("SELECT published_at IS NOT NULL FROM outbox") is True


async def test_handed_over_rows_are_marked_sent_together_after_the_delay(settings, probe_factory):
    """A relay marks the rows its process hands over in one statement once
    the oldest has waited ``outbox_mark_delay_s``, not one statement a
    batch; stopping marks what is still waiting."""
    settings = settings.model_copy(update={"outbox_lease_s": 4.0, "outbox_mark_delay_s": 0.5})
    probe = await probe_factory("order.completed")
    async with Stack(settings) as stack:
        marks = 0
        mark = stack.relay._mark

        async def counted(*args):
            nonlocal marks
            marks += 1
            await mark(*args)

        stack.relay._mark = counted  # type: ignore[method-assign]
        stack.relay.start()
        for _ in range(3):
            async with unit_of_work(stack.engine, "test", relay=stack.relay) as uow:
                uow.emit(completed(), correlation_id=uuid.uuid4())
        await probe.wait_for(3)
        await eventually(
            lambda: stack.scalar("SELECT count(*) = 3 FROM outbox WHERE published_at IS NOT NULL")
        )
        assert marks == 1

        for _ in range(2):
            async with unit_of_work(stack.engine, "test", relay=stack.relay) as uow:
                uow.emit(completed(), correlation_id=uuid.uuid4())
        await probe.wait_for(5)
        await stack.relay.stop()
        assert await stack.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
        assert marks == 2


async def test_the_commit_fails_whole_and_as_sqlalchemys_error(settings):
    """The outbox rows go in on the driver's own connection
    (services.common.db.Driver): a row that cannot be written undoes the
    transaction's other work, and the error is the one SQLAlchemy would have
    raised."""
    from services.common.consumer import is_transient
    from services.common.events import new_event
    from services.common.inbox import claim_handled

    async with Stack(settings) as stack:
        cause = new_event(completed(), source="test", correlation_id=uuid.uuid4())
        with pytest.raises(sa.exc.IntegrityError) as raised:
            async with unit_of_work(stack.engine, "test") as uow:
                event = uow.emit(completed(), correlation_id=uuid.uuid4())
                claim_handled(uow.db, "test.queue", cause)  # rides with the outbox row
                # another transaction takes this event's id first
                await stack.commit_with_id(event.id)
        assert not is_transient(raised.value)
        assert await stack.scalar("SELECT count(*) FROM inbox") == 0, "the inbox row stayed"
        assert await stack.scalar("SELECT count(*) FROM outbox") == 1  # the other one's
        # the pooled connection is fine for the next transaction
        await stack.commit(completed())
        assert await stack.scalar("SELECT count(*) FROM outbox") == 2


@pytest.mark.parametrize("through", ["sqlalchemy", "driver"])
async def test_a_connection_lost_before_the_commit_is_transient(settings, through):
    """Whether the unit of work used SQLAlchemy's connection (which then
    commits) or only the driver's (services.common.db.Pooled)."""
    from services.common.consumer import is_transient

    async with Stack(settings) as stack:
        with pytest.raises(sa.exc.OperationalError) as raised:
            async with unit_of_work(stack.engine, "test") as uow:
                uow.emit(completed(), correlation_id=uuid.uuid4())
                if through == "sqlalchemy":
                    pid = (await uow.conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar()
                else:
                    pid = (await (await uow.db.execute("SELECT pg_backend_pid()", ())).fetchone())[
                        0
                    ]
                async with await psycopg.AsyncConnection.connect(
                    libpq_dsn(settings.database_url), autocommit=True
                ) as admin:
                    await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert is_transient(raised.value)
        assert await stack.scalar("SELECT count(*) FROM outbox") == 0
        await stack.commit(completed())  # the dead connection left the pool
        assert await stack.scalar("SELECT count(*) FROM outbox") == 1
        assert stack.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


class Keeps:
    """A relay that claims the rows it is handed and keeps them."""

    claim_s = 30.0

    def __init__(self) -> None:
        self.rows: list[object] = []

    def hand_over(self, rows) -> None:  # type: ignore[no-untyped-def]
        self.rows.extend(rows)


async def test_a_transaction_of_many_events_writes_every_row(settings):
    """The rows go in as multi-row INSERTs of at most 1,000 rows (a statement
    takes at most 65,535 parameters), claimed or not."""
    async with Stack(settings) as stack:
        ids = await stack.commit(*(completed() for _ in range(14_000)))  # 70,000 parameters
        keeps = Keeps()
        async with unit_of_work(stack.engine, "test", relay=keeps) as uow:
            for _ in range(1500):
                uow.emit(completed(), correlation_id=uuid.uuid4())
        assert len(keeps.rows) == 1500
        assert (
            await stack.scalar("SELECT count(*) FROM outbox WHERE claimed_until IS NULL") == 14_000
        )
        assert await stack.scalar("SELECT count(*) FROM outbox WHERE claimed_until > now()") == 1500
        written = await stack.scalar("SELECT array_agg(event_id::text) FROM outbox")
        assert set(ids) <= set(written)  # type: ignore[arg-type]
