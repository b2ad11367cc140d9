"""The cart consumes no events: checkout starts the saga and the cart is done."""

from services.common.consumer import Subscription

SUBSCRIPTIONS: list[Subscription] = []
