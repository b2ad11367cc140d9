"""A participant's two wirings of one domain (docs/saga.md).

Under choreography a participant acts on another's event; under
orchestration, on the orchestrator's command. The handler is the same
function: only the subscription differs. These wrap a handler for each:

- ``choreographed``: acts on an event only when its saga is choreographed.
  The events of an orchestrated saga (the order's own, the replies of other
  participants) are for the orchestrator, not for the participants.
- ``compensating``: a compensation command, answered with
  SagaStepCompensated whether or not there was anything to undo, so the
  orchestrator can go on to the step before.
"""

from __future__ import annotations

from typing import Any

from .consumer import Handler
from .events import Envelope, SagaStepCompensated
from .outbox import UnitOfWork


def choreographed(handler: Handler) -> Handler:
    async def on_event(event: Envelope[Any], uow: UnitOfWork) -> None:
        if event.sagamode is None:
            await handler(event, uow)

    on_event.__name__ = getattr(handler, "__name__", "handler")
    return on_event


def compensating(handler: Handler) -> Handler:
    async def on_command(command: Envelope[Any], uow: UnitOfWork) -> None:
        await handler(command, uow)
        uow.emit(SagaStepCompensated(order_id=command.data.order_id, command=command.type))

    on_command.__name__ = getattr(handler, "__name__", "handler")
    return on_command
