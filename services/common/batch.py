"""Batched hops: the deliveries already waiting on a consumer's queue handled
in one transaction, each in a savepoint of its own, committed once and
acknowledged with one ``multiple`` ack (``ServiceSettings.batch_max``).

Per message a hop costs a transaction (its BEGIN, its COMMIT and the
commit's WAL flush), a pool checkout and an ack frame; under load a batch
shares them. A batch never waits to fill: it takes what has been delivered
and not yet taken, so one message alone goes through as it would unbatched.

- ``BatchWork``: one pooled connection and transaction; ``each(cause)``
  opens a savepoint for one event, whose claim in the inbox rides with the
  handler's first statement (``Rider.after_savepoint``), so the savepoint
  costs no round trip of its own. A failing event is rolled back to its
  savepoint alone; its neighbours commit.
- ``AckWindow``: settles a channel's deliveries. What is done is acked with
  one ``multiple`` ack up to the highest tag below every delivery still in
  flight on the channel (never past one); what is done above one still in
  flight is acked on its own at once, so a held message never stalls the
  others."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncEngine

from .db import Pooled, Rider
from .events import Envelope
from .outbox import Handover, UnitOfWork

log = logging.getLogger(__name__)


class BatchAborted(Exception):
    """The batch's transaction cannot go on (its connection is lost, or the
    database refused what no savepoint can undo): nothing of it commits,
    every message comes again."""


class BatchWork:
    """One transaction for a batch of consumed events, a savepoint each."""

    def __init__(self, pooled: Pooled, source: str) -> None:
        self.pooled = pooled
        self.source = source
        self.done: list[UnitOfWork] = []
        self._savepoints = 0

    @asynccontextmanager
    async def each(
        self, cause: Envelope[Any], claim: Callable[[UnitOfWork], None]
    ) -> AsyncIterator[UnitOfWork]:
        """One event's unit of work inside the batch's transaction. ``claim``
        puts its inbox row in the savepoint's rider. On an exception the
        event's statements are rolled back to its savepoint and the
        exception goes on; the batch's transaction stays usable."""
        self._savepoints += 1
        name = f"event_{self._savepoints}"
        db = self.pooled.db
        work = UnitOfWork(self.pooled, self.source, cause)
        claim(work)
        rider = db.take_rider()  # the claim (none, if a claim was patched out)
        db.ride_with_next(rider.after_savepoint(name) if rider else Rider.savepoint(name))
        try:
            yield work
            if db.rider_waiting:  # the handler ran no statement: the claim alone
                await db.send_rider()
        except BaseException:
            if db.take_rider() is not None:
                raise  # never sent: the savepoint was never made, nothing to undo
            if db.driver.closed or db.driver.broken:
                raise
            try:
                await db.execute(f"ROLLBACK TO SAVEPOINT {name}", ())
            except Exception as exc:
                raise BatchAborted(f"could not roll back to {name}: {exc}") from exc
            raise
        self.done.append(work)

    async def commit(self, claim_s: float | None) -> UnitOfWork:
        """Every event's outbox rows written and the transaction committed, in
        one round trip; the unit of work that holds all their rows."""
        everything = UnitOfWork(self.pooled, self.source, None)
        everything.emitted = [event for work in self.done for event in work.emitted]
        await everything.commit(claim_s)
        return everything


@asynccontextmanager
async def batch_of_work(
    engine: AsyncEngine, source: str, *, relay: Handover | None = None
) -> AsyncIterator[BatchWork]:
    """A batch's transaction: committed when the block ends without error
    (its rows handed to the relay, each event's after-commit callbacks
    run), rolled back otherwise."""
    claim_s = relay.claim_s if relay is not None else None
    pooled = await Pooled.take(engine)
    try:
        batch = BatchWork(pooled, source)
        yield batch
        everything = await batch.commit(claim_s)
    finally:
        await pooled.release()
    for work in batch.done:
        for callback in work.committed:
            callback()
    if everything.rows and claim_s is not None and relay is not None:
        relay.hand_over(everything.rows)


class AckWindow:
    """The deliveries of a consumer's channels, from arrival to settlement."""

    def __init__(self) -> None:
        # per channel (its AMQP channel object: tags start again on a new
        # one): delivery tag -> message, and the tags done, to be acked
        self._outstanding: dict[int, dict[int, AbstractIncomingMessage]] = {}
        self._done: dict[int, set[int]] = {}
        # one flush at a time: two batches settling at once must not both
        # ack the same tags (a second ack of a tag closes the channel)
        self._lock = asyncio.Lock()
        self.acks = 0  # frames sent, for the tests and /metrics' curious
        self.acked = 0  # messages they settled

    def arrived(self, message: AbstractIncomingMessage) -> None:
        channel = id(message.channel)
        self._outstanding.setdefault(channel, {})[_tag(message)] = message

    def forget(self, message: AbstractIncomingMessage) -> None:
        """Settled otherwise (nacked back to the queue)."""
        channel = id(message.channel)
        self._outstanding.get(channel, {}).pop(_tag(message), None)
        self._done.get(channel, set()).discard(_tag(message))

    async def done(self, *messages: AbstractIncomingMessage) -> None:
        """These are handled (committed, retried elsewhere or dead-lettered):
        ack them, with as few frames as the rest in flight allows."""
        channels = set()
        for message in messages:
            channel = id(message.channel)
            if _tag(message) in self._outstanding.get(channel, {}):
                self._done.setdefault(channel, set()).add(_tag(message))
                channels.add(channel)
            else:  # not seen arriving (a path outside the window): on its own
                await _ack(message, multiple=False)
                self.acks += 1
                self.acked += 1
        if channels:
            async with self._lock:
                for channel in channels:
                    await self._flush(channel)

    async def _flush(self, channel: int) -> None:
        outstanding = self._outstanding.get(channel, {})
        done = self._done.get(channel, set())
        if not done:
            return
        waiting = [tag for tag in outstanding if tag not in done]
        lowest_waiting = min(waiting) if waiting else None
        below = [t for t in done if lowest_waiting is None or t < lowest_waiting]
        above = [t for t in done if lowest_waiting is not None and t > lowest_waiting]
        if below:
            top = max(below)
            # every delivery up to ``top`` on this channel is done: one frame
            await _ack(outstanding[top], multiple=True)
            self.acks += 1
            self.acked += len(below)
            for tag in below:
                del outstanding[tag]
                done.discard(tag)
        for tag in sorted(above):  # past one still in flight: each on its own
            await _ack(outstanding.pop(tag), multiple=False)
            done.discard(tag)
            self.acks += 1
            self.acked += 1
        if not outstanding:
            self._outstanding.pop(channel, None)
            self._done.pop(channel, None)

    def in_flight(self) -> int:
        return sum(len(tags) for tags in self._outstanding.values())


def _tag(message: AbstractIncomingMessage) -> int:
    tag = message.delivery_tag
    assert tag is not None, "a consumed message has a delivery tag"
    return int(tag)


async def _ack(message: AbstractIncomingMessage, *, multiple: bool) -> None:
    # A channel closed meanwhile returned its deliveries to the queue: they
    # come again, and the inbox knows the ones committed.
    with contextlib.suppress(Exception):
        await message.ack(multiple=multiple)
