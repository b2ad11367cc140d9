"""The kinds of message-level fault, apart from the machinery that injects
them (services/common/faults.py), so that naming them (the CLI's help, the
TUI) imports no broker client."""

from __future__ import annotations

from typing import Literal, get_args

FaultKind = Literal[
    "delay", "fail", "crash", "lose_ack", "duplicate", "drop", "hold", "publish_twice"
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)  # the one list: CLI, TUI, fuzzer, schema test
