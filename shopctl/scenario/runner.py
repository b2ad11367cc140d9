"""Running one scenario against a stack that is up: its steady state, its
method, its expectations on each order's timeline (read from a tap, the one
timeline model), its rollbacks (always, even after a failure) and the
invariants. Each step goes into the journal with when it ran and how it
ended, so a failure can be read without running it again."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from services.common.faults import FaultCommand, FaultSpec

from .. import deadletters
from ..amqp import broker_connection
from ..errors import ShopError
from ..fault_switch import send
from ..stack import PARTS
from ..timeline import Tap, Timeline
from .loading import Scenario

PART_ACTIONS = ("restart", "stop", "start", "pause", "resume")
_RESTOCK = re.compile(r"/api/inventory/([^/]+)/restock")
_VARIABLE = re.compile(r"\$\{(\w+)\}")
TERMINAL_WAIT_S = 60.0


class Failed(Exception):
    """An expectation that did not hold; the message says expected and seen."""


@dataclass
class JournalEntry:
    at: float  # seconds from the scenario's start
    step: str
    outcome: str  # ok, failed: ..., skipped
    seconds: float


@dataclass
class Result:
    scenario: Scenario
    passed: bool = False
    failure: str = ""
    seconds: float = 0.0
    journal: list[JournalEntry] = field(default_factory=list)
    orders: dict[str, Timeline] = field(default_factory=dict)


@dataclass
class Target:
    gateway: str
    broker_url: str
    admin: tuple[str, str]
    # (action, part): restart, stop, start, pause or resume a part (or
    # restart the broker) through the stack's runtime
    control: Callable[[str, str], None] | None = None
    # the parts not running and ready now (a crashed one restarting): the
    # rollbacks wait for none, so the next scenario starts from a healthy stack
    unready: Callable[[], list[str]] | None = None
    ready_timeout_s: float = 90.0
    # how long the invariants wait for stock and payments to settle
    settle_s: float = 15.0


class Run:
    def __init__(self, scenario: Scenario, target: Target, tap: Tap) -> None:
        self.scenario = scenario
        self.target = target
        self.tap = tap
        self.variables: dict[str, Any] = {
            "run": uuid.uuid4().hex[:8],
            "sku": f"SC-{uuid.uuid4().hex[:10]}",
            **scenario.document.get("variables", {}),
        }
        self.tokens: dict[str, str] = {}
        self.orders: list[str] = []
        self.skus: set[str] = set()
        self.stock_in: dict[str, int] = {}  # created and restocked, per SKU
        self.result = Result(scenario)
        self.started = time.monotonic()
        self.stopped: set[str] = set()  # parts the rollbacks start again
        self.paused: set[str] = set()  # parts the rollbacks resume
        self.label_prefix = ""
        self.dead_before: dict[str, int | None] = {}  # dead-letter depths at the start

    def branch(self, index: int) -> Run:
        """A copy for one branch of a parallel step: its own variables
        (with ${i}) and its own customer; orders, journal and result shared."""
        copy = object.__new__(Run)
        copy.__dict__.update(self.__dict__)
        copy.variables = {**self.variables, "i": index}
        copy.tokens = {k: v for k, v in self.tokens.items() if k == "admin"}
        copy.label_prefix = f"{self.label_prefix}[{index}] "
        return copy

    # values ---------------------------------------------------------------

    def fill(self, value: Any) -> Any:
        """``value`` with every ${name} replaced (recursively)."""
        if isinstance(value, str):
            whole = _VARIABLE.fullmatch(value)
            if whole:
                return self._variable(whole.group(1))
            return _VARIABLE.sub(lambda m: str(self._variable(m.group(1))), value)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value

    def _variable(self, name: str) -> Any:
        if name not in self.variables:
            raise Failed(f"no variable ${{{name}}} (set by variables: or a capture: before)")
        return self.variables[name]

    # steps ----------------------------------------------------------------

    async def step(self, client: httpx.AsyncClient, step: dict[str, Any]) -> None:
        started = time.monotonic()
        label = self.label_prefix + (step.get("name") or next(k for k in step if k != "name"))
        try:
            if "http" in step:
                await self.http(client, step["http"])
            elif "fault" in step:
                spec = FaultSpec(**self.fill(step["fault"]))
                await send(
                    self.target.broker_url, spec.part, FaultCommand(action="set", fault=spec)
                )
            elif "clear_faults" in step:
                await self.clear_faults(step["clear_faults"])
            elif "publish" in step:
                await self.publish(step["publish"])
            elif "dlq" in step:
                await self.dead_letters(step["dlq"])
            elif "await" in step:
                await self.expect_order(step["await"])
            elif "orders" in step:
                await self.expect_orders(step["orders"])
            elif "sleep" in step:
                await asyncio.sleep(float(step["sleep"]))
            elif "parallel" in step:
                await self.parallel(client, step["parallel"])
            else:
                action = next(k for k in step if k in PART_ACTIONS)
                await self.control(action, step[action])
        except (Failed, ShopError) as exc:
            message = exc.message if isinstance(exc, ShopError) else str(exc)
            self._journal(label, f"failed: {message}", started)
            raise Failed(f"step {label!r}: {message}") from None
        self._journal(label, "ok", started)

    async def control(self, action: str, name: str) -> None:
        if self.target.control is None:
            raise Failed(f"this stack cannot {action} parts (no runtime runs it)")
        await asyncio.to_thread(self.target.control, action, name)
        if action == "stop":
            self.stopped.add(name)
        elif action in ("start", "restart"):
            self.stopped.discard(name)
            self.paused.discard(name)
        elif action == "pause":
            self.paused.add(name)
        elif action == "resume":
            self.paused.discard(name)

    def fail_late(self, message: str) -> None:
        """A rollback that failed fails a scenario that had passed."""
        if self.result.passed:
            self.result.passed = False
            self.result.failure = message

    async def restore_parts(self) -> None:
        """Resume what the scenario paused, start what it stopped, and wait
        until every part is running and ready (one a crash fault took down
        comes back by its runtime's restart policy)."""
        for name in sorted(self.paused):
            await self.control("resume", name)
        for name in sorted(self.stopped):
            await self.control("start", name)
        if self.target.unready is None:
            return
        deadline = time.monotonic() + self.target.ready_timeout_s
        while unready := await asyncio.to_thread(self.target.unready):
            if time.monotonic() > deadline:
                raise Failed(
                    f"{', '.join(unready)} not ready {self.target.ready_timeout_s:g} s "
                    "after the scenario"
                )
            await asyncio.sleep(0.2)

    async def parallel(self, client: httpx.AsyncClient, parallel: dict[str, Any]) -> None:
        """``count`` copies of the steps at once; the first failure fails the step."""

        async def one(index: int) -> None:
            branch = self.branch(index)
            for step in parallel["steps"]:
                await branch.step(client, step)

        results = await asyncio.gather(
            *(one(i) for i in range(1, int(parallel["count"]) + 1)), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise Failed(f"{len(failures)} of {len(results)} branches failed; first: {failures[0]}")

    def _journal(self, label: str, outcome: str, started: float) -> None:
        self.result.journal.append(
            JournalEntry(started - self.started, label, outcome, time.monotonic() - started)
        )

    async def token(self, client: httpx.AsyncClient, who: str) -> dict[str, str]:
        if who == "anonymous":
            return {}
        if who not in self.tokens:
            if who == "admin":
                email, password = self.target.admin
            else:
                email, password = f"scenario-{uuid.uuid4().hex[:10]}@example.com", "scenario-pw"
                made = await _patient_post(
                    client, "/api/auth/register", {"email": email, "password": password}
                )
                if made.status_code != 201:
                    raise Failed(f"could not register a customer: {made.status_code} {made.text}")
            answer = await _patient_post(
                client, "/api/auth/token", {"email": email, "password": password}
            )
            if answer.status_code != 200:
                raise Failed(f"could not sign in as {who}: {answer.status_code} {answer.text}")
            self.tokens[who] = answer.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def http(self, client: httpx.AsyncClient, call: dict[str, Any]) -> None:
        """One call; with ``until``, repeated until its answer matches."""
        call = self.fill(call)
        deadline = time.monotonic() + float(call.get("until", 0))
        while True:
            try:
                await self._call(client, call)
                return
            except Failed:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.1)

    async def _call(self, client: httpx.AsyncClient, call: dict[str, Any]) -> None:
        headers = await self.token(client, call.get("as", "customer"))
        answer = await client.request(
            call["method"], call["path"], json=call.get("body"), headers=headers
        )
        expected = call.get("status")
        if expected is not None and answer.status_code != expected:
            raise Failed(
                f"{call['method']} {call['path']}: expected {expected}, "
                f"got {answer.status_code} {answer.text[:300]}"
            )
        body = (
            answer.json()
            if answer.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        for key, want in (call.get("json") or {}).items():
            if body.get(key) != want:
                raise Failed(
                    f"{call['method']} {call['path']}: expected {key}={want!r}, "
                    f"got {body.get(key)!r}"
                )
        for name, key in (call.get("capture") or {}).items():
            if key not in body:
                raise Failed(f"{call['method']} {call['path']}: no {key!r} to capture")
            self.variables[name] = body[key]
            if key == "order_id":
                self.orders.append(str(body[key]))
        self._count_stock(call, answer.status_code)

    def _count_stock(self, call: dict[str, Any], status: int) -> None:
        """Stock the scenario put in: products made and restocks, per SKU."""
        body = call.get("body") if isinstance(call.get("body"), dict) else {}
        if call["method"] != "POST" or status >= 300 or not body:
            return
        if call["path"] == "/api/products" and "sku" in body:
            self.skus.add(body["sku"])
            self.stock_in[body["sku"]] = self.stock_in.get(body["sku"], 0) + int(
                body.get("initial_stock", 0)
            )
        restock = _RESTOCK.fullmatch(call["path"])
        if restock and restock.group(1) in self.skus:
            sku = restock.group(1)
            self.stock_in[sku] = self.stock_in.get(sku, 0) + int(body.get("quantity", 0))

    async def tune_saga_timeout(self, seconds: float) -> None:
        """The order service's step and shipping timeouts for this run (the
        rollbacks' clear of all faults puts the settings back)."""
        started = time.monotonic()
        tuning = {"saga_step_timeout_s": seconds, "saga_shipping_timeout_s": seconds}
        try:
            await send(self.target.broker_url, "order", FaultCommand(action="tune", tuning=tuning))
        except ShopError as exc:
            self._journal(f"saga timeout {seconds:g} s", f"failed: {exc.message}", started)
            raise Failed(f"saga_timeout: {exc.message}") from None
        self._journal(f"saga timeout {seconds:g} s", "ok", started)

    async def dead_letters(self, dlq: dict[str, Any]) -> None:
        """Wait for new dead letters in a queue, replay its letters, or purge them."""
        if "purge" in dlq:
            await deadletters.purge(self.target.broker_url, dlq["purge"])
        elif "replay" in dlq:
            if not await deadletters.replay(self.target.broker_url, dlq["replay"]):
                raise Failed(f"no dead letter to replay in {dlq['replay']}")
        else:
            queue, wanted = dlq["await"], int(dlq.get("letters", 1))
            before = self.dead_before.get(queue) or 0
            deadline = time.monotonic() + float(dlq.get("until", 30))
            while True:
                now = (await deadletters.depths(self.target.broker_url, [queue])).get(queue)
                new = (now or 0) - before
                if new >= wanted:
                    return
                if time.monotonic() >= deadline:
                    raise Failed(
                        f"{queue} holds {new} new dead letters after "
                        f"{float(dlq.get('until', 30)):g} s, expected {wanted}"
                    )
                await asyncio.sleep(0.2)

    async def clear_faults(self, part: str) -> None:
        parts = [p.name for p in PARTS] if part == "all" else [part]
        for name in parts:
            try:
                await send(self.target.broker_url, name, FaultCommand(action="clear"))
            except ShopError:
                if part != "all":
                    raise  # a named part that does not listen is the scenario's mistake

    async def publish(self, publish: dict[str, Any]) -> None:
        import aio_pika

        publish = self.fill(publish)
        body = publish["body"]
        raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
        async with broker_connection(self.target.broker_url, "shopctl scenario") as connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange("shop.events", ensure=False)
            await exchange.publish(
                aio_pika.Message(raw, message_id=str(uuid.uuid4())),
                routing_key=publish["routing_key"],
            )

    # expectations ---------------------------------------------------------

    async def expect_orders(self, expectation: dict[str, Any]) -> None:
        """Every order placed ends within the deadline, with these outcomes."""
        wanted = {str(k): int(v) for k, v in expectation["outcomes"].items()}
        deadline = time.monotonic() + float(expectation.get("within", 60))
        ended: dict[str, str] = {}
        for order in self.orders:
            left = max(deadline - time.monotonic(), 0.01)
            try:
                timeline = await self.tap.wait_for(order, lambda t: t.outcome is not None, left)
            except TimeoutError as exc:
                raise Failed(f"{exc}\n{render_timeline(self.tap.store.get(order))}") from None
            ended[order] = timeline.outcome or ""
        seen: dict[str, int] = {}
        for outcome in ended.values():
            seen[outcome] = seen.get(outcome, 0) + 1
        # "CANCELLED" counts every cancellation, "CANCELLED (out_of_stock)" only those
        counted = {
            want: sum(n for outcome, n in seen.items() if outcome.split(" (")[0] == want)
            if " (" not in want
            else seen.get(want, 0)
            for want in wanted
        }
        if counted != wanted or sum(wanted.values()) != len(ended):
            raise Failed(f"{len(ended)} orders: expected {_counts(wanted)}, seen {_counts(seen)}")

    async def expect_order(self, expectation: dict[str, Any]) -> Timeline:
        expectation = self.fill(expectation)
        order = str(expectation["order"])
        wanted = [e if isinstance(e, dict) else {"type": e} for e in expectation.get("events", [])]
        outcome = expectation.get("outcome")
        deadline = float(expectation.get("within", 30))

        def done(timeline: Timeline) -> bool:
            types = timeline.types
            has_all = _in_order(types, [w["type"] for w in wanted])
            return has_all and (outcome is None or timeline.outcome == outcome)

        def decided(timeline: Timeline) -> bool:
            # an order's outcome is final: ended otherwise, it never will be as expected
            ended_otherwise = outcome is not None and timeline.outcome not in (None, outcome)
            return done(timeline) or ended_otherwise

        try:
            timeline = await self.tap.wait_for(order, decided, deadline)
        except TimeoutError:
            seen = self.tap.store.get(order)
            raise Failed(expected_versus_seen(wanted, outcome, seen, deadline)) from None
        if not done(timeline):
            raise Failed(expected_versus_seen(wanted, outcome, timeline, deadline))
        self.result.orders[order] = timeline
        for want in wanted:
            within = want.get("within")
            event = next(e for e in timeline if e.type == want["type"])
            if within is not None and timeline.offset(event) > within:
                raise Failed(
                    f"{want['type']} came {timeline.offset(event):.2f} s into the saga, "
                    f"expected within {within} s\n{render_timeline(timeline)}"
                )
        for never in expectation.get("never", []):
            if never in timeline.types:
                raise Failed(f"{never} happened, and must never\n{render_timeline(timeline)}")
        return timeline


async def _patient_post(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], patience_s: float = 30.0
) -> httpx.Response:
    """POST as a well-behaved client does: a 503 is tried again after its
    Retry-After (password hashing is admitted a few at a time)."""
    deadline = time.monotonic() + patience_s
    while True:
        answer = await client.post(path, json=body)
        if answer.status_code != 503 or time.monotonic() >= deadline:
            return answer
        await asyncio.sleep(float(answer.headers.get("retry-after", "1")))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "none"


def _in_order(seen: list[str], wanted: list[str]) -> bool:
    position = 0
    for event_type in seen:
        if position < len(wanted) and event_type == wanted[position]:
            position += 1
    return position == len(wanted)


def render_timeline(timeline: Timeline | None) -> str:
    if timeline is None or not len(timeline):
        return "  (no event seen for this order)"
    lines = []
    for event in timeline:
        step = timeline.step_time(event)
        took = f" (+{step * 1000:.0f} ms)" if step is not None else ""
        twice = f" x{event.deliveries}" if event.deliveries > 1 else ""
        lines.append(
            f"  {timeline.offset(event):7.3f} s  {event.source:<9} {event.type}{took}{twice}"
        )
    waiting = timeline.waiting_on()
    if waiting is not None:
        lines.append(f"  waiting on {waiting.event} from {waiting.part}, {waiting.age():.1f} s")
    return "\n".join(lines)


def expected_versus_seen(
    wanted: list[dict[str, Any]], outcome: str | None, seen: Timeline | None, deadline: float
) -> str:
    expected = " -> ".join(w["type"] for w in wanted) or "(any events)"
    text = f"within {deadline:.0f} s expected {expected}"
    if outcome:
        text += f", ending {outcome}"
    got = seen.outcome if seen is not None else None
    return f"{text}; seen{f' (ended {got})' if got else ''}:\n{render_timeline(seen)}"
