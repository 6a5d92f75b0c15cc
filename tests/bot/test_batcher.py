"""Micro-batching: concurrent pictures share a batch, each gets its own result, failures stay in their batch."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.batcher import MicroBatcher


@pytest.fixture
def executor():
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


def doubling(calls: list[list[int]], delay: float = 0.0):
    def run(items: list[int]) -> list[int]:
        calls.append(list(items))
        time.sleep(delay)
        return [2 * item for item in items]

    return run


async def test_concurrent_items_share_a_batch_and_keep_their_own_results(executor):
    calls: list[list[int]] = []
    batcher = MicroBatcher(doubling(calls), executor, max_batch=8, max_wait_seconds=0.01)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(5)))
    assert results == [0, 2, 4, 6, 8]
    assert calls == [[0, 1, 2, 3, 4]]


async def test_batches_never_exceed_the_limit_and_fill_while_one_runs(executor):
    calls: list[list[int]] = []
    batcher = MicroBatcher(doubling(calls, delay=0.05), executor, max_batch=4, max_wait_seconds=0.001)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    assert results == [2 * i for i in range(10)]
    assert max(len(call) for call in calls) <= 4
    assert sorted(item for call in calls for item in call) == list(range(10))
    assert len(calls) == 3


async def test_a_lone_item_is_not_kept_waiting(executor):
    batcher = MicroBatcher(doubling([]), executor, max_batch=8, max_wait_seconds=0.004)
    started = time.perf_counter()
    assert await batcher.submit(21) == 42
    assert time.perf_counter() - started < 0.5


async def test_a_failing_batch_fails_its_callers_only(executor):
    def run(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky batch")
        return items

    batcher = MicroBatcher(run, executor, max_batch=2, max_wait_seconds=0.01)
    outcomes = await asyncio.gather(*(batcher.submit(i) for i in (1, 13, 5, 6)), return_exceptions=True)
    assert isinstance(outcomes[0], ValueError) and isinstance(outcomes[1], ValueError)
    assert outcomes[2:] == [5, 6]
    assert await batcher.submit(7) == 7, "the batcher keeps working after a failure"


async def test_batches_run_in_the_given_executor_not_the_event_loop(executor):
    threads: set[str] = set()

    def run(items):
        threads.add(threading.current_thread().name)
        return items

    batcher = MicroBatcher(run, executor, max_batch=2)
    await asyncio.gather(*(batcher.submit(i) for i in range(4)))
    assert threading.main_thread().name not in threads


async def test_the_analyst_batches_concurrent_checks_and_matches_one_at_a_time(analyst_parts):
    from bot.analysis import Analyst
    from tests.bot.helpers import jpeg

    pictures = [jpeg(200 + 20 * i, 150, seed=i) for i in range(6)]
    alone = Analyst(*analyst_parts, max_batch=1)
    batched = Analyst(*analyst_parts, max_batch=8)
    try:
        one_by_one = [await alone.check(picture) for picture in pictures]
        together = await asyncio.gather(*(batched.check(picture) for picture in pictures))
        assert max(batched.batcher.batch_sizes) > 1, "concurrent checks were batched"
        for single, grouped in zip(one_by_one, together):
            assert grouped.judgement.p_fake == pytest.approx(single.judgement.p_fake, abs=1e-5)
            assert grouped.judgement.verdict == single.judgement.verdict
            assert (grouped.width, grouped.height) == (single.width, single.height)
    finally:
        alone.close()
        batched.close()


@pytest.mark.parametrize("max_batch", [1, 4])
async def test_a_burst_waits_as_bytes_and_only_two_batches_of_pictures_are_decoded_at_once(analyst_parts, max_batch):
    from bot.analysis import Analyst
    from tests.bot.helpers import jpeg

    analyst = Analyst(*analyst_parts, max_batch=max_batch)
    alive, most, counting = 0, 0, threading.Lock()  # decoded pictures not yet through the models
    decode, run_batch = analyst._decode, analyst.batcher.run_batch

    def counted_decode(data):
        nonlocal alive, most
        decoded = decode(data)
        with counting:
            alive += 1
            most = max(most, alive)
        return decoded

    def slow_run(pictures):
        nonlocal alive
        time.sleep(0.02)  # the models are the slow part, as in the bot
        results = run_batch(pictures)
        with counting:
            alive -= len(pictures)
        return results

    analyst._decode, analyst.batcher.run_batch = counted_decode, slow_run
    try:
        pictures = [jpeg(120 + 8 * i, 90, seed=i) for i in range(20)]
        checked = await asyncio.gather(*(analyst.check(picture) for picture in pictures))
        assert [c.width for c in checked] == [120 + 8 * i for i in range(20)]  # each its own answer
        assert most == analyst.decoded_limit == 2 * max_batch
    finally:
        analyst.close()
