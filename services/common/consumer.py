"""The consumer runner: one durable queue per (service, event type), manual
acks after commit, bounded prefetch, retries through delay queues and a dead
letter queue per consumer queue.

Topology of a consumer queue ``<service>.<routing key>``:

- the queue itself, quorum, bound to the events exchange by the routing key;
- ``shop.retry.<ms>``: one delay queue per retry delay, shared by every
  consumer queue of the virtual host, behind a fanout exchange of the same
  name. A retry is published there with the consumer queue's name as its
  routing key; when its TTL expires the broker dead-letters it through the
  default exchange with that routing key, straight back to its queue. Shared
  because every quorum queue holds file handles in RabbitMQ 3.x: per-queue
  delay queues tripled the count and exhausted a broker with the default
  open-files limit (new connections then wait forever in the handshake);
- ``<queue>.dlq``: dead letters, bound to the dead-letter exchange by the
  queue's name. The queue's own x-dead-letter settings send the broker's
  dead letters (past ``delivery_limit`` redeliveries) there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
import psycopg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from . import logs, tracing
from .batch import AckWindow, BatchAborted, batch_of_work
from .broker import Broker, PublishFailed
from .events import Envelope, EventData, InvalidEvent, decode_event
from .faults import Decision, FaultSwitchboard, InjectedFailure, crash
from .headers import (
    ATTEMPT,
    ATTEMPTS,
    DEAD_LETTERED_AT,
    ERROR,
    QUEUE,
    REASON,
    ROUTING_KEY,
)
from .inbox import AlreadyHandled, claim_handled
from .metrics import Metrics
from .outbox import Handover, UnitOfWork, unit_of_work
from .settings import ServiceSettings

log = logging.getLogger(__name__)


def is_transient(exc: Exception) -> bool:
    """A pool timeout, a refused or dropped connection, a deadlock: the
    database's state, not the message's. A statement past its timeout is the
    handler's own doing and spends an attempt like any failure."""
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.InterfaceError):
        return True
    return isinstance(exc, sa_exc.OperationalError) and not isinstance(
        exc.orig, psycopg.errors.QueryCanceled
    )


Handler = Callable[[Envelope[Any], UnitOfWork], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """A service handles ``event`` with ``handler``."""

    event: type[EventData]
    handler: Handler
    # the queue also takes the orchestrated saga's events of the type
    # (``<key>.orchestrated``: the orchestrator's replies, docs/saga.md)
    orchestrated: bool = False

    @property
    def routing_keys(self) -> tuple[str, ...]:
        key = self.event.routing_key
        return (key, f"{key}.orchestrated") if self.orchestrated else (key,)


def queue_name(service: str, routing_key: str) -> str:
    return f"{service}.{routing_key}"


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dlq"


def retry_queue_name(delay_ms: int) -> str:
    """The delay queue (and its fanout exchange) for one retry delay."""
    return f"shop.retry.{delay_ms}"


def _quorum(**extra: Any) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        # Dead-lettering from a quorum queue is at-most-once unless asked.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        **extra,
    }


def retry_delays_ms(settings: ServiceSettings) -> list[int]:
    """Every retry delay these settings use, shortest first."""
    return sorted({settings.retry_delay_ms(a) for a in range(1, settings.max_attempts)})


async def declare_retry_queues(channel: AbstractChannel, settings: ServiceSettings) -> None:
    """The shared delay queues for every retry delay these settings use."""
    for delay in retry_delays_ms(settings):
        name = retry_queue_name(delay)
        exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.FANOUT, durable=True)
        # No x-dead-letter-routing-key: an expired message keeps the routing
        # key it was published with, its consumer queue's name.
        queue = await channel.declare_queue(
            name,
            durable=True,
            arguments=_quorum(**{"x-message-ttl": delay, "x-dead-letter-exchange": ""}),
        )
        await queue.bind(exchange)


async def declare_consumer_queue(
    channel: AbstractChannel,
    settings: ServiceSettings,
    queue: str,
    routing_key: str,
    *more_keys: str,
) -> AbstractQueue:
    """Declare a consumer queue with its dead-letter queue (the shared retry
    queues come from ``declare_retry_queues``)."""
    dlq = await channel.declare_queue(
        dead_letter_queue_name(queue), durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dlq.bind(settings.dead_letter_exchange, routing_key=queue)
    main = await channel.declare_queue(
        queue,
        durable=True,
        arguments=_quorum(
            **{
                "x-dead-letter-exchange": settings.dead_letter_exchange,
                "x-dead-letter-routing-key": queue,
                "x-delivery-limit": settings.delivery_limit,
            }
        ),
    )
    for key in (routing_key, *more_keys):
        await main.bind(settings.events_exchange, routing_key=key)
    return main


async def retire_queues(
    connection: aio_pika.abc.AbstractConnection, service: str, routing_keys: Sequence[str]
) -> list[str]:
    """Delete the queues of events ``service`` no longer consumes: still bound,
    they would fill with messages no one takes. A retired queue's dead-letter
    queue goes too when it is empty; one holding dead letters stays for a
    person to look at (``shopctl dlq``). Returns the queues deleted."""
    deleted: list[str] = []
    for key in routing_keys:
        name = queue_name(service, key)
        # The main queue first: once it is gone nothing dead-letters into its
        # DLQ, so the DLQ's count cannot change between the look and the
        # delete (quorum queues refuse ``if_empty``, closing the connection).
        for queue, only_empty in ((name, False), (dead_letter_queue_name(name), True)):
            # A passive declare of a missing queue closes its channel: one each.
            channel = await connection.channel(publisher_confirms=False)
            try:
                found = await channel.declare_queue(queue, passive=True)
                held = found.declaration_result.message_count or 0
                if only_empty and held:
                    log.warning("%s holds %d dead letters: kept (shopctl dlq)", queue, held)
                    continue
                await channel.queue_delete(queue)
            except aiormq.exceptions.ChannelNotFoundEntity:
                continue  # gone already (or never made)
            finally:
                if not channel.is_closed:
                    await channel.close()
            log.info("%s retired%s", queue, f" with {held} messages" if held else "")
            deleted.append(queue)
    return deleted


@dataclass
class Working:
    """One message a handler has now."""

    queue: str
    event_type: str
    event_id: str
    correlation_id: str
    attempt: int
    since: float  # time.time()
    fault: str | None = None  # the fault acting on it, if any

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "for_s": round(time.time() - self.since, 3)}


class ConsumerRunner:
    """Runs a service's subscriptions until ``stop()``.

    Per message: decode and validate once; in one transaction record it in
    the inbox and run the handler (its emitted events go to the outbox);
    commit; then ack. A failing handler is retried after a growing delay and
    dead-lettered after ``max_attempts``; a message that is not a valid event
    is dead-lettered at once. The process never dies of bad input."""

    def __init__(
        self,
        settings: ServiceSettings,
        engine: AsyncEngine,
        broker: Broker,
        subscriptions: Sequence[Subscription],
        *,
        relay: Handover | None = None,
        metrics: Metrics | None = None,
        faults: FaultSwitchboard | None = None,
        retired: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        # routing keys this service consumed once: their queues are deleted
        self.retired = tuple(retired)
        self.faults = faults
        self.engine = engine
        self.broker = broker
        self.subscriptions = list(subscriptions)
        self.relay = relay
        self.metrics = metrics
        self._channel: AbstractChannel | None = None
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        # Handlers at work at once: no more than the pool holds, so a burst
        # waits here for its turn instead of timing out on the pool.
        self._handlers = asyncio.Semaphore(settings.db_pool_size)
        self.subscribe_failures = 0
        # the messages being handled now, for /inflight (and `shopctl why`)
        self.working: dict[int, Working] = {}
        # batched hops (batch_max > 1): the deliveries waiting on each queue,
        # the batches being handled; every ack goes through the window
        # (services/common/batch.py), batched or not
        self.batch_max = settings.batch_max
        self.window = AckWindow()
        if faults is not None:  # sandbox mode: a bench's run can switch it
            faults.on_tuning(self._retune)
        self._pending: dict[str, list[AbstractIncomingMessage]] = {}
        self._draining: dict[str, int] = {}
        self.batch_sizes: list[int] = []  # the last batches' sizes, for the bench

    @property
    def queue_names(self) -> list[str]:
        return [
            queue_name(self.settings.service_name, s.event.routing_key) for s in self.subscriptions
        ]

    async def start(self, attempts: int = 10) -> None:
        """Declare the topology and start consuming every subscription.

        Replicas starting together race on declaring the same quorum queues;
        RabbitMQ 3.10 can then refuse a consume on a queue whose replica
        process is not up yet and close the channel. So a failed attempt is
        retried on a fresh channel (declaring is idempotent)."""
        if not self.subscriptions:
            return
        for attempt in range(1, attempts + 1):
            try:
                await self._subscribe_all()
                return
            except (aiormq.exceptions.AMQPError, RuntimeError) as exc:
                # RuntimeError: aio-pika's "connection closed" while it reconnects
                # (an INTERNAL_ERROR closes the whole connection, not a channel).
                self.subscribe_failures += 1
                await self._drop_channel()
                if attempt == attempts:
                    raise
                log.warning("subscribing failed (%s); retry %d of %d", exc, attempt, attempts)
                await asyncio.sleep(0.2 * attempt)
                await self._wait_for_connection()

    async def _subscribe_all(self) -> None:
        if self.retired:
            assert self.broker.connection is not None
            await retire_queues(self.broker.connection, self.settings.service_name, self.retired)
        self._channel = await self.broker.channel(self.settings.prefetch)
        await declare_retry_queues(self._channel, self.settings)
        for subscription in self.subscriptions:
            name = queue_name(self.settings.service_name, subscription.event.routing_key)
            queue = await declare_consumer_queue(
                self._channel, self.settings, name, *subscription.routing_keys
            )

            async def on_message(
                message: AbstractIncomingMessage,
                subscription: Subscription = subscription,
                name: str = name,
            ) -> None:
                self.window.arrived(message)
                if self.batch_max > 1:
                    await self._track(self._arrive(subscription, name, message))
                else:
                    await self._track(self._handle(subscription, name, message))

            tag = await queue.consume(on_message)
            self._consumers.append((queue, tag))

    async def _wait_for_connection(self, timeout: float = 30.0) -> None:
        """Until the robust connection has reconnected (or the timeout)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.broker.is_connected:
            if asyncio.get_running_loop().time() > deadline:
                return  # the next attempt fails and says why
            await asyncio.sleep(0.1)

    async def _drop_channel(self) -> None:
        self._consumers = []
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()
            self._channel = None

    async def stop(self) -> None:
        """Stop taking messages, let in-flight handlers finish (up to the
        grace period), then close the channel; unacked messages return."""
        for queue, tag in self._consumers:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        self._consumers = []
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self.settings.shutdown_grace_s)
        for task in list(self._in_flight):
            task.cancel()
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()
            self._channel = None

    async def consumer_counts(self) -> dict[str, int]:
        """Consumers the broker sees on each of this service's queues (a
        readiness check: zero after a broker restart means recovery failed)."""
        counts: dict[str, int] = {}
        if not self.subscriptions or not self.broker.is_connected:
            return {name: 0 for name in self.queue_names}
        assert self.broker.connection is not None
        connection = self.broker.connection
        for name in self.queue_names:
            # A passive declare of a missing queue closes its channel: one each.
            channel = await connection.channel(publisher_confirms=False)
            try:
                queue = await channel.declare_queue(name, passive=True)
                counts[name] = int(queue.declaration_result.consumer_count or 0)
            except aiormq.exceptions.ChannelNotFoundEntity:
                counts[name] = 0
            finally:
                if not channel.is_closed:
                    await channel.close()
        return counts

    async def _track(self, work: Awaitable[None]) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        self._idle.clear()
        if self.metrics:
            self.metrics.in_flight.inc()
        try:
            await work
        finally:
            self._in_flight.discard(task)
            if self.metrics:
                self.metrics.in_flight.dec()
            if not self._in_flight:
                self._idle.set()

    def _retune(self, tuning: dict[str, float]) -> None:
        self.batch_max = int(tuning.get("batch_max", self.settings.batch_max))

    def batches(self) -> dict[str, Any]:
        """The sizes of the last batches (up to 1,000), for /inflight and the bench."""
        sizes = self.batch_sizes
        return {
            "batch_max": self.batch_max,
            "batches": len(sizes),
            "mean": round(sum(sizes) / len(sizes), 1) if sizes else None,
            "largest": max(sizes, default=None),
            "sizes": {str(size): n for size, n in sorted(Counter(sizes).items())},
            "acks": self.window.acks,
            "acked": self.window.acked,
        }

    async def _settle(self, message: AbstractIncomingMessage) -> None:
        """The message is done with (committed, moved to a delay or a
        dead-letter queue): ack it, through the window (one frame for many
        when the deliveries below it are settled too)."""
        await self.window.done(message)

    async def _requeue(self, message: AbstractIncomingMessage) -> None:
        """Back to its queue. The nack goes out before the window forgets
        the delivery: meanwhile the window's multiple acks stop below it, so
        none of them can settle it first (a nack after that is an unknown
        tag to the broker, which closes the channel)."""
        try:
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
        finally:
            self.window.forget(message)

    async def _arrive(
        self, subscription: Subscription, queue: str, message: AbstractIncomingMessage
    ) -> None:
        """A delivery joins its queue's waiting ones; unless enough batches
        are at work on the queue, this task handles batches of whatever is
        waiting until nothing is (never waiting for a batch to fill)."""
        pending = self._pending.setdefault(queue, [])
        pending.append(message)
        if self._draining.get(queue, 0) >= self.settings.batch_parallel:
            return  # a batch at work takes it next
        self._draining[queue] = self._draining.get(queue, 0) + 1
        try:
            while pending:
                wait = self.settings.batch_wait_ms
                if wait and len(pending) < self.batch_max:
                    await asyncio.sleep(wait / 1000)  # more may come (default: never waits)
                batch = pending[: self.batch_max]
                del pending[: len(batch)]
                await self._handle_batch(subscription, queue, batch)
        finally:
            self._draining[queue] -= 1

    async def _handle_batch(
        self, subscription: Subscription, queue: str, messages: list[AbstractIncomingMessage]
    ) -> None:
        self.batch_sizes.append(len(messages))
        del self.batch_sizes[:-1000]
        if self.faults is not None and self.faults.faults:
            # Faults switched on act on single messages (a hold, a delay, a
            # crash at a point): each on its own, as unbatched.
            await asyncio.gather(*(self._handle(subscription, queue, m) for m in messages))
            return
        started = time.perf_counter()
        try:
            outcomes = await self._process_batch(subscription, queue, messages)
        except Exception as exc:
            if isinstance(exc, PublishFailed):
                log.warning("%s: %s; batch returned to the queue", queue, exc)
            else:
                log.exception("%s: unexpected failure; batch returned to the queue", queue)
            for message in messages:
                await self._requeue(message)
            outcomes = ["requeued"] * len(messages)
        if self.metrics:
            each = (time.perf_counter() - started) / max(len(messages), 1)
            for outcome in outcomes:
                self.metrics.consumed(queue, outcome, each)

    async def _process_batch(
        self, subscription: Subscription, queue: str, messages: list[AbstractIncomingMessage]
    ) -> list[str]:
        """Valid events of the batch in one transaction, a savepoint each;
        the invalid ones dead-lettered first; then one ack for the lot."""
        outcomes: list[str] = []
        ready: list[tuple[AbstractIncomingMessage, Envelope[Any], int]] = []
        for message in messages:
            event = await self._decoded(subscription, queue, message)
            if event is None:
                outcomes.append("dead_lettered")
                continue
            ready.append((message, event, _int_header(message, ATTEMPT, default=1)))
        if not ready:
            return outcomes
        failures: dict[int, Exception] = {}
        duplicates: set[int] = set()
        try:
            async with (
                self._handlers,
                batch_of_work(self.engine, self.settings.service_name, relay=self.relay) as batch,
            ):
                for message, event, attempt in ready:
                    self.working[id(message)] = Working(
                        queue, event.type, str(event.id), event.correlationid, attempt, time.time()
                    )
                    try:
                        with self._handling(subscription, queue, message, event, attempt):
                            async with batch.each(event, _claimer(queue, event)) as work:
                                await subscription.handler(event, work)
                    except AlreadyHandled:
                        duplicates.add(id(message))  # rolled back to its savepoint
                    except (BatchAborted, asyncio.CancelledError):
                        raise
                    except Exception as exc:
                        if is_transient(exc):
                            raise BatchAborted(f"{type(exc).__name__}: {exc}") from exc
                        failures[id(message)] = exc  # rolled back alone
                    finally:
                        self.working.pop(id(message), None)
        except BatchAborted as exc:
            # The database is busy or away: not the messages' fault, so each
            # waits its delay and comes back without spending an attempt.
            error = str(exc).splitlines()[0][:300] if str(exc) else "the batch's transaction"
            log.warning("%s: a batch of %d waits for the database: %s", queue, len(ready), error)
            for message, _, attempt in ready:
                await self._retry(message, queue, attempt, error, spend_attempt=False)
                outcomes.append("retried")
            return outcomes
        settled: list[AbstractIncomingMessage] = []
        for message, event, attempt in ready:
            failure = failures.get(id(message))
            if failure is not None:
                outcomes.append(await self._failed(message, queue, event, attempt, failure))
                continue
            settled.append(message)
            outcomes.append(_said(queue, event, handled=id(message) not in duplicates))
        await self.window.done(*settled)  # one ack frame for the batch, mostly
        return outcomes

    async def _handle(
        self, subscription: Subscription, queue: str, message: AbstractIncomingMessage
    ) -> None:
        started = time.perf_counter()
        try:
            outcome = await self._process(subscription, queue, message)
        except PublishFailed as exc:
            # Could not move the message to a delay or dead-letter queue:
            # leave it to the broker to redeliver.
            log.warning("%s: %s; message returned to the queue", queue, exc)
            await self._requeue(message)
            outcome = "requeued"
        except Exception:
            log.exception("%s: unexpected failure; message returned to the queue", queue)
            await self._requeue(message)
            outcome = "requeued"
        if self.metrics:
            self.metrics.consumed(queue, outcome, time.perf_counter() - started)

    async def _decoded(
        self, subscription: Subscription, queue: str, message: AbstractIncomingMessage
    ) -> Envelope[Any] | None:
        """The message's event, or None once it went to the dead letters: not
        an event (C5), or not the type this queue takes."""
        try:
            event = decode_event(message.body)
        except InvalidEvent as exc:
            await self._dead_letter(message, queue, exc.reason, exc.detail, attempts=0)
            return None
        if event.type != subscription.event.event_type:
            await self._dead_letter(
                message,
                queue,
                "unexpected_type",
                f"queue {queue} takes {subscription.event.event_type}, got {event.type}",
                attempts=0,
            )
            return None
        return event

    @contextlib.contextmanager
    def _handling(
        self,
        subscription: Subscription,
        queue: str,
        message: AbstractIncomingMessage,
        event: Envelope[Any],
        attempt: int,
    ) -> Iterator[Any]:
        """One event's log context and its consumer span (the span yielded)."""
        with (
            logs.handling(event.correlationid, str(event.id), event.type),
            tracing.processing(
                message.headers or {},
                event.traceparent,
                routing_key=subscription.event.routing_key,
                exchange=self.settings.events_exchange,
                queue=queue,
                message_id=str(event.id),
                correlation_id=event.correlationid,
                attempt=attempt,
            ) as span,
        ):
            yield span

    async def _process(
        self, subscription: Subscription, queue: str, message: AbstractIncomingMessage
    ) -> str:
        event = await self._decoded(subscription, queue, message)
        if event is None:
            return "dead_lettered"

        attempt = _int_header(message, ATTEMPT, default=1)
        self.working[id(message)] = Working(
            queue, event.type, str(event.id), event.correlationid, attempt, time.time()
        )
        try:
            with self._handling(subscription, queue, message, event, attempt) as span:
                outcome = await self._process_event(subscription, queue, message, event, attempt)
                span.set_attribute("shop.outcome", outcome)
                return outcome
        finally:
            self.working.pop(id(message), None)

    async def _process_event(
        self,
        subscription: Subscription,
        queue: str,
        message: AbstractIncomingMessage,
        event: Envelope[Any],
        attempt: int,
    ) -> str:
        fault = (
            self.faults.decide(
                event.type, event.correlationid, lambda: event.data.model_dump(mode="json")
            )
            if self.faults
            else None
        )
        if fault is not None and fault.kind != "none":
            early = await self._fault_before(fault, queue, message, event)
            if early is not None:
                return early
        handled = True
        try:
            async with (
                self._handlers,
                unit_of_work(
                    self.engine,
                    self.settings.service_name,
                    cause=event,
                    relay=self.relay,
                ) as uow,
            ):
                # the inbox row rides with the handler's first statement
                claim_handled(uow.db, queue, event)
                await subscription.handler(event, uow)
                if fault is not None and fault.kind == "fail":
                    raise InjectedFailure(f"fault {fault.fault.id if fault.fault else ''}: fail")
        except asyncio.CancelledError:
            raise
        except AlreadyHandled:
            handled = False  # rolled back: a redelivery or a duplicate
        except Exception as exc:
            if not is_transient(exc):
                return await self._failed(message, queue, event, attempt, exc)
            # The database is busy or away: not the message's fault, so it
            # waits its delay and comes back without spending an attempt.
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.warning("%s: %s waits for the database: %s", queue, event.id, error[:300])
            await self._retry(message, queue, attempt, error, spend_attempt=False)
            return "retried"
        if self.faults is not None:
            self.faults.saw(event.type, event.correlationid)
            if fault is not None and fault.kind == "crash":
                crash()  # at: after_commit: the handler's work is in, the ack never goes
            if fault is not None and fault.kind == "lose_ack":
                await self._requeue(message)  # committed, yet it comes again
                return "ack_lost"
        await self._settle(message)
        return _said(queue, event, handled=handled)

    async def _fault_before(
        self, decision: Decision, queue: str, message: AbstractIncomingMessage, event: Any
    ) -> str | None:
        """Act on a fault before handling; an outcome when that ends the message."""
        fault = decision.fault
        assert fault is not None and self.faults is not None
        working = self.working.get(id(message))
        if working is not None:
            working.fault = f"{fault.kind} (fault {fault.id})"
        if decision.kind == "drop":
            await self._settle(message)
            return "dropped"
        if decision.kind == "crash" and fault.at == "before_handler":
            crash()
        if decision.kind == "delay":
            await asyncio.sleep(fault.ms / 1000)
        elif decision.kind == "hold":
            await self.faults.hold(fault, event.correlationid)
        elif decision.kind == "duplicate":
            await self.broker.publish_to_queue(queue, _copy(message, dict(message.headers or {})))
        return None

    async def _failed(
        self,
        message: AbstractIncomingMessage,
        queue: str,
        event: Envelope[Any],
        attempt: int,
        exc: Exception,
    ) -> str:
        """A handler failure: retried after its delay, dead-lettered after the last attempt."""
        error = f"{type(exc).__name__}: {exc}"[:1000]
        tracing.failed(exc)
        if attempt >= self.settings.max_attempts:
            log.error("%s: %s failed %d times, dead-lettered: %s", queue, event.id, attempt, error)
            await self._dead_letter(message, queue, "handler_failed", error, attempts=attempt)
            return "dead_lettered"
        log.warning("%s: %s attempt %d failed, retrying: %s", queue, event.id, attempt, error)
        await self._retry(message, queue, attempt, error)
        return "retried"

    async def _retry(
        self,
        message: AbstractIncomingMessage,
        queue: str,
        attempt: int,
        error: str,
        *,
        spend_attempt: bool = True,
    ) -> None:
        delay = self.settings.retry_delay_ms(attempt)
        headers = _carry_headers(message, queue)
        headers[ATTEMPT] = attempt + 1 if spend_attempt else attempt
        headers[ERROR] = error
        await self.broker.publish_retry(retry_queue_name(delay), queue, _copy(message, headers))
        await self._settle(message)

    async def _dead_letter(
        self,
        message: AbstractIncomingMessage,
        queue: str,
        reason: str,
        error: str,
        *,
        attempts: int,
    ) -> None:
        headers = _carry_headers(message, queue)
        headers.update(
            {
                REASON: reason,
                ERROR: error[:1000],
                ATTEMPTS: attempts,
                DEAD_LETTERED_AT: datetime.now(UTC).isoformat(),
            }
        )
        await self.broker.publish_dead_letter(queue, _copy(message, headers))
        await self._settle(message)


def _said(queue: str, event: Envelope[Any], *, handled: bool) -> str:
    """One line per message, naming its saga (what `shopctl logs` and a
    scenario's failure bundle find an order by); the message's outcome."""
    log.info(
        "%s: %s %s %s (saga %s)",
        queue,
        event.type,
        event.id,
        "handled" if handled else "duplicate, already handled",
        event.correlationid,
    )
    return "handled" if handled else "duplicate"


def _claimer(queue: str, event: Envelope[Any]) -> Callable[[UnitOfWork], None]:
    def claim(work: UnitOfWork) -> None:
        claim_handled(work.db, queue, event)

    return claim


def _int_header(message: AbstractIncomingMessage, name: str, default: int) -> int:
    value = (message.headers or {}).get(name)
    try:
        return int(value) if value is not None else default  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def _carry_headers(message: AbstractIncomingMessage, queue: str) -> dict[str, Any]:
    # The broker's own x-death bookkeeping from the delay queues is noise here.
    headers = {
        k: v
        for k, v in (message.headers or {}).items()
        if not k.startswith(("x-death", "x-first-death", "x-last-death"))
    }
    headers.setdefault(QUEUE, queue)
    headers.setdefault(ROUTING_KEY, message.routing_key or "")
    return headers


def _copy(message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        type=message.type,
        correlation_id=message.correlation_id,
    )
