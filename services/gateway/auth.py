"""Customers, passwords (argon2) and tokens (JWT, HS256)."""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections import deque

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

from services.common.admission import Admission
from services.common.errors import ApiError
from services.common.identity import Caller

from .settings import GatewaySettings

_hasher = PasswordHasher()


async def hash_password(password: str, admission: Admission) -> str:
    """argon2 is slow on purpose: a few hashes at a time, the rest wait in a
    bounded queue or get 503, so a flood of sign-ups cannot starve the loop's
    thread pool and every other request with it."""
    async with admission.slot():
        return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str, password: str, admission: Admission) -> bool:
    async with admission.slot():
        try:
            return await asyncio.to_thread(_hasher.verify, password_hash, password)
        except VerificationError:
            return False


def admin_id(settings: GatewaySettings) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"shop-admin:{settings.admin_email}")


def is_admin_login(settings: GatewaySettings, email: str, password: str) -> bool:
    # compare_digest takes ASCII str only: compare the UTF-8 bytes.
    return hmac.compare_digest(email.encode(), settings.admin_email.encode()) and (
        hmac.compare_digest(password.encode(), settings.admin_password.encode())
    )


def issue_token(settings: GatewaySettings, caller: Caller) -> str:
    now = int(time.time())
    claims = {
        "sub": str(caller.customer_id),
        "role": caller.role,
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + settings.jwt_ttl_s,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def caller_from_token(settings: GatewaySettings, authorization: str | None) -> Caller | None:
    """The caller a bearer token proves, None without a token; 401 for a
    token that is expired, tampered, unsigned (alg none) or from another issuer."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "expected 'Authorization: Bearer <token>'")
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=["HS256"],
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
        customer_id = uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, ValueError):
        raise ApiError(401, "the token is invalid or expired") from None
    return Caller(customer_id, "admin" if claims.get("role") == "admin" else "customer")


class LoginThrottle:
    """At most ``limit`` failed logins per email in a sliding minute (A4)."""

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        cutoff = time.monotonic() - self.window_s
        while failures and failures[0] < cutoff:
            failures.popleft()
        return failures

    def check(self, key: str) -> None:
        failures = self._recent(key)
        if len(failures) >= self.limit:
            retry = int(self.window_s - (time.monotonic() - failures[0])) + 1
            raise ApiError(
                429, f"too many failed logins; try again in {retry} s", retry_after=retry
            )

    def failed(self, key: str) -> None:
        self._recent(key).append(time.monotonic())
        if len(self._failures) > 100_000:  # bound memory under a spray of emails
            self._failures.clear()

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
