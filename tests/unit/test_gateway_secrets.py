"""Outside sandbox mode the gateway refuses to start on the sandbox's
secrets; tokens carry an audience and a key id, and a rotation accepts the
previous secret while signing with the new one."""

from __future__ import annotations

import uuid

import pytest

from services.common.errors import ApiError
from services.common.identity import Caller
from services.gateway import auth
from services.gateway.settings import SANDBOX_JWT_SECRET, GatewaySettings

OWN_SECRET = "k" * 20 + "0123456789abcdef0123"  # 40 bytes
OLD_SECRET = "o" * 20 + "0123456789abcdef0123"


def settings(**values: object) -> GatewaySettings:
    return GatewaySettings.model_construct(
        **{**GatewaySettings().model_dump(), "fault_injection": False, **values}
    )


def test_outside_sandbox_mode_the_sandbox_secret_or_password_stops_the_start():
    refused = settings().unsafe_outside_sandbox()
    assert refused is not None and refused.startswith("SHOP_JWT_SECRET is not set")
    refused = settings(jwt_secret=OWN_SECRET).unsafe_outside_sandbox()
    assert refused is not None and refused.startswith("SHOP_ADMIN_PASSWORD is not set or is")
    for known in ("admin", "Password", "changeme"):
        assert settings(jwt_secret=OWN_SECRET, admin_password=known).unsafe_outside_sandbox()
    short = settings(jwt_secret=OWN_SECRET, admin_password="tooshort").unsafe_outside_sandbox()
    assert short == "SHOP_ADMIN_PASSWORD is shorter than 12 characters"
    assert (
        settings(jwt_secret="x" * 31)
        .unsafe_outside_sandbox()
        .startswith("SHOP_JWT_SECRET is 31 bytes")
    )
    ok = settings(jwt_secret=OWN_SECRET, admin_password="a long one of my own")
    assert ok.unsafe_outside_sandbox() is None
    # sandbox mode keeps its defaults (and says so elsewhere)
    assert settings(fault_injection=True).unsafe_outside_sandbox() is None
    assert settings(fault_injection=True).jwt_secret == SANDBOX_JWT_SECRET


def test_create_app_exits_with_the_sentence_instead_of_starting():
    from services.gateway.app import create_app

    with pytest.raises(SystemExit) as stopped:
        create_app(settings())
    assert str(stopped.value).startswith("gateway not started: SHOP_JWT_SECRET is not set")


def test_a_rotation_accepts_the_previous_secret_by_kid_and_signs_with_the_new():
    caller = Caller(uuid.uuid4(), "customer")
    old = settings(jwt_secret=OLD_SECRET)
    issued_before = auth.issue_token(old, caller)
    rotating = settings(jwt_secret=OWN_SECRET, jwt_previous_secrets=OLD_SECRET)
    assert auth.caller_from_token(rotating, f"Bearer {issued_before}") == caller
    issued_after = auth.issue_token(rotating, caller)
    assert auth.caller_from_token(rotating, f"Bearer {issued_after}") == caller
    # the rotation over: the old key's tokens are refused, the new one's kept
    done = settings(jwt_secret=OWN_SECRET)
    with pytest.raises(ApiError) as refused:
        auth.caller_from_token(done, f"Bearer {issued_before}")
    assert refused.value.status == 401
    assert auth.caller_from_token(done, f"Bearer {issued_after}") == caller
    # another audience's gateway refuses this one's tokens
    with pytest.raises(ApiError):
        auth.caller_from_token(
            settings(jwt_secret=OWN_SECRET, jwt_audience="other"), f"Bearer {issued_after}"
        )
