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


def summarise(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Median, min and max over runs of each percentile."""
    return {
        key: {
            "median": statistics.median(run[key] for run in runs),
            "min": min(run[key] for run in runs),
            "max": max(run[key] for run in runs),
        }
        for key in ("p50", "p95")
    }
