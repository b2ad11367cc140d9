"""The frontend in headless Chromium against a sandbox that `shopctl up`
started (the gateway serving the build at /), its component tests with
Vitest, and the Postman collection with newman. Screenshots of each page go
to the CI output folder (SHOP_CI_OUTPUT, build/ci by default)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_local_runtime import shopctl

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
OUTPUT = Path(os.environ.get("SHOP_CI_OUTPUT", ROOT / "build" / "ci"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def npm(*args: str, timeout: float = 300, env: dict[str, str] | None = None):
    return subprocess.run(
        ["npm", *args],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def built():
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed (scripts/test installs Node.js and npm)")
    if not (FRONTEND / "node_modules").is_dir():
        done = npm("ci", "--no-audit", "--no-fund", timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return FRONTEND


def test_component_tests_pass(built):
    done = npm("test", timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Tests" in done.stdout and "failed" not in done.stdout.split("Tests", 1)[1][:60]


@pytest.mark.timeout(400)
def test_the_browser_flows_and_newman_against_the_sandbox(built, sandbox_env):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/test installs Debian's chromium)")
    # exactly what a newcomer gets: the admin login `up` prints, not a test's own
    env = {
        k: v for k, v in sandbox_env.items() if k not in ("SHOP_ADMIN_PASSWORD", "SHOP_PROMETHEUS")
    }
    env["SHOP_RUNTIME"] = "local"
    up = shopctl(env, "up", "--runtime", "local", timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    printed = re.search(r"admin login: (\S+) / (\S+)", up.stdout)
    assert printed, up.stdout
    admin_email, admin_password = printed.groups()
    assert (admin_email, admin_password) == ("admin@shop.local", "admin")
    gateway = f"http://127.0.0.1:{env['SHOP_GATEWAY_PORT']}"
    assert f"{gateway}/" in up.stdout and "frontend" in up.stdout
    status = shopctl(env, "status")
    assert f"{gateway}/" in status.stdout, status.stdout

    page = httpx.get(f"{gateway}/orders/123")  # a page path: the app, for its router
    assert page.status_code == 200 and '<div id="root">' in page.text
    assert httpx.get(f"{gateway}/nope.js").status_code == 404
    icon = httpx.get(f"{gateway}/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")
    assert '<link rel="icon"' in page.text
    assert httpx.get(f"{gateway}/api/nothing-here").status_code == 404
    script = re.search(r'src="(/assets/[^"]+\.js)"', page.text).group(1)
    asset = httpx.get(f"{gateway}{script}", headers={"Accept-Encoding": "gzip"})
    assert (
        asset.headers["content-encoding"] == "gzip"
        and "immutable" in asset.headers["cache-control"]
    )

    shots = OUTPUT / "screenshots"
    shutil.rmtree(shots, ignore_errors=True)  # this run's pictures only
    sku = f"WEB-{uuid.uuid4().hex[:8]}"
    report_file = OUTPUT / "frontend.json"
    report_file.unlink(missing_ok=True)
    done = npm(
        "run",
        "e2e",
        timeout=300,
        env={
            "SHOP_GATEWAY": gateway,
            "SHOP_E2E_SKU": sku,
            "SHOP_ADMIN_EMAIL": admin_email,
            "SHOP_ADMIN_PASSWORD": admin_password,
            "SHOP_E2E_SHOTS": str(shots),
            "SHOP_E2E_REPORT": str(report_file),
            "CHROMIUM": CHROMIUM,
        },
    )
    print(done.stdout[-3000:], done.stderr[-3000:])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout, done.stdout[-2000:]
    report = json.loads(report_file.read_text())
    assert "Payment accepted" in report["completed_steps"]
    assert report["missing_files"] == [], report["missing_files"]  # the favicon among them
    assert "declined" in report["declined_reason"]
    for name in ("01-products", "02-admin", "05-order-completed", "07-order-declined", "08-orders"):
        assert (shots / f"{name}.png").stat().st_size > 5000, name

    collection = ROOT / "docs" / "postman"
    newman = subprocess.run(
        [
            str(FRONTEND / "node_modules" / ".bin" / "newman"),
            "run",
            str(collection / "shop.postman_collection.json"),
            "-e",
            str(collection / "local.postman_environment.json"),
            "--env-var",
            f"baseUrl={gateway}",
            "--env-var",
            f"adminPassword={admin_password}",
            "--reporters",
            "cli",
        ],
        capture_output=True,
        text=True,
        timeout=200,
    )
    print(newman.stdout[-4000:])
    # newman exits 1 when any request's test fails
    assert newman.returncode == 0, newman.stdout[-4000:] + newman.stderr[-2000:]
    assert "the order completed" in newman.stdout and "3 available, none reserved" in newman.stdout
