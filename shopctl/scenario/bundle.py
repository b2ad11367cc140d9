"""What a failed scenario leaves behind, so CI's failure can be read without
running it again: the failure, the journal, each order's timeline and raw
events, its outbox rows, every log line that names one of its orders, and
the dead letters."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson

from shopctl.observe.deadletters import DeadLetter, depths, run, show
from shopctl.observe.outboxes import OutboxRow, outbox_rows
from shopctl.observe.timeline import render_timeline
from shopctl.runtimes.base import Runtime
from shopctl.runtimes.logs import LogLine
from shopctl.scenario.runner import Result


def write_bundle(
    result: Result,
    directory: Path,
    log_lines: Iterable[LogLine],
    dead_letters: list[DeadLetter],
    outboxes: dict[str, tuple[list[OutboxRow], list[str]]],
) -> Path:
    """Write the bundle of ``result`` under ``directory``; returns its folder."""
    folder = directory / result.scenario.path.stem
    (folder / "orders").mkdir(parents=True, exist_ok=True)
    (folder / "failure.txt").write_text(f"{result.scenario.name}\n\n{result.failure}\n")
    (folder / "journal.txt").write_text(
        "".join(
            f"{e.at:8.3f} s  {e.step}: {e.outcome} ({e.seconds:.3f} s)\n" for e in result.journal
        )
    )
    for order, timeline in result.orders.items():
        events = "".join(
            orjson.dumps(
                {
                    "id": e.id,
                    "type": e.type,
                    "source": e.source,
                    "time": e.time.isoformat() if e.time else None,
                    "causationid": e.causation_id,
                    "deliveries": e.deliveries,
                    "data": e.data,
                }
            ).decode()
            + "\n"
            for e in timeline
        )
        (folder / "orders" / f"{order}.txt").write_text(
            f"order {order}: {timeline.outcome or 'not over'}\n{render_timeline(timeline)}\n"
        )
        (folder / "orders" / f"{order}.jsonl").write_text(events)
        rows, problems = outboxes.get(order, ([], []))
        (folder / "orders" / f"{order}.outbox.txt").write_text(
            "".join(
                f"{r.created_at}  {r.part:<9} {r.event_type:<24} "
                + (f"published {r.published_at}" if r.published_at else "NOT PUBLISHED")
                + f"  attempts {r.attempts}"
                + (f"  last error: {r.last_error}" if r.last_error else "")
                + "\n"
                for r in rows
            )
            + "".join(f"(not read: {p})\n" for p in problems)
            or "no outbox row\n"
        )
    orders = list(result.orders)
    with (folder / "logs.txt").open("w") as out:
        for line in log_lines:
            if any(order in line.text for order in orders):
                out.write(f"{line.timestamp} {line.part:<9} {line.text}\n")
    (folder / "dead-letters.txt").write_text(
        "".join(
            f"{d.queue}: {d.type or '?'} {d.message_id or ''} from {d.origin}: {d.reason} "
            f"({d.attempts} attempts) {d.error}\n  {d.body[:500].decode(errors='replace')}\n"
            for d in dead_letters
        )
        or "none\n"
    )
    return folder


def write_failure_bundle(result: Result, directory: Path, chosen: Runtime) -> Path:
    """The failed scenario's bundle: its timelines, journal, outbox rows,
    log lines, dead letters."""
    url = chosen.broker_url()
    waiting = [q for q, n in run(depths(url)).items() if n]
    letters = [letter for queue in waiting for letter in run(show(url, queue, 10))]
    outboxes = {order: outbox_rows(chosen, order) for order in result.orders}
    return write_bundle(result, directory, chosen.logs([], follow=False), letters, outboxes)
