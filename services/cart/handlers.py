"""The cart consumes no events: checkout starts the saga and the cart is done."""

from services.common.consumer import Subscription


class Handlers:
    """None: the service consumes no saga events."""

    def subscriptions(self) -> list[Subscription]:
        return []
