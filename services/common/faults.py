"""Faults injected at the level of one message, in sandbox mode only.

A fault names a part, an event type and optionally one saga (order, or the
start of its id as trace and the TUI show it), and
what to do to matching messages: ``delay`` the handling, ``fail`` it N
times, ``crash`` the process on it, handle it but ``lose_ack`` (it comes
again), ``duplicate`` it, ``drop`` it, ``hold`` it until another event of
the saga has passed, or ``publish_twice`` an outgoing event. They are
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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage
from pydantic import BaseModel, Field, ValidationError, field_validator

from .broker import Broker

log = logging.getLogger(__name__)

CONTROL_EXCHANGE = "shop.control"
HOLD_LIMIT_S = 60.0  # a held message is let go after this, whatever happened
ORDER_START = 8  # the fewest characters of an order's id that name it (trace shows 8)
FaultKind = Literal[
    "delay", "fail", "crash", "lose_ack", "duplicate", "drop", "hold", "publish_twice"
]


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

    @field_validator("order")
    @classmethod
    def _names_one_order(cls, order: str | None) -> str | None:
        if order is not None and len(order) < ORDER_START:
            raise ValueError(f"order: its id, or its first {ORDER_START} characters")
        return order

    def matches(self, event_type: str, correlation_id: str | None) -> bool:
        return self.event == event_type and (
            self.order is None or (correlation_id or "").startswith(self.order)
        )


def refusal(exc: ValidationError) -> str:
    """What is wrong with a fault that FaultSpec refused, in one line."""
    first = exc.errors()[0]
    if first["loc"] == ("kind",):
        return f"no fault kind {first['input']!r}; the kinds are {', '.join(get_args(FaultKind))}"
    where = ".".join(str(p) for p in first["loc"])
    reason = str(first.get("ctx", {}).get("error", first["msg"]))
    return reason if reason.startswith(where) else f"{where}: {reason}"


# Settings a scenario may change for its run (sandbox mode only), in seconds.
TunableName = Literal["saga_step_timeout_s", "saga_shipping_timeout_s"]


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
            if not 0 < value <= 3600:
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

    def decide(self, event_type: str, correlation_id: str | None) -> Decision:
        """The fault that applies to this message, counting its use."""
        if not self.faults:
            return NO_FAULT
        for fault in list(self.faults.values()):
            if fault.kind == "publish_twice" or not fault.matches(event_type, correlation_id):
                continue
            used = self._used.get(fault.id, 0)
            if fault.times is not None and used >= fault.times:
                continue
            self._used[fault.id] = used + 1
            log.warning(
                "fault %s (%s) on %s of %s", fault.id, fault.kind, event_type, correlation_id
            )
            return Decision(fault, fault.kind)
        return NO_FAULT

    def publishes_twice(self, event_type: str, correlation_id: str | None) -> bool:
        """Whether an outgoing event is to be published twice (the relay asks)."""
        for fault in self.faults.values():
            if fault.kind != "publish_twice" or not fault.matches(event_type, correlation_id):
                continue
            used = self._used.get(fault.id, 0)
            if fault.times is not None and used >= fault.times:
                continue
            self._used[fault.id] = used + 1
            return True
        return False

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
                "holding": held.get(fault.id, []),
            }
            for fault in self.faults.values()
        ]

    def saw(self, event_type: str, correlation_id: str | None) -> None:
        """Every event this process handles: releases what was held for it."""
        for held, saga in self._held:
            if held.fault.until == event_type and saga == correlation_id:
                held.released.set()


def crash() -> None:
    """The ``crash`` fault: the process dies at once, mid-message, unacked."""
    log.error("fault: crashing the process as asked")
    logging.shutdown()
    os._exit(70)
