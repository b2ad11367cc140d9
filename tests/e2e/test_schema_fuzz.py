"""Schema fuzzing: schemathesis against the gateway's OpenAPI (its routes
and every service route behind it), once with a customer's token and once
with the admin's. Zero 5xx, and every response matches its documented
schema. Real ids (a product, a cart, an order) let it past the 404s into
the routes' logic."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import new_product

pytestmark = pytest.mark.e2e

# examples an operation, per role: 25 in CI (40 cost the run 40 s more of
# its 2 CPUs, where the ten-minute budget had none left); more by hand with
# SHOP_FUZZ_EXAMPLES=200, the seed fixed either way
EXAMPLES = os.environ.get("SHOP_FUZZ_EXAMPLES", "25")


def schemathesis() -> list[str]:
    exe = shutil.which("st", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("schemathesis is not installed (pip install -r requirements.lock)")
    return [exe]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("who", ["customer", "admin"])
def test_gateway_schema_fuzzing_finds_no_server_error(stack, shopper, admin, who, tmp_path, capsys):
    sku = new_product(admin, stock=1000)
    cart_id = shopper.cart_with(sku, 1)
    order_id = shopper.checkout(shopper.cart_with(sku, 1))
    token = (shopper if who == "customer" else admin).headers["Authorization"]
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f"""
[parameters]
sku = "{sku}"
cart_id = "{cart_id}"
order_id = "{order_id}"

[warnings]
display = []
"""
    )
    run = subprocess.run(
        [
            *schemathesis(),
            "--config-file",
            str(config),
            "run",
            f"{stack.gateway}/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            EXAMPLES,
            "--seed",
            "20261125",
            "--header",
            f"Authorization: {token}",
            # the live stream waits for a terminal order; fuzzing it only waits
            "--exclude-path-regex",
            "/stream$",
            "--request-timeout",
            "20",
            "--continue-on-failure",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        timeout=560,
        # schemathesis keeps a crash cache (.schemathesis/) in its working
        # directory: the test's own, not the checkout
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160"},
    )
    summary = run.stdout[-3000:]
    counted = [line.strip() for line in summary.splitlines() if "generated" in line]
    with capsys.disabled():  # the figure, for CI's log
        print(f"\n[schemathesis, {who} token] {' '.join(counted)}", end="")
    assert run.returncode == 0, run.stdout[-12000:] + run.stderr[-3000:]
    assert "Tested: 20" in run.stdout or "Tested:" in run.stdout
    assert "failure" not in summary.splitlines()[-1]
