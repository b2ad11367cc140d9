"""A scenario's own saga timeout: the switchboard passes a tuning to the
order service's handlers and a clear of all puts its settings back; a bad
tuning is refused where it enters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from services.common.faults import FaultCommand, FaultSpec, FaultSwitchboard
from services.order.domain import OrderStatus, Timeouts
from services.order.handlers import Handlers


def test_a_tuning_reaches_the_handlers_and_a_clear_of_all_takes_it_back():
    handlers = Handlers(Timeouts(step=timedelta(seconds=30), shipping=timedelta(seconds=60)))
    board = FaultSwitchboard("order")
    board.on_tuning(handlers.retune)
    board.apply(FaultCommand(action="tune", tuning={"saga_step_timeout_s": 3}))
    assert handlers.timeout.of(OrderStatus.PENDING) == timedelta(seconds=3)
    assert handlers.timeout.of(OrderStatus.PAID) == timedelta(seconds=3)  # shipping follows
    board.apply(FaultCommand(action="tune", tuning={"saga_shipping_timeout_s": 5}))
    assert handlers.timeout.of(OrderStatus.PAID) == timedelta(seconds=5)
    assert handlers.timeout.of(OrderStatus.STOCK_RESERVED) == timedelta(seconds=3)  # kept
    fault = FaultSpec(part="order", event="StockReserved", kind="delay", ms=10)
    board.apply(FaultCommand(action="set", fault=fault))
    board.apply(FaultCommand(action="clear", id=fault.id))  # one fault: the tuning stays
    assert handlers.timeout.of(OrderStatus.PENDING) == timedelta(seconds=3)
    board.apply(FaultCommand(action="clear"))
    assert handlers.timeout.of(OrderStatus.PENDING) == timedelta(seconds=30)
    assert handlers.timeout.of(OrderStatus.PAID) == timedelta(seconds=60)


@pytest.mark.parametrize(
    "tuning", [{"saga_step_timeout_s": 0}, {"saga_step_timeout_s": 7200}, {"db_pool_size": 3}]
)
def test_a_bad_tuning_is_refused(tuning):
    with pytest.raises(ValidationError):
        FaultCommand(action="tune", tuning=tuning)
