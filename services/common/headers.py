"""The x-shop-* headers a message carries through retries, dead letters
and replays, named once: the consumer writes them, shopctl reads them."""

from __future__ import annotations

ATTEMPT = "x-shop-attempt"  # the attempt this delivery is (1 first)
REASON = "x-shop-reason"  # why it was dead-lettered: one of DEAD_LETTER_REASONS
ERROR = "x-shop-error"  # the last attempt's error
ATTEMPTS = "x-shop-attempts"  # attempts spent before it was dead-lettered
QUEUE = "x-shop-queue"  # the consumer queue it died on (a replay goes back there)
ROUTING_KEY = "x-shop-routing-key"  # the routing key it was published with
DEAD_LETTERED_AT = "x-shop-dead-lettered-at"
REPLAYED = "x-shop-replayed"  # put back on its queue from a dead-letter queue
# headers that describe one death: a replayed message leaves them behind
DEATH = (REASON, ERROR, ATTEMPTS, DEAD_LETTERED_AT)

# why a message is dead-lettered (the REASON header): the body is not JSON, not
# an envelope, of no known type, of a type its queue does not take, or its
# handler failed every attempt
DEAD_LETTER_REASONS = (
    "not_json",
    "not_an_envelope",
    "unknown_type",
    "unexpected_type",
    "handler_failed",
)
