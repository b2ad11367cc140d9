"""Running one scenario against a stack that is up: its steady state, its
method, its expectations on each order's timeline (read from a tap, the one
timeline model), its rollbacks (always, even after a failure) and the
invariants. Each step goes into the journal with when it ran and how it
ended, so a failure can be read without running it again."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import orjson

from services.common.faults import FaultCommand, FaultSpec
from shopctl.amqp import publish_event
from shopctl.client import patient_post
from shopctl.errors import ShopError
from shopctl.fault_switch import send
from shopctl.observe import deadletters
from shopctl.observe.timeline import Tap, Timeline, TimelineEvent, render_timeline
from shopctl.scenario.checks import VARIABLE, count_bounds
from shopctl.scenario.loading import Scenario
from shopctl.stack import PARTS

PART_ACTIONS = ("restart", "stop", "start", "pause", "resume")
_RESTOCK = re.compile(r"/api/inventory/([^/]+)/restock")
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
    # expect_failure: (why it must fail, text its failure must hold or None)
    expect_failure: tuple[str, str | None] | None = None

    @property
    def expected_failure(self) -> bool:
        """Failed, as it was meant to (and with the failure named, if one was)."""
        if self.expect_failure is None or self.passed:
            return False
        text = self.expect_failure[1]
        return text is None or text in self.failure

    @property
    def as_expected(self) -> bool:
        return self.expected_failure if self.expect_failure is not None else self.passed

    @property
    def verdict(self) -> str:
        if self.expect_failure is None:
            return "passed" if self.passed else "failed"
        if self.expected_failure:
            return "failed as expected"
        return "passed, expected to fail" if self.passed else "failed, not as expected"

    @property
    def verdict_text(self) -> str:
        """What went wrong, for a result not as expected."""
        if self.expect_failure is None or self.expected_failure:
            return self.failure
        why, text = self.expect_failure
        if self.passed:
            return f"passed, but it is expected to fail ({why})"
        return f"failed, but not with {text!r} as expected ({why}):\n{self.failure}"


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
    # the saga mode each scenario's orders run in (`run --saga`), tuned on the
    # order service for the scenario; None: the stack's own
    saga: str | None = None


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
        self.started_wall = time.time()  # dead letters after this are the scenario's

    def branch(self, index: int) -> Run:
        """A copy for one branch of a parallel step: its own variables
        (with ${i}) and its own customer; orders, journal and result shared."""
        copy = self.named(str(index))
        copy.variables = {**self.variables, "i": index}
        copy.tokens = {k: v for k, v in self.tokens.items() if k == "admin"}
        return copy

    def named(self, name: str) -> Run:
        """A copy for one named branch of a concurrent step: the same
        variables (a capture is seen after the block), customer and result."""
        copy = object.__new__(Run)
        copy.__dict__.update(self.__dict__)
        copy.label_prefix = f"{self.label_prefix}[{name}] "
        return copy

    # values ---------------------------------------------------------------

    def fill(self, value: Any) -> Any:
        """``value`` with every ${name} replaced (recursively)."""
        if isinstance(value, str):
            whole = VARIABLE.fullmatch(value)
            if whole:
                return self._variable(whole.group(1))
            return VARIABLE.sub(lambda m: str(self._variable(m.group(1))), value)
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
                spec = self.orchestrated(FaultSpec(**self.fill(step["fault"])))
                await send(
                    self.target.broker_url, spec.part, FaultCommand(action="set", fault=spec)
                )
            elif "clear_faults" in step:
                await self.clear_faults(step["clear_faults"])
            elif "publish" in step:
                await self.publish(step["publish"])
            elif "dlq" in step:
                await self.dead_letters(self.orchestrated_queues(step["dlq"]))
            elif "await" in step:
                await self.expect_order(client, step["await"])
            elif "await_event" in step:
                await self.await_event(step["await_event"])
            elif "orders" in step:
                await self.expect_orders(step["orders"])
            elif "sequence" in step:
                await self.expect_sequence(step["sequence"])
            elif "dead_letter" in step:
                await self.expect_dead_letter(self.orchestrated_queues(step["dead_letter"]))
            elif "sleep" in step:
                await asyncio.sleep(float(step["sleep"]))
            elif "parallel" in step:
                await self.parallel(client, step["parallel"])
            elif "concurrent" in step:
                await self.concurrent(client, step["concurrent"])
            else:
                action = next(k for k in step if k in PART_ACTIONS)
                await self.control(action, step[action])
        except asyncio.CancelledError:
            self._journal(label, "cancelled (another branch failed)", started)
            raise
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

    async def concurrent(self, client: httpx.AsyncClient, branches: dict[str, Any]) -> None:
        """Named branches at once, each its steps in order; the block ends
        when all have. The first failure cancels the others and fails it."""

        async def run(name: str, steps: list[dict[str, Any]]) -> None:
            branch = self.named(name)
            for step in steps:
                await branch.step(client, step)

        tasks = {
            name: asyncio.create_task(run(name, steps), name=f"branch {name}")
            for name, steps in branches.items()
        }
        try:
            await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
        for name, task in tasks.items():
            if not task.cancelled() and task.exception() is not None:
                raise Failed(f"branch {name}: {task.exception()}")

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
                made = await patient_post(
                    client, "/api/auth/register", {"email": email, "password": password}
                )
                if made.status_code != 201:
                    raise Failed(f"could not register a customer: {made.status_code} {made.text}")
            answer = await patient_post(
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

    def orchestrated(self, spec: FaultSpec) -> FaultSpec:
        """Under `--saga orchestrated`, a fault on the event a participant
        acts on under choreography goes on the command it acts on instead
        (services/order/saga.py's counterparts); any other stays as written."""
        if self.target.saga != "orchestrated":
            return spec
        from services.order.saga import choreography_counterparts

        counterparts = choreography_counterparts()
        moved = {
            field: counterparts[(spec.part, event)]
            for field, event in (("event", spec.event), ("until", spec.until))
            if event is not None and (spec.part, event) in counterparts
        }
        return spec.model_copy(update=moved) if moved else spec

    def orchestrated_queues(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Under `--saga orchestrated`, a dead-letter step's queue of a
        choreography event (inventory.order.created.dlq) is its command's
        (inventory.stock.reserve.dlq)."""
        if self.target.saga != "orchestrated":
            return spec
        from services.common.events import EVENT_MODELS
        from services.order.saga import choreography_counterparts

        by_key = {model.routing_key: name for name, model in EVENT_MODELS.items()}
        counterparts = choreography_counterparts()

        def moved(queue: Any) -> Any:
            if not isinstance(queue, str) or not queue.endswith(".dlq"):
                return queue
            part_name, _, key = queue.removesuffix(".dlq").partition(".")
            command = counterparts.get((part_name, by_key.get(key, "")))
            if command is None:
                return queue
            return f"{part_name}.{EVENT_MODELS[command].routing_key}.dlq"

        return {field: moved(value) for field, value in spec.items()}

    async def tune(self, saga_timeout_s: float | None) -> None:
        """The order service's step and shipping timeouts for this run, and
        the saga mode its orders run in (the rollbacks' clear of all faults
        puts the settings back)."""
        started = time.monotonic()
        tuning: dict[str, float] = {}
        said = []
        if saga_timeout_s is not None:
            tuning.update(
                saga_step_timeout_s=saga_timeout_s, saga_shipping_timeout_s=saga_timeout_s
            )
            said.append(f"saga timeout {saga_timeout_s:g} s")
        if self.target.saga is not None:
            tuning["saga_orchestrated"] = float(self.target.saga == "orchestrated")
            said.append(f"sagas {self.target.saga}")
        if not tuning:
            return
        label = ", ".join(said)
        try:
            await send(self.target.broker_url, "order", FaultCommand(action="tune", tuning=tuning))
        except ShopError as exc:
            self._journal(label, f"failed: {exc.message}", started)
            raise Failed(f"{label}: {exc.message}") from None
        self._journal(label, "ok", started)

    async def dead_letters(self, dlq: dict[str, Any]) -> None:
        """Wait for new dead letters in a queue, replay its letters, or purge them."""
        # only the letters of this scenario: others on the broker are not its own
        if "purge" in dlq:
            await deadletters.purge(self.target.broker_url, dlq["purge"], self._new_letter)
        elif "replay" in dlq:
            if not await deadletters.replay(
                self.target.broker_url, dlq["replay"], select=self._new_letter
            ):
                raise Failed(f"no dead letter of this scenario to replay in {dlq['replay']}")
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
        publish = self.fill(publish)
        body = publish["body"]
        raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
        await publish_event(
            self.target.broker_url,
            self.orchestrated_key(publish["routing_key"]),
            raw,
            client="shopctl scenario",
        )

    def orchestrated_key(self, routing_key: str) -> str:
        """Under `--saga orchestrated`, a raw message for a choreography
        event's queue (order.created, inventory's) goes to its command's
        (stock.reserve) instead, where the same participant takes it."""
        if self.target.saga != "orchestrated":
            return routing_key
        from services.common.events import EVENT_MODELS
        from services.order.saga import choreography_counterparts

        event = next((n for n, m in EVENT_MODELS.items() if m.routing_key == routing_key), None)
        commands = {c for (_, e), c in choreography_counterparts().items() if e == event}
        if len(commands) != 1:  # none, or several parts' (order.cancelled): as written
            return routing_key
        return EVENT_MODELS[commands.pop()].routing_key

    # expectations ---------------------------------------------------------

    async def await_event(self, spec: dict[str, Any]) -> None:
        """Wait for an event of any saga (or of one order) whose data holds
        the fields given; capture fields of its data."""
        spec = self.fill(spec)
        wanted, fields, order = spec["type"], spec.get("data") or {}, spec.get("order")
        within = float(spec.get("within", 30))

        def find() -> TimelineEvent | None:
            timelines = (
                [self.tap.store.get(str(order))]
                if order is not None
                else list(self.tap.store.timelines.values())
            )
            for timeline in timelines:
                for event in timeline or ():
                    if event.type == wanted and _holds(event.data, fields):
                        return event
            return None

        try:
            event = await self.tap.wait_any(find, within)
        except TimeoutError:
            where = f" of order {order}" if order else ""
            with_fields = f" with {fields}" if fields else ""
            raise Failed(f"no {wanted}{where}{with_fields} within {within:g} s") from None
        for name, key in (spec.get("capture") or {}).items():
            source = {"order": event.correlation_id, "id": event.id, **event.data}
            if key not in source:
                raise Failed(f"{wanted} has no {key!r} to capture (it has {sorted(source)})")
            self.variables[name] = source[key]

    async def expect_sequence(self, spec: dict[str, Any]) -> None:
        """Events of several orders happened in this order (each one's first
        of its type, by the time it happened)."""
        spec = self.fill(spec)
        wanted = [(str(i["order"]), str(i["event"])) for i in spec["events"]]
        within = float(spec.get("within", 30))

        def find() -> list[TimelineEvent] | None:
            found = []
            for order, event_type in wanted:
                timeline = self.tap.store.get(order)
                event = next((e for e in timeline or () if e.type == event_type), None)
                if event is None:
                    return None
                found.append(event)
            return found

        try:
            seen = await self.tap.wait_any(find, within)
        except TimeoutError:
            missing = [
                f"{t} of {o[:8]}" for o, t in wanted if t not in _types(self.tap.store.get(o))
            ]
            raise Failed(
                f"sequence: {', '.join(missing)} not seen within {within:g} s\n"
                + _merged(self.tap, {o for o, _ in wanted})
            ) from None
        for (before, after), (first, then) in zip(
            itertools.pairwise(wanted), itertools.pairwise(seen), strict=True
        ):
            if then.at < first.at:
                raise Failed(
                    f"sequence: expected {before[1]} of {before[0][:8]} before {after[1]} of "
                    f"{after[0][:8]}, seen {then.at - first.at:+.3f} s after it\n"
                    + _merged(self.tap, {o for o, _ in wanted})
                )

    async def expect_dead_letter(self, spec: dict[str, Any]) -> None:
        """The dead letters a queue took during the scenario that match:
        exactly ``count`` (1) of them, within ``within`` seconds."""
        spec = self.fill(spec)
        queue, count = spec["queue"], int(spec.get("count", 1))
        within = float(spec.get("within", 30))
        deadline = time.monotonic() + within
        while True:
            letters = await deadletters.show(self.target.broker_url, queue, limit=1000)
            mine = [d for d in letters if self._new_letter(d)]
            matching = [d for d in mine if _letter_matches(d, spec)]
            if len(matching) == count:
                return
            if time.monotonic() >= deadline or len(matching) > count:
                described = (
                    "\n".join(
                        f"  {d.type or '?'} of {_letter_order(d) or '?'}: {d.reason} after "
                        f"{d.attempts} attempts: {d.error[:160]}"
                        for d in mine
                    )
                    or "  (none)"
                )
                raise Failed(
                    f"{queue}: expected {count} new dead letter{'s' if count != 1 else ''} "
                    f"matching {_letter_filter(spec)}, found {len(matching)} after "
                    f"{within:g} s; its new letters:\n{described}"
                )
            await asyncio.sleep(0.2)

    def _new_letter(self, letter: deadletters.DeadLetter) -> bool:
        try:
            when = datetime.fromisoformat(letter.dead_lettered_at).timestamp()
        except ValueError:
            return True
        return when >= self.started_wall - 0.5

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

    async def expect_order(
        self, client: httpx.AsyncClient, expectation: dict[str, Any]
    ) -> Timeline:
        """The order's saga: its events in order, counts of each type, its
        outcome, none of ``never``, its payments and shipments by status.
        Fails as soon as the order ends otherwise or a count is passed."""
        expectation = self.fill(expectation)
        order = str(expectation["order"])
        wanted = [e if isinstance(e, dict) else {"type": e} for e in expectation.get("events", [])]
        outcome = expectation.get("outcome")
        deadline = float(expectation.get("within", 30))
        ends_at = time.monotonic() + deadline
        bounds = {t: count_bounds(c) for t, c in (expectation.get("counts") or {}).items()}
        upper = any(high is not None for _, high in bounds.values())

        def counts_reached(timeline: Timeline) -> bool:
            return all(_count(timeline, t) >= low for t, (low, _) in bounds.items())

        def over_count(timeline: Timeline) -> str | None:
            for event_type, (_, high) in bounds.items():
                if high is not None and _count(timeline, event_type) > high:
                    return event_type
            return None

        def done(timeline: Timeline) -> bool:
            return (
                _in_order(timeline.types, [w["type"] for w in wanted])
                and (outcome is None or _outcome_is(timeline.outcome, outcome))
                and counts_reached(timeline)
                # an upper bound is known only once the saga is over
                and (not upper or timeline.outcome is not None)
            )

        def decided(timeline: Timeline) -> bool:
            # an order's outcome is final: ended otherwise, it never will be as expected
            ended_otherwise = (
                outcome is not None
                and timeline.outcome is not None
                and not _outcome_is(timeline.outcome, outcome)
            )
            return done(timeline) or ended_otherwise or over_count(timeline) is not None

        try:
            timeline = await self.tap.wait_for(order, decided, deadline)
        except TimeoutError:
            seen = self.tap.store.get(order)
            raise Failed(expected_versus_seen(wanted, outcome, seen, deadline, bounds)) from None
        self.result.orders[order] = timeline
        too_many = over_count(timeline)
        if too_many is not None:
            raise Failed(
                f"{_count(timeline, too_many)} {too_many}, expected "
                f"{_bounds_text(bounds[too_many])}\n{render_timeline(timeline)}"
            )
        if not done(timeline):
            raise Failed(expected_versus_seen(wanted, outcome, timeline, deadline, bounds))
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
        for kind in ("payments", "shipments"):
            if kind in expectation:
                await self._records(client, kind, order, expectation[kind], ends_at)
        return timeline

    async def _records(
        self,
        client: httpx.AsyncClient,
        kind: str,
        order: str,
        wanted: dict[str, int],
        ends_at: float,
    ) -> None:
        """An order's payments or shipments, counted by status, as wanted
        (statuses not named are not counted), read as the admin until they
        are or the expectation's time is up (at least the settle time)."""
        headers = await self.token(client, "admin")
        deadline = max(ends_at, time.monotonic() + self.target.settle_s)
        while True:
            answer = await client.get(f"/api/{kind}", params={"order_id": order}, headers=headers)
            if answer.status_code != 200:
                raise Failed(f"GET /api/{kind}?order_id={order}: {answer.status_code}")
            seen: dict[str, int] = {}
            for record in answer.json().get("items", []):
                seen[record.get("status")] = seen.get(record.get("status"), 0) + 1
            if all(seen.get(status, 0) == n for status, n in wanted.items()):
                return
            if time.monotonic() >= deadline:
                raise Failed(f"{kind} of {order}: expected {_counts(wanted)}, seen {_counts(seen)}")
            await asyncio.sleep(0.2)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "none"


def _bounds_text(bounds: tuple[int, int | None]) -> str:
    low, high = bounds
    if low == high:
        return f"exactly {low}"
    if high is None:
        return f"at least {low}"
    return f"at most {high}" if low == 0 else f"{low} to {high}"


def _count(timeline: Timeline, event_type: str) -> int:
    """Events of this type in the saga, each once (a delivery again is not another)."""
    return sum(1 for event in timeline if event.type == event_type)


def _outcome_is(seen: str | None, wanted: str) -> bool:
    """CANCELLED matches a cancellation for any reason; CANCELLED (timeout) one."""
    if seen is None:
        return False
    return seen == wanted or (" (" not in wanted and seen.split(" (")[0] == wanted)


def _types(timeline: Timeline | None) -> list[str]:
    return timeline.types if timeline is not None else []


def _holds(data: dict[str, Any], fields: dict[str, Any]) -> bool:
    return all(str(data.get(key)) == str(value) for key, value in fields.items())


def _letter_order(letter: deadletters.DeadLetter) -> str | None:
    try:
        envelope = orjson.loads(letter.body)
    except orjson.JSONDecodeError:
        return None
    found = envelope.get("correlationid") if isinstance(envelope, dict) else None
    return found if isinstance(found, str) else None


def _letter_matches(letter: deadletters.DeadLetter, spec: dict[str, Any]) -> bool:
    order = _letter_order(letter) or ""
    return (
        ("event" not in spec or letter.type == spec["event"])
        and ("reason" not in spec or letter.reason == spec["reason"])
        and ("order" not in spec or order.startswith(str(spec["order"])))
        and ("error" not in spec or str(spec["error"]) in letter.error)
    )


def _letter_filter(spec: dict[str, Any]) -> str:
    named = [f"{k} {spec[k]}" for k in ("event", "reason", "order", "error") if k in spec]
    return ", ".join(named) or "anything"


def _merged(tap: Tap, orders: set[str]) -> str:
    """Several orders' events in one list, by when they happened."""
    events = sorted(
        (e for o in orders for e in (tap.store.get(o) or ())), key=lambda e: (e.at, e.seen_at)
    )
    if not events:
        return "  (no event seen for these orders)"
    start = events[0].at
    return "\n".join(
        f"  {e.at - start:7.3f} s  {e.correlation_id[:8]}  {e.source:<9} {e.type}" for e in events
    )


def _in_order(seen: list[str], wanted: list[str]) -> bool:
    position = 0
    for event_type in seen:
        if position < len(wanted) and event_type == wanted[position]:
            position += 1
    return position == len(wanted)


def expected_versus_seen(
    wanted: list[dict[str, Any]],
    outcome: str | None,
    seen: Timeline | None,
    deadline: float,
    bounds: dict[str, tuple[int, int | None]] | None = None,
) -> str:
    expected = " -> ".join(w["type"] for w in wanted) or "(any events)"
    text = f"within {deadline:.0f} s expected {expected}"
    if bounds:
        text += " with " + ", ".join(f"{_bounds_text(b)} {t}" for t, b in bounds.items())
    if outcome:
        text += f", ending {outcome}"
    got = seen.outcome if seen is not None else None
    return f"{text}; seen{f' (ended {got})' if got else ''}:\n{render_timeline(seen)}"
