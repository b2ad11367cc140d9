"""The saga orchestrator: the order flow as one state machine, defined once
as data (``DEFINITION``), persisted one row per order (the ``sagas`` table),
moved by the participants' replies and by durable timers (docs/saga.md).

    running(step 0) --reply--> running(step 1) --...--> completed
         |  failure reply or timer                       (ShipStock sent)
         v
    compensating(step k) --SagaStepCompensated--> compensating(step k-1)
         ... --> cancelled

Each step sends its command to one participant and waits for its reply
(the participant's own event, marked orchestrated). A failure reply cancels
the order and compensates the steps before, in reverse order, one reply at a
time. A step's timer firing cancels the order (reason ``timeout``) and
compensates that step as well, since its command may yet act: a late reply
finds its step already compensated (a late capture is refunded by the
RefundPayment the timer sent, whichever comes first at the participant).

The row carries a version: every move is an UPDATE of the version read, so
a reply and the timer that race for one saga never both move it (the loser
is retried and then sees where the winner left it)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.events import (
    ORCHESTRATED,
    CancelShipment,
    ChargePayment,
    CreateShipment,
    Envelope,
    EventData,
    OrderCreated,
    PaymentFailed,
    PaymentSucceeded,
    RefundPayment,
    ReleaseStock,
    ReserveStock,
    SagaStepCompensated,
    ShippingCreated,
    ShipStock,
    StockReservationFailed,
    StockReserved,
)
from services.common.outbox import UnitOfWork

from .domain import Ended, OrderStatus, Timeouts, advance, cancel
from .models import sagas


@dataclass(frozen=True)
class Step:
    """One step of the saga: the command that asks a participant for it,
    the replies that say how it went, and the command that undoes it."""

    name: str
    participant: str
    command: type[EventData]
    success: type[EventData]
    failure: type[EventData] | None  # a reply that ends the saga, compensated
    failure_reason: str  # the order's cancel reason on that reply
    compensation: type[EventData]
    reached: OrderStatus  # the order's status once the step succeeded
    timeout: Literal["step", "shipping"]  # which of the order timeouts it waits
    # the event that starts the same step under choreography (docs/saga.md;
    # `scenario run --saga orchestrated` moves a fault on it to the command)
    choreographed_by: type[EventData]


DEFINITION: tuple[Step, ...] = (
    Step(
        "reserve stock",
        "inventory",
        ReserveStock,
        StockReserved,
        StockReservationFailed,
        "out_of_stock",
        ReleaseStock,
        OrderStatus.STOCK_RESERVED,
        "step",
        OrderCreated,
    ),
    Step(
        "charge payment",
        "payment",
        ChargePayment,
        PaymentSucceeded,
        PaymentFailed,
        "payment_declined",
        RefundPayment,
        OrderStatus.PAID,
        "step",
        StockReserved,
    ),
    Step(
        "create shipment",
        "shipping",
        CreateShipment,
        ShippingCreated,
        None,
        "",
        CancelShipment,
        OrderStatus.COMPLETED,
        "shipping",
        PaymentSucceeded,
    ),
)
# Sent as the saga completes; no reply is awaited.
ON_COMPLETION: tuple[type[EventData], ...] = (ShipStock,)
COMPENSATION_RESEND = timedelta(seconds=10)  # a compensation unanswered: sent again


def choreography_counterparts() -> dict[tuple[str, str], str]:
    """(participant, the event it acts on under choreography): the command
    it acts on instead under orchestration. `scenario run --saga
    orchestrated` moves a scenario's fault on the one to the other."""
    found = {
        (s.participant, s.choreographed_by.event_type): s.command.event_type for s in DEFINITION
    }
    for step in DEFINITION:  # undoing its step: on the order's cancel, or on its command
        found[(step.participant, "OrderCancelled")] = step.compensation.event_type
    found[("inventory", "PaymentFailed")] = ReleaseStock.event_type
    found[("inventory", "ShippingCreated")] = ShipStock.event_type
    return found


REPLIES: dict[str, tuple[int, bool]] = {
    **{step.success.event_type: (i, True) for i, step in enumerate(DEFINITION)},
    **{step.failure.event_type: (i, False) for i, step in enumerate(DEFINITION) if step.failure},
}
COMPENSATIONS = {step.compensation.event_type: i for i, step in enumerate(DEFINITION)}
# what a reply adds to the saga's data, for the commands after it
CARRIED = {"PaymentSucceeded": ("payment_id", "amount_cents")}

RUNNING, COMPENSATING, COMPLETED, CANCELLED = "running", "compensating", "completed", "cancelled"


class SagaConflict(Exception):
    """Another move of the same saga committed first; the message is retried."""


class SagaNotYetKnown(Exception):
    """A reply came before its saga's row committed (a replayed message); retried."""


def command_for(step: Step | type[EventData], data: dict[str, Any]) -> EventData:
    """A step's command (or any orchestrator message) from the saga's data:
    the fields its model has, no more."""
    model = step.command if isinstance(step, Step) else step
    return model.model_validate({k: v for k, v in data.items() if k in model.model_fields})


def timeout_of(step: Step, timeouts: Timeouts) -> timedelta:
    return timeouts.shipping if step.timeout == "shipping" else timeouts.step


def _after(seconds: float) -> datetime:
    """A timer's time: written to the saga's row (the sweep reads it) and
    sent with the command it waits on (the timelines show it)."""
    return datetime.now(UTC) + timedelta(seconds=seconds)


@dataclass
class Saga:
    """One saga's row as read, and its next state as the moves set it;
    ``save`` writes it over the version read."""

    order_id: uuid.UUID
    state: str
    step: int
    version: int
    data: dict[str, Any]
    reason: str | None
    timer: datetime | Literal["keep"] | None = "keep"  # the new timer; None: none
    restarted: bool = False  # a new wait began: waiting_since is now

    @classmethod
    async def load(cls, conn: AsyncConnection, order_id: uuid.UUID) -> Saga | None:
        row = (await conn.execute(sa.select(sagas).where(sagas.c.order_id == order_id))).first()
        if row is None:
            return None
        return cls(row.order_id, row.state, row.step, row.version, dict(row.data), row.reason)

    def wait(self, state: str, step: int, timer_s: float | None) -> None:
        self.state, self.step, self.restarted = state, step, True
        self.timer = None if timer_s is None else _after(timer_s)

    @property
    def deadline(self) -> datetime | None:
        return self.timer if isinstance(self.timer, datetime) else None

    async def save(self, conn: AsyncConnection) -> None:
        values: dict[str, Any] = {
            "state": self.state,
            "step": self.step,
            "data": self.data,
            "reason": self.reason,
            "version": self.version + 1,
            "updated_at": sa.func.now(),
        }
        if self.restarted:
            values["waiting_since"] = sa.func.now()
        if self.timer != "keep":
            values["deadline_at"] = self.timer
        if self.state in (COMPLETED, CANCELLED):
            values["expires_at"] = None
        moved = await conn.execute(
            sagas.update()
            .where(sagas.c.order_id == self.order_id, sagas.c.version == self.version)
            .values(**values)
        )
        if moved.rowcount != 1:
            raise SagaConflict(f"saga {self.order_id} moved meanwhile (version {self.version})")
        self.version += 1


class Orchestrator:
    """Starts orchestrated sagas and moves them on replies and timers."""

    def __init__(self, timeouts: Callable[[], Timeouts], ended: Ended) -> None:
        self.timeouts = timeouts  # the order timeouts as now tuned
        self.ended = ended

    async def start(self, uow: UnitOfWork, created: OrderCreated) -> None:
        """The order row is written: write the saga's and send step 0."""
        timeouts = self.timeouts()
        data = created.model_dump(mode="json")
        first = DEFINITION[0]
        total = timeouts.step * 2 + timeouts.shipping
        timer = _after(timeout_of(first, timeouts).total_seconds())
        await uow.conn.execute(
            sagas.insert().values(
                order_id=created.order_id,
                state=RUNNING,
                step=0,
                data=data,
                waiting_since=sa.func.now(),
                deadline_at=timer,
                expires_at=_after(total.total_seconds()),
            )
        )
        uow.emit(created, correlation_id=created.order_id, saga_mode=ORCHESTRATED)
        uow.emit(
            command_for(first, data),
            correlation_id=created.order_id,
            saga_mode=ORCHESTRATED,
            saga_deadline=timer,
        )

    async def reply(self, event: Envelope[Any], uow: UnitOfWork) -> None:
        """A participant answered."""
        order_id: uuid.UUID = event.data.order_id
        saga = await Saga.load(uow.conn, order_id)
        if saga is None:
            raise SagaNotYetKnown(f"no saga for order {order_id} (yet)")
        if event.type == SagaStepCompensated.event_type:
            if saga.state == COMPENSATING and COMPENSATIONS.get(event.data.command) == saga.step:
                self._compensate_from(uow, saga, saga.step - 1)
                await saga.save(uow.conn)
            return  # a repeated answer, or one to a resend: already moved on
        index, succeeded = REPLIES[event.type]
        if saga.state != RUNNING or index != saga.step:
            # Not the step awaited: a duplicate, or a reply after its step's
            # timer fired (that step's compensation was sent then).
            return
        step = DEFINITION[index]
        if event.type in CARRIED:
            said = event.data.model_dump(mode="json")
            saga.data.update({key: said[key] for key in CARRIED[event.type]})
        if not succeeded:
            saga.reason = step.failure_reason
            await cancel(uow, order_id, step.failure_reason, self.ended, ORCHESTRATED)
            self._compensate_from(uow, saga, index - 1)
        elif index + 1 == len(DEFINITION):
            await advance(uow, order_id, step.reached, None, self.ended)
            saga.wait(COMPLETED, index, None)
            for model in ON_COMPLETION:
                uow.emit(command_for(model, saga.data))
        else:
            await advance(uow, order_id, step.reached, None)
            following = DEFINITION[index + 1]
            saga.wait(RUNNING, index + 1, timeout_of(following, self.timeouts()).total_seconds())
            uow.emit(command_for(following, saga.data), saga_deadline=saga.deadline)
        await saga.save(uow.conn)

    async def expire(self, uow: UnitOfWork, order_id: uuid.UUID) -> None:
        """A timer fired (the sweep holds the row's lock): a running saga
        times out; an unanswered compensation is sent again."""
        saga = await Saga.load(uow.conn, order_id)
        if saga is None:
            return
        if saga.state == RUNNING:
            saga.reason = "timeout"
            await cancel(uow, order_id, "timeout", self.ended, ORCHESTRATED)
            self._compensate_from(uow, saga, saga.step)  # the awaited step's may yet act
        elif saga.state == COMPENSATING:
            self._compensate_from(uow, saga, saga.step)  # sent again
        else:
            return
        await saga.save(uow.conn)

    def _compensate_from(self, uow: UnitOfWork, saga: Saga, index: int) -> None:
        """Send step ``index``'s compensation (the ones before follow, each
        on the reply to the one after); with none left, the saga is over."""
        if index < 0:
            saga.wait(CANCELLED, 0, None)
            return
        saga.wait(COMPENSATING, index, COMPENSATION_RESEND.total_seconds())
        uow.emit(
            DEFINITION[index].compensation.model_validate(
                {"order_id": saga.order_id, "reason": saga.reason or "timeout"}
            ),
            correlation_id=saga.order_id,
            saga_mode=ORCHESTRATED,
            saga_deadline=saga.deadline,
        )


async def due(conn: AsyncConnection, limit: int = 100) -> list[uuid.UUID]:
    """Sagas whose timer fired (or whose order's own deadline passed), locked;
    other replicas skip them."""
    rows = await conn.execute(
        sa.select(sagas.c.order_id)
        .where(
            sagas.c.state.in_((RUNNING, COMPENSATING)),
            sa.or_(
                sagas.c.deadline_at < sa.func.now(),
                sa.and_(sagas.c.state == RUNNING, sagas.c.expires_at < sa.func.now()),
            ),
        )
        .order_by(sagas.c.deadline_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [row.order_id for row in rows]
