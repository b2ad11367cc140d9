"""`shopctl logs` reads the services' JSON lines for people, keeps their
fields for --order and --json, and still reads plain lines (PostgreSQL's,
RabbitMQ's, a traceback's)."""

from __future__ import annotations

import json

from shopctl.runtimes.docker import _strip_docker_stamp
from shopctl.runtimes.logs import interleave, parse

LINE = {
    "time": "2026-12-04T19:24:26.439+00:00",
    "level": "ERROR",
    "part": "order",
    "logger": "services.common.consumer",
    "message": "order.cart.checked_out: boom",
    "trace_id": "afac50081cbfd0fd35dc0a05439f9d17",
    "order": "1172253f-e420-451a-9532-08c6927ce9f4",
    "exc_info": "Traceback (most recent call last):\nValueError: boom",
}


def test_a_json_line_reads_as_words_with_its_fields_kept() -> None:
    lines = parse("order", [json.dumps(LINE) + "\n"])
    assert [line.text for line in lines] == [
        "ERROR services.common.consumer: order.cart.checked_out: boom",
        "Traceback (most recent call last):",
        "ValueError: boom",
    ]
    assert {line.timestamp for line in lines} == {"2026-12-04T19:24:26.439"}
    assert all(line.order == LINE["order"] for line in lines)
    assert lines[0].as_json() == LINE


def test_plain_lines_still_read_and_sort_among_json_ones() -> None:
    plain = parse("postgres", ["2026-12-04 19:24:26.400 UTC [12] LOG:  checkpoint\n", "  detail\n"])
    assert plain[1].timestamp == plain[0].timestamp and plain[1].order is None
    assert plain[0].as_json() == {
        "time": "2026-12-04T19:24:26.400",
        "part": "postgres",
        "message": "UTC [12] LOG:  checkpoint",
    }
    merged = interleave({"postgres": plain, "order": parse("order", [json.dumps(LINE)])})
    assert [line.part for line in merged][:2] == ["postgres", "postgres"]
    assert parse("x", ["{not json at all\n"])[0].text == "{not json at all"


def test_docker_keeps_a_json_lines_own_time() -> None:
    raw = f"2026-12-04T19:24:27.000000001Z {json.dumps(LINE)}\n".encode()
    [line] = parse("order", _strip_docker_stamp(raw))[:1]
    assert line.timestamp == "2026-12-04T19:24:26.439" and line.order == LINE["order"]
