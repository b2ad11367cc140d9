"""The shipped scenarios pass against the stack (and CI keeps their JUnit
file); a wrong expectation fails with what was expected against what was
seen; a bad file names its line."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest

from tests.e2e.conftest import ADMIN
from tests.e2e.test_local_runtime import shopctl

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "scenarios"
HERE = Path(__file__).parent / "scenario_files"
OUTPUT = Path(os.environ.get("SHOP_CI_OUTPUT", ROOT / "build" / "ci"))


@pytest.fixture
def stack_env(stack, broker_url):
    """The test run's stack (no runtime: parts cannot be restarted)."""
    return {
        "SHOP_GATEWAY_PORT": str(urlsplit(stack.gateway).port),
        "SHOP_BROKER_URL": broker_url,
        "SHOP_ADMIN_EMAIL": ADMIN[0],
        "SHOP_ADMIN_PASSWORD": ADMIN[1],
    }


# Restarts this machine's RabbitMQ: run on its own, after the rest (below).
RESTARTS_BROKER = "broker-restart.yaml"


def shipped(*, restarting: bool = False) -> list[Path]:
    return sorted(p for p in SHIPPED.glob("*.yaml") if (p.name == RESTARTS_BROKER) == restarting)


@pytest.mark.timeout(600)
def test_every_shipped_scenario_passes_and_junit_says_so(sandbox_env, tmp_path):
    """On a sandbox of its own, in each saga mode (docs/saga.md), CI keeping
    both JUnit files. All but the broker restart, which the test after this
    one runs. The first run brings the stack up and leaves it (--keep-up),
    the second finds it up. The outbox's lease is 3 s here, not 10: the
    crash-after-commit scenario waits it out, in each mode."""
    env = {**sandbox_env, "SHOP_RUNTIME": "local", "SHOP_OUTBOX_LEASE_S": "3"}
    files = shipped()
    try:
        for first, saga in ((True, "choreographed"), (False, "orchestrated")):
            junit = tmp_path / f"{saga}.xml"
            result = shopctl(
                env,
                *("scenario", "run", *map(str, files), "--saga", saga, "--keep-up"),
                *("--junit", str(junit)),
                timeout=280,
            )
            # CI keeps each mode's JUnit file beside pytest's (scripts/test's output folder)
            OUTPUT.mkdir(parents=True, exist_ok=True)
            shutil.copy(junit, OUTPUT / f"scenarios-{saga}.xml")
            print(result.stdout[-4000:])
            assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
            assert ("stack ready in" in result.stdout) == first  # the first brought it up
            assert "stopping the stack" not in result.stdout  # --keep-up
            _suite_passed(junit, files, result.stdout)
            # the order service ran them in that mode: its commands are in the timelines
            assert ("ChargePayment" in result.stdout) == (saga == "orchestrated")
    finally:
        assert "stopped" in shopctl(env, "down").stdout


def _suite_passed(junit: Path, files: list[Path], stdout: str) -> None:
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("tests") == str(len(files)) and suite.get("failures") == "0"
    cases = suite.findall("testcase")
    assert {c.get("classname") for c in cases} == {p.stem for p in files}
    assert all(c.find("failure") is None for c in cases)
    # the negative example failed as it says it must, reported as pytest reports an xfail
    [xfail] = [c for c in cases if c.find("skipped") is not None]
    assert xfail.get("classname") == "deliberately-wrong"
    assert xfail.find("skipped").get("type") == "expected-failure"
    assert "seen (ended CANCELLED (payment_declined))" in xfail.findtext("skipped")
    assert suite.get("skipped") == "1"
    assert "failed as expected" in stdout
    assert all("ok" in (c.findtext("system-out") or "") for c in cases)


@pytest.mark.timeout(300)
@pytest.mark.restarts_servers
def test_the_broker_restart_scenario_passes_in_both_saga_modes(sandbox_env, tmp_path):
    """The shipped scenario that restarts this machine's RabbitMQ, on one
    sandbox in each mode, alone after the rest (its JUnit files beside the
    suite's)."""
    env = {**sandbox_env, "SHOP_RUNTIME": "local"}
    [scenario] = shipped(restarting=True)
    for saga in ("choreographed", "orchestrated"):
        junit = tmp_path / f"{saga}.xml"
        result = shopctl(
            env,
            "scenario",
            "run",
            str(scenario),
            "--saga",
            saga,
            "--junit",
            str(junit),
            timeout=240,
        )
        print(result.stdout[-3000:])
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert "stack ready in" in result.stdout  # it brought the stack up
        assert "stopping the stack this run started" in result.stdout  # and down after
        assert "nothing was running" in shopctl(env, "down").stdout
        suite = ElementTree.parse(junit).getroot()
        assert (suite.get("tests"), suite.get("failures")) == ("1", "0")
        assert ("ChargePayment" in result.stdout) == (saga == "orchestrated")
        OUTPUT.mkdir(parents=True, exist_ok=True)
        shutil.copy(junit, OUTPUT / f"scenarios-{saga}-broker-restart.xml")


@pytest.mark.timeout(300)
def test_a_wrong_expectation_fails_with_expected_versus_seen_and_a_bundle(sandbox_env, tmp_path):
    junit, bundle = tmp_path / "wrong.xml", tmp_path / "bundle"
    result = shopctl(
        {**sandbox_env, "SHOP_RUNTIME": "local"},
        "scenario",
        "run",
        str(HERE / "wrong-expectation.yaml"),
        "--junit",
        str(junit),
        "--bundle",
        str(bundle),
        "--keep-up",
    )
    assert result.returncode == 1
    text = result.stdout
    assert "failed" in text
    assert "expected StockReserved -> PaymentSucceeded -> OrderCompleted, ending COMPLETED" in text
    assert "(ended CANCELLED (payment_declined))" in text
    assert "payment   PaymentFailed" in text  # the timeline as seen
    assert "error: 1 of 1 scenarios did not end as expected" in result.stderr
    failure = ElementTree.parse(junit).getroot().find("testcase/failure")
    assert failure is not None and "PaymentSucceeded" in failure.get("message", "")

    folder = bundle / "wrong-expectation"
    assert "ending COMPLETED" in (folder / "failure.txt").read_text()
    assert "expect order: failed" in (folder / "journal.txt").read_text()
    [timeline] = [p for p in (folder / "orders").glob("*.txt") if ".outbox" not in p.name]
    order = timeline.stem
    assert "PaymentFailed" in timeline.read_text() and "OrderCancelled" in timeline.read_text()
    assert len((folder / "orders" / f"{order}.jsonl").read_text().splitlines()) >= 5
    logs = (folder / "logs.txt").read_text()
    assert order in logs  # the parts' log lines about this order
    assert (folder / "dead-letters.txt").read_text() == "none\n"
    outbox = (folder / "orders" / f"{order}.outbox.txt").read_text()
    assert re.search(r"order +OrderCreated +published ", outbox), outbox
    assert re.search(r"payment +PaymentFailed +published ", outbox), outbox
    assert "NOT PUBLISHED" not in outbox
    # --keep-up: the stack this run started is still up
    assert "stopping the stack" not in text
    assert " running " in shopctl(sandbox_env, "status").stdout


def test_a_bad_file_names_its_line_and_column(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "name: broken\nmethod:\n  - http: {method: GET, path: /api/products}\n"
        "  - fault: {part: payment, event: StockReserved, kind: explode}\n"
    )
    result = shopctl({}, "scenario", "check", str(broken))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {broken}:4:50: method/1/fault/kind: 'explode' is not")
    not_yaml = tmp_path / "not-yaml.yaml"
    not_yaml.write_text("name: x\nmethod: [\n")
    result = shopctl({}, "scenario", "check", str(not_yaml))
    assert result.returncode == 2 and f"{not_yaml}:3:1: not valid YAML" in result.stderr


def test_the_shipped_scenarios_are_valid():
    result = shopctl({}, "scenario", "check", str(SHIPPED))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok ") == len(list(SHIPPED.glob("*.yaml")))


def test_what_a_scenario_says_of_its_own_failure_is_held_to(stack_env, tmp_path):
    """expect_failure that passes, or fails otherwise, is not as expected; a
    failing branch cancels the others at once; a count passed fails at once
    (each would otherwise take its 30 or 60 s)."""
    junit = tmp_path / "negative.xml"
    result = shopctl(
        stack_env, "scenario", "run", str(HERE / "negative"), "--junit", str(junit), timeout=120
    )
    assert result.returncode == 1
    assert "error: 4 of 4 scenarios did not end as expected" in result.stderr
    cases = {c.get("classname"): c for c in ElementTree.parse(junit).getroot()}
    said = {name: case.find("failure").get("message") for name, case in cases.items()}
    assert said["passes-but-expected-to-fail"] == (
        "passed, but it is expected to fail (nothing here can fail)"
    )
    assert said["fails-the-wrong-way"].startswith("failed, but not with 'expected 418'")
    assert said["a-branch-fails-fast"].startswith("step 'concurrent': branch broken:")
    journal = cases["a-branch-fails-fast"].findtext("system-out")
    assert "[slow] sleep: cancelled (another branch failed)" in journal
    assert said["too-many"].startswith("step 'expect order': 1 StockReserved, expected exactly 0")
    for name in ("a-branch-fails-fast", "too-many"):
        assert float(cases[name].get("time")) < 10, name  # not the 60 s sleep, nor the 30 s
