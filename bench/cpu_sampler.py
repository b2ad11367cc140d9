"""An on-CPU sampler for the process it runs in: collapsed stacks for
bench/flamegraph.py ("frame;frame;frame count" a line).

py-spy on this machine counts a thread that was preempted but could run
as busy in the frame it stopped in, most often a ``send`` that woke
another process (docs/performance-journal.md), and cProfile's per-call cost
inflates call-heavy code. This samples the Python stack from
``ITIMER_PROF``, whose signal the kernel sends only as the process spends
CPU (user and system): a sample lands where the CPU went, C calls counted
in the Python frame that made them. The kernel delivers it at its timer
tick (250 a second here), whatever interval is asked for.

    sampler = CpuSampler()
    sampler.start()
    ...
    sampler.stop()
    sampler.write(Path("core.raw"))
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from types import FrameType

_ROOT = f"{Path(__file__).resolve().parents[1]}/"


def _where(filename: str) -> str:
    """A frame's file, short: from the package on for installed code."""
    at = filename.find("site-packages/")
    if at >= 0:
        return filename[at + len("site-packages/") :]
    at = filename.find("/lib/python3.")
    if at >= 0:  # the standard library: lib/python3.11/asyncio/... -> asyncio/...
        return filename[at + len("/lib/python3.") :].split("/", 1)[-1]
    if filename.startswith(_ROOT):  # the project's own: services/common/db.py
        return filename[len(_ROOT) :]
    return filename


class CpuSampler:
    """Counts the main thread's Python stack at each ``SIGPROF``."""

    def __init__(self) -> None:
        self.stacks: Counter[str] = Counter()

    def _sample(self, _signum: int, frame: FrameType | None) -> None:
        names = []
        while frame is not None:
            code = frame.f_code
            names.append(f"{code.co_name} ({_where(code.co_filename)}:{code.co_firstlineno})")
            frame = frame.f_back
        self.stacks[";".join(reversed(names))] += 1

    def start(self, interval_s: float = 0.001) -> None:
        signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, interval_s, interval_s)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_DFL)

    def write(self, path: Path) -> int:
        """Write the collapsed stacks; returns the number of samples."""
        path.write_text("".join(f"{stack} {n}\n" for stack, n in self.stacks.items()))
        return sum(self.stacks.values())
