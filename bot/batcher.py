"""Micro-batching: pictures that arrive together go through the ensemble in one batch.

On 2 CPU cores the ensemble costs about 82 ms a picture one at a time and about
49 ms a picture in batches of 8 (``python -m benchmarks``), so under load a
batch answers more people per second. A lone picture does not wait for company
longer than ``max_wait_seconds``; while one batch runs, the next one fills up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    """Collects ``submit``ted items and runs ``run_batch`` on up to ``max_batch`` of them at a time.

    Args:
        run_batch: a blocking function from a list of items to a sequence of results, in the same order;
            it runs in ``executor``. If it raises, every item of that batch gets the exception.
        executor: where ``run_batch`` runs (one thread: batches run one after another).
        max_batch: the most items in one call.
        max_wait_seconds: how long the first item of a batch waits for others.
    """

    def __init__(
        self,
        run_batch: Callable[[list[Item]], Sequence[Result]],
        executor: Executor,
        max_batch: int = 8,
        max_wait_seconds: float = 0.004,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.run_batch = run_batch
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait_seconds = max_wait_seconds
        self._waiting: list[tuple[Item, asyncio.Future]] = []
        self._worker: asyncio.Task | None = None
        self.batch_sizes: list[int] = []  # for benchmarks and tests; bounded below

    async def submit(self, item: Item) -> Result:
        """The result for ``item``, computed in a batch with whatever else is waiting."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work())
        return await future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            if len(self._waiting) < self.max_batch and self.max_wait_seconds > 0:
                await asyncio.sleep(self.max_wait_seconds)
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
            batch = [(item, future) for item, future in batch if not future.cancelled()]
            if not batch:
                continue
            self.batch_sizes = [*self.batch_sizes[-999:], len(batch)]
            try:
                results = await loop.run_in_executor(self.executor, self.run_batch, [item for item, _ in batch])
            except Exception as error:  # every caller of this batch learns what went wrong
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)
