"""bench/cpu_sampler.py counts stacks only while the process spends CPU."""

from __future__ import annotations

import time
from pathlib import Path

from bench.cpu_sampler import CpuSampler


def _spin(seconds: float) -> int:
    end = time.process_time() + seconds
    n = 0
    while time.process_time() < end:
        n += 1
    return n


def test_samples_land_where_the_cpu_goes_and_not_while_asleep(tmp_path: Path) -> None:
    sampler = CpuSampler()
    sampler.start()
    try:
        _spin(0.4)
        spun = sum(sampler.stacks.values())
        time.sleep(0.4)  # no CPU spent: the profiling timer does not run
        slept = sum(sampler.stacks.values()) - spun
    finally:
        sampler.stop()
    assert spun >= 10  # the kernel's tick, 100 to 1000 a second
    assert slept <= 1
    spinning = sum(n for stack, n in sampler.stacks.items() if "_spin (tests/unit/" in stack)
    assert spinning >= 0.8 * spun
    out = tmp_path / "core.raw"
    assert sampler.write(out) == sum(sampler.stacks.values())
    line = out.read_text().splitlines()[0]
    stack, _, count = line.rpartition(" ")
    assert count.isdigit() and "test_samples_land_where_the_cpu_goes" in stack
