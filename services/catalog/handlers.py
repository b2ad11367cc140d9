"""The catalog consumes no events: it is where products begin."""

from services.common.consumer import Subscription


class Handlers:
    """None: the service consumes no saga events."""

    def subscriptions(self) -> list[Subscription]:
        return []
