"""The simulated card processor, with outcomes fixed by the card token (named
after the test tokens payment providers publish)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

APPROVED_TOKENS = {"tok_visa", "tok_mastercard"}
DECLINES = {
    "tok_chargeDeclined": "card_declined",
    "tok_chargeDeclinedInsufficientFunds": "insufficient_funds",
}
PROCESSING_ERROR_TOKEN = "tok_processingError"


class ProcessorError(Exception):
    """The processor failed to answer (a 5xx, a timeout)."""


@dataclass(frozen=True)
class ChargeResult:
    approved: bool
    reason: str | None
    attempts: int


def charge_once(card_token: str, amount_cents: int) -> bool | str:
    """True when approved, else the decline reason; raises ProcessorError."""
    if card_token == PROCESSING_ERROR_TOKEN:
        raise ProcessorError("processor unavailable")
    if card_token in APPROVED_TOKENS:
        return True
    return DECLINES.get(card_token, "card_declined")


async def charge(
    card_token: str, amount_cents: int, *, attempts: int, backoff_s: float
) -> ChargeResult:
    """Charge with a bounded number of tries; a processor that keeps failing
    ends in a decline with reason ``processing_error``."""
    for attempt in range(1, attempts + 1):
        try:
            outcome = charge_once(card_token, amount_cents)
        except ProcessorError:
            if attempt < attempts:
                await asyncio.sleep(backoff_s * attempt)
            continue
        if outcome is True:
            return ChargeResult(True, None, attempt)
        return ChargeResult(False, str(outcome), attempt)
    return ChargeResult(False, "processing_error", attempts)
