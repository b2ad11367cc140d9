"""The gateway consumes no saga events through queues of its own; the live
stream reads every event through an exclusive queue (see stream.py)."""

from services.common.consumer import Subscription

SUBSCRIPTIONS: list[Subscription] = []
