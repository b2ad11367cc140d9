"""`shopctl bench`: checkouts through the gateway at a paced rate (open loop:
a slow system cannot slow the load) or as a flood (a fixed number of orders
in flight from checkout to their end, as the bare baseline keeps journeys in
flight), every order followed to its end on a tap, and what it cost: orders
a second, the checkout's answer time, checkout to OrderCompleted, each saga
step, errors by kind, the CPU seconds and memory of every part, the queues
left at the end.

Customers, products and carts are made before the clock starts; the carts
are the load's ammunition, one a checkout."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import aiohttp
import httpx
import orjson

from services.common.events import OrderCancelled, OrderCompleted
from shopctl.client import patient_post
from shopctl.errors import ShopError, UsageError
from shopctl.observe.timeline import TERMINAL, Tap, TimelineEvent, TimelineStore, parse_event
from shopctl.stack import PARTS

CARDS = {"happy": "tok_visa", "declined": "tok_chargeDeclined", "out_of_stock": "tok_visa"}
ADDRESS = {
    "name": "Bench Buyer",
    "line1": "1 Load Street",
    "city": "Leeds",
    "postal_code": "LS1 1AA",
    "country": "GB",
}


def parse_mix(text: str) -> dict[str, int]:
    """'happy=90,declined=5,out_of_stock=5' -> weights."""
    mix: dict[str, int] = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in CARDS or not weight.strip().isdigit():
            raise UsageError(f"bad --mix entry {part!r}; use happy=N,declined=N,out_of_stock=N")
        mix[name] = int(weight)
    if not sum(mix.values()):
        raise UsageError("--mix weighs nothing")
    return mix


@dataclass
class Checkout:
    kind: str
    sent: float  # time.time() when the request left
    answered: float | None = None
    status: int | None = None
    error: str | None = None
    order: str | None = None


LOAD = "shopctl bench (the load)"  # this process, in the CPU table
# A flood's tap takes only the ends of the orders (what holds its slots and
# counts them); the steps between are read back after the run
# (read_steps_back). Taking every event live took the bench twice the CPU
# (docs/performance-journal.md, "What an order costs beside a bare journey; the
# bench's own tap").
TERMINAL_KEYS = tuple(
    key
    for model in (OrderCompleted, OrderCancelled)
    for key in (model.routing_key, f"{model.routing_key}.orchestrated")  # docs/saga.md
)
BARE = "the bare pipeline"  # this process while --baseline measures


class Figures(TypedDict, total=False):
    """What a bench measured, as `--json` prints it and the report reads it;
    the baseline's four are there when it ran."""

    mode: str
    duration_s: float
    checkouts: int
    accepted: int
    completed: int
    completed_per_s: float
    outcomes: dict[str, int]
    most_in_flight: int
    errors: dict[str, int]
    checkout_answer_ms: dict[str, float]
    checkout_to_completed_ms: dict[str, float]
    steps_ms: dict[str, dict[str, float]]
    cpu_s: dict[str, float]
    bench_gc_pauses: dict[str, float]
    stack_cpu_ms_per_order: float | None
    cpu_ms_per_order: dict[str, float]
    saga: str
    messages_per_order: float | None
    deliveries_per_order: float | None
    machine_busy_share: float | None
    rss_mb: dict[str, float]
    queues_at_end: dict[str, int]
    machine: str
    over_time: list[dict[str, Any]]
    growth: dict[str, str]
    baseline_per_s: float
    ratio_to_baseline: float | None
    baseline_cpu_ms_a_journey: dict[str, float]
    baseline_machine_busy_share: float | None
    # a flood: KEDA's rule on the consumers' queue depths (shopctl/k8s/scaling.py)
    keda: dict[str, Any]
    # each consumer's batch size and the batches it made (services/common/batch.py)
    batches: dict[str, Any]


# How many parts consume each routing key: every message is delivered to
# each of them and handled in one transaction (the stack description's
# `consumes`, which a unit test holds to the services' code).
CONSUMERS: Counter[str] = Counter(key for p in PARTS for key in p.consumes)
ORCHESTRATOR_TAKES = frozenset(next(p for p in PARTS if p.name == "order").consumes)


def deliveries(event: TimelineEvent) -> int:
    """The consumers an event reached. An orchestrated saga's event (not a
    command) goes out under `<key>.orchestrated`: only the orchestrator's
    queue is bound to it, for the replies it takes (docs/saga.md)."""
    key = event.routing_key.removesuffix(".orchestrated")
    if event.saga_mode == "orchestrated" and key != event.routing_key:
        return int(key in ORCHESTRATOR_TAKES)
    return CONSUMERS[key]


@dataclass
class BenchResult:
    mode: str
    duration_s: float
    checkouts: list[Checkout] = field(default_factory=list)
    store: TimelineStore = field(default_factory=TimelineStore)
    cpu_s: dict[str, float] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)
    machine: str = ""
    samples: list[dict[str, Any]] = field(default_factory=list)
    measure_started: float = 0.0  # time.time(); CPU is counted from here
    gc_pauses_ms: list[float] = field(default_factory=list)  # this process's own
    machine_busy_s: float = 0.0  # the machine's busy CPU seconds in that time
    cpu_window_s: float = 0.0  # wall time cpu_s was counted over

    def measured(self) -> list[Checkout]:
        return [c for c in self.checkouts if c.kind != "warmup"]

    def most_in_flight(self) -> int:
        """The most orders at once between their checkout and their end (as
        the tap saw it), warm-up included; one that never ended counts to
        the end. A flood holds it at its --in-flight; paced, it is the backlog."""
        edges: list[tuple[float, int]] = []
        for checkout in self.checkouts:
            if not checkout.order:
                continue
            edges.append((checkout.sent, 1))
            timeline = self.store.get(checkout.order)
            if timeline is not None and timeline.outcome is not None:
                ended = next(e.seen_at for e in timeline if e.type in TERMINAL)
                edges.append((ended, -1))
        most = now = 0
        for _, step in sorted(edges):  # at one instant an end (-1) sorts before a start
            now += step
            most = max(most, now)
        return most

    def summary(self) -> Figures:
        checkouts = self.measured()
        answered = [c for c in checkouts if c.status == 202 and c.order]
        outcomes: Counter[str] = Counter()
        to_completed: list[float] = []
        steps: dict[str, list[float]] = {}
        messages: list[int] = []
        delivered: list[int] = []
        for checkout in answered:
            timeline = self.store.get(checkout.order or "")
            if timeline is None or timeline.outcome is None:
                outcomes["not ended"] += 1
                continue
            outcomes[timeline.outcome] += 1
            messages.append(len(timeline))
            delivered.append(sum(deliveries(e) for e in timeline))
            for event in timeline:
                step = timeline.step_time(event)
                if step is not None:
                    steps.setdefault(event.type, []).append(step)
            done = next((e for e in timeline if e.type == "OrderCompleted"), None)
            if done is not None:
                to_completed.append(done.seen_at - checkout.sent)
        # throughput: the orders whose OrderCompleted the tap saw inside the
        # measured window, whenever their checkout left (the baseline counts
        # journeys the same way)
        window_end = self.measure_started + self.duration_s
        completed = sum(
            1
            for timeline in self.store.timelines.values()
            for e in timeline
            if e.type == "OrderCompleted" and self.measure_started <= e.seen_at <= window_end
        )
        errors = Counter(
            c.error or f"HTTP {c.status}" for c in checkouts if c.status != 202 or not c.order
        )
        answer_times = [c.answered - c.sent for c in answered if c.answered]
        # CPU is counted from the measure's start until the last order ended:
        # divide by the orders that ended in that window (warmup ones too),
        # by when the tap saw each end (a flood's steps are read back later)
        ended_in_window = sum(
            1
            for c in self.checkouts
            if c.order
            and (timeline := self.store.get(c.order)) is not None
            and (end := next((e.seen_at for e in timeline if e.type in TERMINAL), None)) is not None
            and end >= self.measure_started
        )
        stack_cpu = sum(v for k, v in self.cpu_s.items() if k != LOAD)
        return {
            "mode": self.mode,
            # an ended order's messages on shop.events, and their deliveries
            # to consumers (each handled in one transaction)
            "messages_per_order": round(sum(messages) / len(messages), 2) if messages else None,
            "deliveries_per_order": (
                round(sum(delivered) / len(delivered), 2) if delivered else None
            ),
            "duration_s": round(self.duration_s, 2),
            "checkouts": len(checkouts),
            "accepted": len(answered),
            "completed": completed,
            "completed_per_s": round(completed / self.duration_s, 2) if self.duration_s else 0,
            "outcomes": dict(outcomes),
            "most_in_flight": self.most_in_flight(),
            "errors": dict(errors),
            "checkout_answer_ms": percentiles(answer_times),
            "checkout_to_completed_ms": percentiles(to_completed),
            "steps_ms": {step: percentiles(values) for step, values in sorted(steps.items())},
            "cpu_s": {k: round(v, 2) for k, v in self.cpu_s.items()},
            # a pause here delays what the tap sees, so it shows as latency
            "bench_gc_pauses": {
                "n": len(self.gc_pauses_ms),
                "longest_ms": round(max(self.gc_pauses_ms, default=0.0), 1),
                "total_ms": round(sum(self.gc_pauses_ms), 1),
            },
            "stack_cpu_ms_per_order": (
                round(stack_cpu * 1000 / ended_in_window, 1) if ended_in_window else None
            ),
            # every part's CPU an order, the load's and the machine's too:
            # what an order costs the machine, to set beside a bare journey
            "cpu_ms_per_order": per_unit_ms(
                {**self.cpu_s, MACHINE: self.machine_busy_s}, ended_in_window
            ),
            "machine_busy_share": busy_share(self.machine_busy_s, self.cpu_window_s),
            "rss_mb": {k: round(v, 1) for k, v in self.rss_mb.items()},
            "queues_at_end": self.queues,
            "machine": self.machine,
            "over_time": self.samples,
            "growth": growth(self.samples),
        }


def busy_share(busy_s: float, window_s: float) -> float | None:
    """The share of the machine's CPUs that was busy over ``window_s``."""
    if window_s <= 0:
        return None
    return round(busy_s / (window_s * (os.cpu_count() or 1)), 3)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 1)

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "n": len(ordered)}


# the parts' processes: CPU and memory -----------------------------------------


def _cpu_rss(pid: int, *, children: bool = False) -> tuple[float, float] | None:
    """(CPU seconds, memory MB) of a process, from /proc; with ``children``,
    its CPU includes that of the children it has reaped. Memory is its
    proportional set size (shared pages split among their sharers), so the
    many PostgreSQL backends sharing one buffer pool are not counted N times."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        if children:
            cpu += (int(fields[13]) + int(fields[14])) / ticks
        memory = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 1e6
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    memory = int(line.split()[1]) / 1000
        return cpu, memory
    except (OSError, ValueError, IndexError):
        return None


def process_table(pids: dict[str, list[int]]) -> dict[str, dict[int, tuple[float, float]]]:
    """name -> pid -> (CPU seconds, memory MB). PostgreSQL's CPU includes its
    backends that ended: the postmaster reaps them, and their CPU would
    otherwise leave the table with them (a backend of a connection a pool
    closed under load: until 2026-12-01 most of the stack's PostgreSQL CPU
    went missing that way; docs/performance-journal.md)."""
    found: dict[str, dict[int, tuple[float, float]]] = {}
    for name, group in pids.items():
        for pid in group:
            value = _cpu_rss(pid, children=name == "postgresql")
            if value is not None:
                found.setdefault(name, {})[pid] = value
    return found


MACHINE = "the machine, busy"  # every CPU's busy time, in the per-order figures
OTHERS = "the rest of the machine"  # busy, but in no part of the table


def machine_busy_s(stat: str | None = None) -> float:
    """CPU seconds the machine's CPUs have been busy since boot, from the
    first line of /proc/stat: all but idle, waiting for I/O and stolen by
    the host (time the guest did not run, which a noisy neighbour adds)."""
    if stat is None:
        stat = Path("/proc/stat").read_text()
    fields = [int(v) for v in stat.splitlines()[0].split()[1:]]
    idle, iowait, steal = fields[3], fields[4], fields[7] if len(fields) > 7 else 0
    busy = sum(fields[:8]) - idle - iowait - steal
    return busy / os.sysconf("SC_CLK_TCK")


def cpu_by_part(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far by part (process_table's), and the machine's busy
    seconds under MACHINE: two readings' difference says what a window cost."""
    table = process_table(pids)
    parts = {name: sum(cpu for cpu, _ in group.values()) for name, group in table.items()}
    parts[MACHINE] = machine_busy_s()
    return parts


def per_unit_ms(cpu_s: dict[str, float], units: int) -> dict[str, float]:
    """Each part's CPU in milliseconds a unit (an order, a journey), with
    OTHERS for the machine's busy time no part accounts for."""
    if not units:
        return {}
    figures = {name: 1000 * value / units for name, value in cpu_s.items()}
    if MACHINE in figures:
        rest = figures[MACHINE] - sum(v for k, v in figures.items() if k != MACHINE)
        figures[OTHERS] = max(rest, 0.0)
    return {name: round(value, 2) for name, value in figures.items()}


def infrastructure_pids() -> dict[str, list[int]]:
    """RabbitMQ's and PostgreSQL's processes on this machine, by name: the
    machine's own, not those of containers (their own pid namespaces), which
    come and go with a docker stack and took their CPU out of the sums with
    them (a bench beside the docker runtime's test read -17 ms an order)."""
    groups: dict[str, list[int]] = {"rabbitmq": [], "postgresql": []}
    own_namespace = os.readlink("/proc/self/ns/pid")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            if comm.startswith(("beam", "postgres")) and (
                os.readlink(entry / "ns" / "pid") != own_namespace
            ):
                continue
        except OSError:
            continue
        if comm.startswith("beam"):
            groups["rabbitmq"].append(int(entry.name))
        elif comm.startswith("postgres"):
            groups["postgresql"].append(int(entry.name))
    return groups


# the steps, read back after a flood --------------------------------------------


async def read_steps_back(
    broker_url: str,
    store: TimelineStore,
    orders: set[str],
    since: float,
    *,
    idle_s: float = 1.0,
    limit_s: float = 60.0,
    stream: str | None = None,
) -> tuple[int, float | None]:
    """The steps of ``orders`` a flood's tap left out, read after the run
    from the stream the stack keeps every event in for two minutes (the
    gateway's live stream, ``gateway.saga-events``), from ``since`` (a
    timestamp) on, until nothing more comes for ``idle_s``. A step's time
    is the emitters' clocks (when each event happened), so reading later
    changes nothing of it. Returns the events added and when the first
    event still in the stream happened (None: the stream is not there)."""
    import aio_pika
    from aio_pika.exceptions import ChannelClosed

    from services.gateway.stream import ACK_EVERY, PREFETCH, STREAM_QUEUE

    connection = await aio_pika.connect(
        broker_url, timeout=10, client_properties={"connection_name": "shopctl bench steps"}
    )
    added = 0
    first: float | None = None
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)  # a stream's reader needs credit
        try:
            queue = await channel.declare_queue(stream or STREAM_QUEUE, passive=True)
        except ChannelClosed:
            return 0, None
        arrived = asyncio.Event()
        last: Any = None  # the last message read, not yet acked

        async def on_message(message: Any) -> None:
            nonlocal added, first, last
            arrived.set()
            last = message
            event = parse_event(message.body, message.routing_key or "")
            if event is not None:
                first = event.at if first is None else min(first, event.at)
                if event.correlation_id in orders and event.type not in TERMINAL:
                    store.add(event)
                    added += 1
            if message.delivery_tag % ACK_EVERY == 0:
                await message.ack(multiple=True)
                last = None

        back_s = max(1, int(time.time() - since) + 2)
        tag = await queue.consume(on_message, arguments={"x-stream-offset": f"{back_s}s"})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while loop.time() < deadline:
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), idle_s)
            except TimeoutError:
                break
        await queue.cancel(tag)
        if last is not None:
            with contextlib.suppress(Exception):
                await last.ack(multiple=True)
    finally:
        await connection.close()
    return added, first


# the load ---------------------------------------------------------------------


def _cpu_since(
    before: dict[str, dict[int, tuple[float, float]]],
    after: dict[str, dict[int, tuple[float, float]]],
    window_s: float,
) -> dict[str, float]:
    """Each part's CPU over a window, in CPUs (1.0: one core busy all along);
    a process that was not there at the window's start is counted from its
    first reading on."""
    shares = {}
    for name, group in after.items():
        was = before.get(name, {})
        spent = sum(max(cpu - was[pid][0], 0.0) for pid, (cpu, _) in group.items() if pid in was)
        shares[name] = round(spent / window_s, 3) if window_s > 0 else 0.0
    return shares


async def _sample(
    result: BenchResult,
    pids: Callable[[], dict[str, list[int]]],
    connections: Callable[[], dict[str, int] | None],
    every_s: float,
) -> None:
    """Every ``every_s``: the orders completed since the last sample with
    their p50 and p99, and each part's memory, CPU and database sessions."""
    seen: set[str] = set()
    last = await asyncio.to_thread(process_table, pids())
    last_at = time.monotonic()
    while True:
        await asyncio.sleep(every_s)
        latencies = []
        for checkout in result.measured():
            if not checkout.order or checkout.order in seen:
                continue
            timeline = result.store.get(checkout.order)
            done = (
                next((e for e in timeline if e.type == "OrderCompleted"), None)
                if timeline
                else None
            )
            if done is not None:
                seen.add(checkout.order)
                latencies.append(done.seen_at - checkout.sent)
        table = await asyncio.to_thread(process_table, pids())
        now = time.monotonic()
        cpu, last, last_at = _cpu_since(last, table, now - last_at), table, now
        memory = {name: round(sum(m for _, m in g.values()), 1) for name, g in table.items()}
        sessions = await asyncio.to_thread(connections)
        latency = percentiles(latencies)
        result.samples.append(
            {
                "at_s": round(
                    time.time() - (result.measured()[0].sent if result.measured() else 0), 1
                ),
                "completed": len(latencies),
                "latency_p50_ms": latency.get("p50"),
                "latency_p99_ms": latency.get("p99"),
                "memory_mb": round(sum(memory.values()), 1),
                "memory_mb_by_part": memory,
                "cpu_by_part": cpu,
                "db_connections": None if sessions is None else sum(sessions.values()),
                "db_connections_by_part": sessions,
            }
        )


def growth(samples: list[dict[str, Any]]) -> dict[str, str]:
    """Whether latency, memory and connections grow from the first third of
    the samples to the last (a soak's question, case L4)."""
    if len(samples) < 3:
        return {}
    third = max(len(samples) // 3, 1)
    verdicts = {}
    for key, tolerance in (("latency_p50_ms", 1.25), ("memory_mb", 1.05), ("db_connections", 1.0)):
        first = [s[key] for s in samples[:third] if s.get(key) is not None]
        last = [s[key] for s in samples[-third:] if s.get(key) is not None]
        if not first or not last:
            continue
        a, b = sum(first) / len(first), sum(last) / len(last)
        grows = b > a * tolerance + (1 if key == "db_connections" else 0)
        verdicts[key] = f"{'GROWS' if grows else 'steady'} ({a:.0f} -> {b:.0f})"
    return verdicts


def _ended(result: BenchResult) -> int:
    return sum(1 for t in result.store.timelines.values() if t.outcome)


async def _released(gate: asyncio.Semaphore, work: Any) -> None:
    try:
        await work
    finally:
        gate.release()


class OrderEnds:
    """Waits for orders to end, fed by the tap: a flood's slot is taken from
    the checkout until the order's OrderCompleted or OrderCancelled. One
    future an order, so an event wakes only its own waiter."""

    def __init__(self, store: TimelineStore) -> None:
        self.store = store
        self._waiting: dict[str, asyncio.Future[None]] = {}

    def seen(self, event: object) -> None:
        """The tap's on_event."""
        if isinstance(event, TimelineEvent) and event.type in TERMINAL:
            waiter = self._waiting.pop(event.correlation_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def wait(self, order: str, timeout_s: float) -> bool:
        """True once the order has ended; False when ``timeout_s`` passed first."""
        timeline = self.store.get(order)
        if timeline is not None and timeline.outcome is not None:
            return True
        waiter = self._waiting.setdefault(order, asyncio.get_running_loop().create_future())
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
        except TimeoutError:
            self._waiting.pop(order, None)
            return False
        return True


async def _until_found(client: httpx.AsyncClient, path: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while (await client.get(path)).status_code != 200:
        if time.monotonic() > deadline:
            raise ShopError(f"{path} did not appear in {timeout_s:.0f} s")
        await asyncio.sleep(0.1)


class Bench:
    def __init__(
        self,
        gateway: str,
        broker_url: str,
        admin: tuple[str, str],
        *,
        customers: int,
        skus: int,
        mix: dict[str, int],
        seed: int = 1,
    ) -> None:
        self.gateway = gateway
        self.broker_url = broker_url
        self.admin = admin
        self.customers = customers
        self.skus = skus
        self.mix = mix
        self.random = random.Random(seed)
        self.tokens: list[str] = []
        self.in_stock: list[str] = []
        self.sold_out = ""
        self.carts: dict[str, list[tuple[str, str]]] = {
            k: [] for k in CARDS
        }  # kind -> (token, cart)

    async def prepare(
        self,
        client: httpx.AsyncClient,
        session: aiohttp.ClientSession,
        orders: int,
        progress: Callable[[str], None],
    ) -> None:
        """Customers, products (one sold out) and a cart for every checkout.
        The carts, two requests each and most of the preparation, go through
        ``session`` (aiohttp: a tenth of httpx's CPU a request, CPU the
        stack needs to answer them)."""
        admin = await self._token(client, *self.admin)
        run = uuid.uuid4().hex[:6]
        for index in range(self.skus + 1):
            sku = f"BENCH-{run}-{index}"
            stock = 0 if index == self.skus else 1_000_000
            made = await client.post(
                "/api/products",
                json={
                    "sku": sku,
                    "name": f"Bench item {index}",
                    "description": "",
                    "price_cents": 500 + index,
                    "currency": "EUR",
                    "initial_stock": stock,
                },
                headers={"Authorization": f"Bearer {admin}"},
            )
            if made.status_code != 201:
                raise ShopError(f"could not make a bench product: {made.status_code} {made.text}")
            if stock:
                self.in_stock.append(sku)
            else:
                self.sold_out = sku
        progress(f"{self.skus + 1} products made; registering {self.customers} customers")
        self.tokens = list(
            await asyncio.gather(*(self._customer(client, run, i) for i in range(self.customers)))
        )
        for sku in [*self.in_stock, self.sold_out]:  # inventory learns of them from events
            await _until_found(client, f"/api/inventory/{sku}")
        kinds = self._kinds(orders)
        progress(f"filling {orders} carts")
        gate = asyncio.Semaphore(16)
        customers = itertools.cycle(self.tokens)

        async def fill(kind: str, token: str) -> None:
            async with gate:
                headers = {"Authorization": f"Bearer {token}"}
                async with session.post("/api/carts", headers=headers) as made:
                    body = await made.read()
                    if made.status >= 300:
                        raise ShopError(f"could not make a cart: {made.status} {body[:300]!r}")
                cart = orjson.loads(body)["id"]
                sku = self.sold_out if kind == "out_of_stock" else self.random.choice(self.in_stock)
                async with session.post(
                    f"/api/carts/{cart}/items", json={"sku": sku, "quantity": 1}, headers=headers
                ) as added:
                    body = await added.read()
                    if added.status != 200:
                        raise ShopError(f"could not fill a cart: {added.status} {body[:300]!r}")
                self.carts[kind].append((token, cart))

        filling = time.monotonic()
        await asyncio.gather(*(fill(kind, next(customers)) for kind in kinds))
        progress(f"{orders} carts filled in {time.monotonic() - filling:.1f} s")

    def _kinds(self, orders: int) -> list[str]:
        names = list(self.mix)
        return self.random.choices(names, weights=[self.mix[n] for n in names], k=orders)

    async def _token(self, client: httpx.AsyncClient, email: str, password: str) -> str:
        answer = await patient_post(
            client, "/api/auth/token", {"email": email, "password": password}
        )
        if answer.status_code != 200:
            raise ShopError(f"could not sign in as {email}: {answer.status_code} {answer.text}")
        return str(answer.json()["access_token"])

    async def _customer(self, client: httpx.AsyncClient, run: str, index: int) -> str:
        email, password = f"bench-{run}-{index}@example.com", "bench-password"
        made = await patient_post(
            client, "/api/auth/register", {"email": email, "password": password}
        )
        if made.status_code != 201:
            raise ShopError(f"could not register a customer: {made.status_code} {made.text}")
        return await self._token(client, email, password)

    def next_cart(self) -> tuple[str, str, str] | None:
        kinds = [k for k in self._kinds(1) if self.carts[k]] or [
            k for k in self.carts if self.carts[k]
        ]
        if not kinds:
            return None
        kind = kinds[0]
        token, cart = self.carts[kind].pop()
        return kind, token, cart

    async def checkout(
        self, session: aiohttp.ClientSession, kind: str, token: str, cart: str
    ) -> Checkout:
        done = Checkout(kind, time.time())
        try:
            async with session.post(
                f"/api/carts/{cart}/checkout",
                json={"payment": {"card_token": CARDS[kind]}, "shipping_address": ADDRESS},
                headers={"Authorization": f"Bearer {token}"},
            ) as answer:
                done.status = answer.status
                body = await answer.read()
            if done.status == 202:
                done.order = str(orjson.loads(body)["order_id"])
        except (aiohttp.ClientError, TimeoutError) as exc:
            done.error = type(exc).__name__
        done.answered = time.time()
        return done


async def run_bench(
    gateway: str,
    broker_url: str,
    admin: tuple[str, str],
    *,
    rate: float | None,
    duration_s: float,
    warmup_s: float,
    customers: int,
    skus: int,
    mix: dict[str, int],
    pids: Callable[[], dict[str, list[int]]],
    queue_names: list[str],
    progress: Callable[[str], None],
    in_flight: int = 64,
    grace_s: float = 30.0,
    connections: Callable[[], dict[str, int] | None] = lambda: None,
    sample_s: float = 10.0,
) -> BenchResult:
    """Prepare, warm up, then load for ``duration_s``; follow every order."""
    from shopctl.amqp import queue_states

    flood = rate is None
    planned = int((rate or 60) * (duration_s + warmup_s) * (1.0 if rate else 2.0)) + 10
    bench = Bench(gateway, broker_url, admin, customers=customers, skus=skus, mix=mix)
    limits = httpx.Limits(max_connections=in_flight * 2, max_keepalive_connections=128)
    result = BenchResult(
        f"flood, {in_flight} orders in flight" if flood else f"paced {rate:g}/s", duration_s
    )
    loop_kind = type(asyncio.get_running_loop()).__module__.split(".")[0]
    result.machine = f"{os.uname().nodename}, {os.cpu_count()} CPUs, {loop_kind} loop"
    # The load itself goes through aiohttp: httpx's pool cost this process
    # 1.7 ms of CPU a request at 64 in flight, CPU the stack then lacked.
    loader = aiohttp.ClientSession(
        base_url=gateway,
        connector=aiohttp.TCPConnector(limit=in_flight * 2),
        timeout=aiohttp.ClientTimeout(total=30),
    )

    def measured() -> dict[str, list[int]]:
        # this process's own CPU is shown too: it shares the machine with the stack
        return {**pids(), LOAD: [os.getpid()]}

    gc_started: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started.append(time.perf_counter())
        elif gc_started:
            pause = (time.perf_counter() - gc_started.pop()) * 1000
            if result.measure_started:
                result.gc_pauses_ms.append(pause)

    gc.callbacks.append(on_gc)
    ends = OrderEnds(result.store)
    try:
        async with (
            httpx.AsyncClient(base_url=gateway, timeout=30, limits=limits) as client,
            loader,
            Tap(
                broker_url,
                store=result.store,
                on_event=ends.seen,
                routing_keys=TERMINAL_KEYS if flood else ("#",),
            ),
        ):
            await bench.prepare(client, loader, planned, progress)
            tasks: list[asyncio.Task[None]] = []
            loop = asyncio.get_running_loop()

            async def fire(phase: str) -> None:
                ammo = bench.next_cart()
                if ammo is None:
                    return
                kind, token, cart = ammo
                done = await bench.checkout(loader, kind, token, cart)
                if phase == "warmup":
                    done.kind = "warmup"
                result.checkouts.append(done)
                if flood and done.order:
                    # the slot stays taken until the order is over (or given up on)
                    await ends.wait(done.order, grace_s)

            gate = asyncio.Semaphore(in_flight)  # the flood's slots, across both phases
            load_started = time.time()
            for phase, length in (("warmup", warmup_s), ("measure", duration_s)):
                if length <= 0:
                    continue
                if phase == "measure":
                    result.measure_started = time.time()
                    before = process_table(measured())
                    busy_before, counted_from = machine_busy_s(), time.monotonic()
                    sampler = asyncio.create_task(_sample(result, pids, connections, sample_s))
                started = loop.time()
                end = started + length
                sent = 0
                last_note = started
                if flood:
                    while (now := loop.time()) < end:
                        await gate.acquire()  # at most in_flight orders not yet over
                        tasks.append(asyncio.create_task(_released(gate, fire(phase))))
                        sent += 1
                        if now - last_note > 1:
                            last_note = now
                            progress(f"{phase}: {sent} sent, {_ended(result)} ended")
                else:
                    assert rate is not None
                    while (now := loop.time()) < end:
                        due = int((now - started) * rate)
                        while sent < due:
                            tasks.append(asyncio.create_task(fire(phase)))
                            sent += 1
                        await asyncio.sleep(min(0.005, 1 / rate))
                        if now - last_note > 1:
                            last_note = now
                            progress(f"{phase}: {sent} sent, {_ended(result)} ended")
                if phase == "measure":
                    result.duration_s = loop.time() - started
                    sampler.cancel()
            await asyncio.gather(*tasks)
            progress("following the last orders to their end")
            deadline = loop.time() + grace_s
            while loop.time() < deadline:
                pending = [
                    c
                    for c in result.checkouts
                    if (
                        c.order
                        and (t := result.store.get(c.order)) is not None
                        and t.outcome is None
                    )
                    or (c.order and result.store.get(c.order) is None)
                ]
                if not pending:
                    break
                await asyncio.sleep(0.2)
            after = process_table(measured())
            result.machine_busy_s = machine_busy_s() - busy_before
            result.cpu_window_s = time.monotonic() - counted_from
            for name, processes in after.items():
                earlier = before.get(name, {})
                # CPU of the processes that ran the whole measure (a new one from 0)
                result.cpu_s[name] = sum(
                    cpu - earlier.get(pid, (0.0, 0.0))[0] for pid, (cpu, _) in processes.items()
                )
                result.rss_mb[name] = sum(memory for _, memory in processes.values())
            states = await queue_states(broker_url, queue_names)
            result.queues = {q: s[0] for q, s in states.items() if s is not None and s[0]}
            if flood:  # after the CPU was counted: this reading is not the stack's work
                progress("reading the orders' steps back from gateway.saga-events")
                orders = {c.order for c in result.checkouts if c.order}
                added, first = await read_steps_back(broker_url, result.store, orders, load_started)
                progress(f"{added} steps read back")
                if first is None:
                    progress("no gateway.saga-events stream: the steps are not measured")
                elif first > load_started + 1:
                    progress(
                        f"the stream held the last {time.time() - first:.0f} s only: "
                        "the steps of earlier orders are not measured"
                    )
    finally:
        gc.callbacks.remove(on_gc)
    return result
