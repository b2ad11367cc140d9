"""Faults injected at the level of one message, in sandbox mode only.

A fault names a part, an event type and which sagas it acts on: every one,
one (order, or the start of its id as trace and the TUI show it), the
``next`` N this process sees, those whose event carries a ``sku``, or whose
event data ``match`` given values (a customer id captured before the
checkout). It says what to do to matching messages: ``delay`` the handling,
``fail`` it N times, ``crash`` the process on it (before the handler, or
``at: after_commit``: committed, not acked), handle it but ``lose_ack`` (it
comes again), ``duplicate`` it, ``drop`` it, ``hold`` it until another event
of the saga (or of ``until_order``) has passed, or ``publish_twice`` an
outgoing event. They are
switched at run time on the ``shop.control`` exchange, which every replica
of a part hears; outside sandbox mode (``SHOP_FAULT_INJECTION``) nothing
listens, so a switch has no one to reach (RELIABILITY.md, A6). Cheap when
off: the hooks check one empty dict."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from .broker import Broker
from .fault_kinds import FAULT_KINDS as FAULT_KINDS
from .fault_kinds import FaultKind

log = logging.getLogger(__name__)

CONTROL_EXCHANGE = "shop.control"
HOLD_LIMIT_S = 60.0  # a held message is let go after this, whatever happened
ORDER_START = 8  # the fewest characters of an order's id that name it (trace shows 8)
CrashPoint = Literal["before_handler", "after_commit"]
# what a fault's match reads: an event's data, or a function that reads it
# only when a fault asks (most messages never need it)
EventData = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


class FaultSpec(BaseModel):
    """One fault, as switched on the control exchange."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:8])
    part: str
    event: str  # event type, e.g. "StockReserved"
    kind: FaultKind
    order: str | None = None  # only this saga: its correlation id, or the id's start
    times: int | None = Field(default=None, ge=1)  # how many messages; None: all
    ms: int = Field(default=0, ge=0, le=600_000)  # delay
    until: str | None = None  # hold: until this event type of the saga has passed
    until_order: str | None = None  # hold: ... of this saga instead (its id or its start)
    next: int | None = Field(default=None, ge=1)  # only the next N sagas seen, each whole
    sku: str | None = None  # only sagas whose event carries this SKU
    match: dict[str, str | int | float | bool] | None = None  # event data fields, equal
    at: CrashPoint = "before_handler"  # crash: before the handler, or after its commit

    @field_validator("order", "until_order")
    @classmethod
    def _names_one_order(cls, order: str | None, info: Any) -> str | None:
        if order is not None and len(order) < ORDER_START:
            raise ValueError(f"{info.field_name}: its id, or its first {ORDER_START} characters")
        return order

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> FaultSpec:
        if self.kind == "delay" and self.ms <= 0:
            raise ValueError("delay: ms, the milliseconds to delay, above 0")
        if self.kind == "hold" and not self.until:
            raise ValueError("hold: until, the event type that lets it go")
        if self.until_order and self.kind != "hold":
            raise ValueError("until_order: only a hold waits on another order")
        if self.at != "before_handler" and self.kind != "crash":
            raise ValueError("at: only a crash has a point (before_handler, after_commit)")
        return self

    def matches(
        self, event_type: str, correlation_id: str | None, data: EventData | None = None
    ) -> bool:
        """Whether this fault is for the message (``next`` aside: the
        switchboard counts sagas)."""
        if self.event != event_type:
            return False
        if self.order is not None and not (correlation_id or "").startswith(self.order):
            return False
        if self.sku is None and not self.match:
            return True
        fields = (data() if callable(data) else data) or {}
        if self.sku is not None and self.sku not in carried_skus(fields):
            return False
        return all(str(fields.get(k)) == str(v) for k, v in (self.match or {}).items())


def carried_skus(data: Mapping[str, Any]) -> set[str]:
    """The SKUs an event's data names: its items', its skus, its sku."""
    found = {str(i["sku"]) for i in data.get("items") or [] if isinstance(i, dict) and "sku" in i}
    found.update(str(s) for s in data.get("skus") or [])
    if data.get("sku") is not None:
        found.add(str(data["sku"]))
    return found


def refusal(exc: ValidationError) -> str:
    """What is wrong with a fault that FaultSpec refused, in one line."""
    first = exc.errors()[0]
    if first["loc"] == ("kind",):
        return f"no fault kind {first['input']!r}; the kinds are {', '.join(get_args(FaultKind))}"
    where = ".".join(str(p) for p in first["loc"])
    reason = str(first.get("ctx", {}).get("error", first["msg"]))
    return reason if reason.startswith(where) else f"{where}: {reason}"


# Settings a scenario may change for its run (sandbox mode only): the saga's
# timeouts in seconds, and its mode for orders created from now on
# (saga_orchestrated: 1 orchestrated, 0 choreographed; docs/saga.md).
# batch_max: a consumer's batch size (services/common/batch.py), for a bench's run
TunableName = Literal[
    "saga_step_timeout_s", "saga_shipping_timeout_s", "saga_orchestrated", "batch_max"
]


class FaultCommand(BaseModel):
    action: Literal["set", "clear", "tune"]
    fault: FaultSpec | None = None
    id: str | None = None  # clear one; none: clear all of the part (and every tuning)
    # tune: these settings take these values until a clear of all
    tuning: dict[TunableName, float] = Field(default_factory=dict)

    @field_validator("tuning")
    @classmethod
    def _positive(cls, tuning: dict[str, float]) -> dict[str, float]:
        for name, value in tuning.items():
            if name == "saga_orchestrated":
                if value not in (0, 1):
                    raise ValueError(f"{name}: 1 (orchestrated) or 0 (choreographed)")
            elif name == "batch_max":
                if value != int(value) or not 1 <= value <= 256:
                    raise ValueError(f"{name}: a whole number from 1 to 256")
            elif not 0 < value <= 3600:
                raise ValueError(f"{name}: a number of seconds above 0, at most 3600")
        return tuning


class InjectedFailure(Exception):
    """What a ``fail`` fault raises inside the handler's transaction."""


@dataclass(frozen=True)
class Decision:
    """What the consumer does with one message."""

    fault: FaultSpec | None = None
    kind: str = "none"


NO_FAULT = Decision()  # the answer for almost every message: made once


@dataclass
class _Held:
    fault: FaultSpec
    released: asyncio.Event = field(default_factory=asyncio.Event)


class FaultSwitchboard:
    """The faults one process obeys, kept up to date from the control exchange."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.faults: dict[str, FaultSpec] = {}
        self._used: dict[str, int] = {}
        self._sagas: dict[str, list[str | None]] = {}  # next N: the sagas each fault took
        self._held: list[tuple[_Held, str | None]] = []
        self.tuning: dict[str, float] = {}
        self._on_tuning: list[Callable[[dict[str, float]], None]] = []

    def on_tuning(self, listener: Callable[[dict[str, float]], None]) -> None:
        """Call ``listener`` with the tuned settings whenever they change
        (an empty dict: back to the process's own settings)."""
        self._on_tuning.append(listener)

    async def listen(self, broker: Broker) -> None:
        """Bind this process's own queue to the control exchange."""
        assert broker.connection is not None
        channel = await broker.connection.channel()
        exchange = await channel.declare_exchange(
            CONTROL_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(
            f"{self.service}.faults.{os.getpid()}.{uuid.uuid4().hex[:6]}",
            exclusive=True,
            auto_delete=True,
        )
        await queue.bind(exchange, routing_key=f"faults.{self.service}")
        await queue.bind(exchange, routing_key="faults.all")
        await queue.consume(self._on_command, no_ack=True)

    async def _on_command(self, message: AbstractIncomingMessage) -> None:
        try:
            command = FaultCommand.model_validate(orjson.loads(message.body))
        except ValueError as exc:
            log.warning("faults: ignored a bad command: %s", exc)
            return
        self.apply(command)

    def apply(self, command: FaultCommand) -> None:
        if command.action == "set" and command.fault is not None:
            self.faults[command.fault.id] = command.fault
            self._used[command.fault.id] = 0
            self._sagas[command.fault.id] = []
            log.warning("fault on: %s", command.fault.model_dump(exclude_none=True))
        elif command.action == "tune":
            self._tune({**self.tuning, **dict(command.tuning.items())})
        elif command.action == "clear":
            if not command.id and self.tuning:
                self._tune({})
            cleared = [command.id] if command.id else list(self.faults)
            for fault_id in cleared:
                self.faults.pop(fault_id, None)
            for held, _ in self._held:
                if held.fault.id in cleared:
                    held.released.set()
            log.warning("faults cleared: %s", ", ".join(cleared) or "none were on")

    def _tune(self, tuning: dict[str, float]) -> None:
        self.tuning = tuning
        log.warning("tuning: %s", tuning or "back to the settings")
        for listener in self._on_tuning:
            listener(dict(tuning))

    def decide(
        self, event_type: str, correlation_id: str | None, data: EventData | None = None
    ) -> Decision:
        """The fault that applies to this message, counting its use."""
        if not self.faults:
            return NO_FAULT
        for fault in list(self.faults.values()):
            if fault.kind == "publish_twice" or not self._takes(
                fault, event_type, correlation_id, data
            ):
                continue
            log.warning(
                "fault %s (%s) on %s of %s", fault.id, fault.kind, event_type, correlation_id
            )
            return Decision(fault, fault.kind)
        return NO_FAULT

    def publishes_twice(
        self, event_type: str, correlation_id: str | None, data: EventData | None = None
    ) -> bool:
        """Whether an outgoing event is to be published twice (the relay asks)."""
        return any(
            fault.kind == "publish_twice" and self._takes(fault, event_type, correlation_id, data)
            for fault in list(self.faults.values())
        )

    def _takes(
        self, fault: FaultSpec, event_type: str, correlation_id: str | None, data: EventData | None
    ) -> bool:
        """Whether ``fault`` acts on this message; counts the use when it does."""
        if not fault.matches(event_type, correlation_id, data):
            return False
        used = self._used.get(fault.id, 0)
        if fault.times is not None and used >= fault.times:
            return False
        if fault.next is not None:
            # the first N sagas seen after the fault was set are its own, whole
            taken = self._sagas.setdefault(fault.id, [])
            if correlation_id not in taken:
                if len(taken) >= fault.next:
                    return False
                taken.append(correlation_id)
        self._used[fault.id] = used + 1
        return True

    async def hold(self, fault: FaultSpec, correlation_id: str | None) -> None:
        """Until an event of type ``fault.until`` of the same saga has been
        handled here (``saw``), the fault is cleared, or ``HOLD_LIMIT_S``."""
        held = _Held(fault)
        self._held.append((held, correlation_id))
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(held.released.wait(), HOLD_LIMIT_S)
        finally:
            self._held.remove((held, correlation_id))

    def describe(self) -> list[dict[str, Any]]:
        """The faults on, each with how often it acted and what it holds."""
        held: dict[str, list[str | None]] = {}
        for waiting, saga in self._held:
            held.setdefault(waiting.fault.id, []).append(saga)
        return [
            {
                **fault.model_dump(exclude_none=True),
                "used": self._used.get(fault.id, 0),
                **({"sagas": self._sagas.get(fault.id, [])} if fault.next else {}),
                "holding": held.get(fault.id, []),
            }
            for fault in self.faults.values()
        ]

    def saw(self, event_type: str, correlation_id: str | None) -> None:
        """Every event this process handles: releases what was held for it."""
        for held, saga in self._held:
            if held.fault.until != event_type:
                continue
            awaited = held.fault.until_order
            if (awaited is None and saga == correlation_id) or (
                awaited is not None and (correlation_id or "").startswith(awaited)
            ):
                held.released.set()


def crash() -> None:
    """The ``crash`` fault: the process dies at once, mid-message, unacked."""
    log.error("fault: crashing the process as asked")
    logging.shutdown()
    os._exit(70)
