"""The login throttle (A4): failed logins counted in a moving window, per
account and per client address, with the `limits` library. With
SHOP_REDIS_URL the counts live in Redis, so every gateway process (a
replica, a restarted one) sees the same; else in this process's memory.

Only failures count, and no count is ever dropped to bound memory: the
window's entries expire on their own (Redis) or with the window (memory),
so a spray of invented emails cannot reset the account under attack."""

from __future__ import annotations

import logging
import time

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from services.common.errors import ApiError

log = logging.getLogger(__name__)
WINDOW_S = 60


class LoginThrottle:
    def __init__(
        self,
        per_account: int,
        per_address: int,
        redis_url: str = "",
        window_s: int = WINDOW_S,
        namespace: str = "shop-login",
    ) -> None:
        self.where = "redis" if redis_url else "memory"
        uri = f"async+{redis_url}" if redis_url else "async+memory://"
        self.storage = storage_from_string(uri, key_prefix=namespace)
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.limits: dict[str, RateLimitItem] = {
            "account": RateLimitItemPerSecond(per_account, window_s),
            "address": RateLimitItemPerSecond(per_address, window_s),
        }

    async def check(self, email: str, address: str) -> None:
        """429 with Retry-After when the account or the address has used its
        failures in the window; 503 when the shared counts cannot be read."""
        for kind, key in (("account", email), ("address", address)):
            item = self.limits[kind]
            try:
                allowed = await self.limiter.test(item, kind, key)
                if allowed:
                    continue
                stats = await self.limiter.get_window_stats(item, kind, key)
            except Exception as exc:  # the storage (Redis) is down or refuses
                log.error("login throttle: %s unreadable: %s", self.where, exc)
                raise ApiError(503, "sign-in is unavailable for a moment", retry_after=2) from None
            retry = max(1, int(stats.reset_time - time.time()) + 1)
            raise ApiError(
                429,
                f"too many failed logins for this {kind}; try again in {retry} s",
                retry_after=retry,
            )

    async def failed(self, email: str, address: str) -> None:
        try:
            await self.limiter.hit(self.limits["account"], "account", email)
            await self.limiter.hit(self.limits["address"], "address", address)
        except Exception as exc:  # not counted: said, and the login still refused
            log.error("login throttle: %s unwritable: %s", self.where, exc)

    async def succeeded(self, email: str) -> None:
        """The account's failures are forgiven; the address's are not."""
        try:
            await self.limiter.clear(self.limits["account"], "account", email)
        except Exception as exc:
            log.error("login throttle: %s unwritable: %s", self.where, exc)
