"""`shopctl scenario fuzz` finds a planted bug, shrinks it to the one fault
that shows it and writes a scenario that fails the same way when run; on
the stack without the bug, that scenario passes."""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_local_runtime import shopctl

pytestmark = pytest.mark.e2e

# The planted bug: inventory forgets that it has seen an OrderCreated (its
# inbox claims every event as new, and a second reservation of one order is
# made again). Loaded through the sitecustomize hook of Python's site module,
# which runs once in the fork server that starts every part (or in each
# part, where each is an interpreter of its own), so the patches ask which
# part they run in when called: only inventory's calls are bugged.
PLANTED = """
import os

from services.common import inbox
from services.inventory import domain

_claim_handled = inbox.claim_handled
_claim = domain.claim


def _in_inventory():
    return os.environ.get("SHOP_SERVICE_NAME") == "inventory"


def _never_claimed(*args, **kwargs):
    if not _in_inventory():
        _claim_handled(*args, **kwargs)


async def _claim_reservation_always(conn, order_id, status):
    claimed = await _claim(conn, order_id, status)
    return True if status == "PENDING" and _in_inventory() else claimed


inbox.claim_handled = _never_claimed
domain.claim = _claim_reservation_always
"""


@pytest.mark.timeout(600)
def test_fuzz_finds_a_planted_bug_and_writes_a_scenario_that_fails_the_same_way(
    sandbox_env, tmp_path
):
    plant = tmp_path / "plant"
    plant.mkdir()
    (plant / "sitecustomize.py").write_text(PLANTED)
    env = {**sandbox_env, "SHOP_RUNTIME": "local"}
    bugged = {**env, "PYTHONPATH": str(plant)}
    found = tmp_path / "found"
    fuzzed = shopctl(
        bugged,
        "scenario",
        "fuzz",
        "--seed",
        "7",
        "--runs",
        "15",
        "--parts",
        "inventory",
        "--kinds",
        "duplicate",
        "--out",
        str(found),
        "--keep-up",
        # no delay among the faults: stock settles at once or never, so a
        # failing schedule need not wait the default 8 s to be called so
        "--settle",
        "3",
        timeout=500,
    )
    print(fuzzed.stdout[-6000:])
    assert fuzzed.returncode == 1, fuzzed.stdout[-4000:] + fuzzed.stderr
    assert re.search(
        r"smallest failing schedule: tok_\w+, 1 of 2 in stock, duplicate x1 OrderCreated\s+at"
        r"\s+inventory\n",
        fuzzed.stdout,
    ), fuzzed.stdout[-3000:]
    assert "still has stock reserved" in fuzzed.stdout
    assert "error: seed 7 found a failing schedule" in fuzzed.stderr
    written = found / "fuzz-seed-7.yaml"
    assert "kind: duplicate" in written.read_text()

    replayed = shopctl(bugged, "scenario", "run", str(written), "--settle", "3", timeout=200)
    assert replayed.returncode == 1, replayed.stdout[-3000:]
    assert "invariant:" in replayed.stdout and "still has stock reserved" in replayed.stdout

    # the same file on the stack without the bug passes: the failure was the bug
    assert shopctl(env, "down").returncode == 0
    clean = shopctl(env, "scenario", "run", str(written), timeout=200)
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr
