"""Customers, passwords (argon2) and tokens (JWT, HS256)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
import time
import uuid

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


async def verify_password(password_hash: str | None, password: str, admission: Admission) -> bool:
    """Whether ``password`` is the one ``password_hash`` was made from. With
    no hash (an email nobody registered) a dummy one is checked instead, so
    an unknown email costs the same argon2 work as a wrong password: the
    answer's time does not tell which emails have accounts."""
    async with admission.slot():
        try:
            return await asyncio.to_thread(_hasher.verify, password_hash or _dummy(), password)
        except VerificationError:
            return False


@functools.cache
def _dummy() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))  # of no password anyone knows


def needs_rehash(password_hash: str) -> bool:
    """Made with other argon2 parameters than this gateway's (they changed)."""
    return _hasher.check_needs_rehash(password_hash)


def admin_id(settings: GatewaySettings) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"shop-admin:{settings.admin_email}")


def is_admin_login(settings: GatewaySettings, email: str, password: str) -> bool:
    # compare_digest takes ASCII str only: compare the UTF-8 bytes.
    return hmac.compare_digest(email.encode(), settings.admin_email.encode()) and (
        hmac.compare_digest(password.encode(), settings.admin_password.encode())
    )


def key_id(secret: str) -> str:
    """The token header's ``kid`` for a secret: a hash, never the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def issue_token(settings: GatewaySettings, caller: Caller) -> str:
    now = int(time.time())
    claims = {
        "sub": str(caller.customer_id),
        "role": caller.role,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + settings.jwt_ttl_s,
    }
    return jwt.encode(
        claims, settings.jwt_secret, algorithm="HS256", headers={"kid": key_id(settings.jwt_secret)}
    )


def caller_from_token(settings: GatewaySettings, authorization: str | None) -> Caller | None:
    """The caller a bearer token proves, None without a token; 401 for a
    token that is expired, tampered, unsigned (alg none), from another
    issuer or for another audience, or signed with a key no longer accepted
    (a rotation accepts the secrets of SHOP_JWT_PREVIOUS_SECRETS, by kid)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "expected 'Authorization: Bearer <token>'")
    try:
        keys = {key_id(secret): secret for secret in settings.verification_secrets()}
        secret = keys.get(str(jwt.get_unverified_header(token).get("kid", "")))
        if secret is None:
            raise ApiError(401, "the token is invalid or expired")
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
        customer_id = uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, ValueError):
        raise ApiError(401, "the token is invalid or expired") from None
    return Caller(customer_id, "admin" if claims.get("role") == "admin" else "customer")
