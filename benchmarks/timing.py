"""Small timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time

import numpy as np


def timed(function, repeats: int) -> list[float]:
    """Milliseconds of ``repeats`` sequential calls."""
    latencies = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def percentiles(milliseconds: list[float]) -> dict[str, float]:
    return {"p50": float(np.percentile(milliseconds, 50)), "p95": float(np.percentile(milliseconds, 95))}


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Median, min and max over runs of each percentile."""
    return {key: spread([run[key] for run in runs]) for key in ("p50", "p95")}


def memory_mib(pid: int | str = "self") -> dict[str, float]:
    """Peak (VmHWM) and current (VmRSS) resident memory of a process, in MiB (Linux)."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0]) / 1024
    return values
