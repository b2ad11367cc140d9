"""The catalog consumes no events: it is where products begin."""

from services.common.consumer import Subscription

SUBSCRIPTIONS: list[Subscription] = []
