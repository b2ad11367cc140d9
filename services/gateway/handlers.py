"""The gateway consumes no saga events through queues of its own; the live
stream reads every event from a RabbitMQ stream while someone watches (see
stream.py)."""

from services.common.consumer import Subscription


class Handlers:
    """None: the service consumes no saga events."""

    def subscriptions(self) -> list[Subscription]:
        return []
