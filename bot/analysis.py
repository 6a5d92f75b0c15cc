"""The models' side of the bot: judge and explain pictures off the event loop, a bounded number at a time.

The detector and the explainer are built once at start-up and reach the
handlers through the Dispatcher. Their work is synchronous code: decoding runs
in a small thread pool, the models in one thread of their own (TensorFlow
already uses every core), so one user's big picture never freezes the loop.
Pictures waiting for the models at the same moment go through in one batch
(``bot.batcher``), and a bounded count of waiting pictures turns overload into
a polite "busy" answer instead of a queue that grows without limit. Waiting
pictures stay encoded: at most two batches' worth are decoded at once.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bot.batcher import MicroBatcher
from ensemble.detector import Detector, Judgement
from ensemble.preprocess import ImageRejected, open_image
from explain.explainer import Explainer, Explanation
from explain.metadata import Evidence, read_evidence

log = logging.getLogger(__name__)

__all__ = ["Analyst", "Busy", "Checked", "ImageRejected"]


class Busy(Exception):
    """Too many pictures are waiting; the user should try again in a minute."""


@dataclass(frozen=True)
class Checked:
    """One picture's verdict and what its metadata says."""

    judgement: Judgement
    evidence: Evidence
    width: int
    height: int


class Analyst:
    """Runs the ensemble and the explainer in a bounded thread pool."""

    def __init__(
        self,
        detector: Detector,
        explainer: Explainer,
        workers: int = 1,
        queue_limit: int = 64,
        max_batch: int | None = None,
    ) -> None:
        """Wrap a loaded detector and explainer.

        Args:
            detector: the ensemble.
            explainer: the "Why?" explainer built on the same detector.
            workers: threads decoding pictures and reading their metadata.
            queue_limit: pictures allowed to wait or run at once; more get ``Busy``.
            max_batch: the most pictures judged in one batch (1: no batching). None: 8 on TensorFlow,
                1 on ONNX Runtime, where batches were no faster and cost memory (``python -m benchmarks``).
        """
        self.detector = detector
        self.explainer = explainer
        self.queue_limit = queue_limit
        self._decoding = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
        self._models = ThreadPoolExecutor(max_workers=1, thread_name_prefix="models")
        if max_batch is None:
            max_batch = 1 if detector.backend == "onnx" else 8
        self.batcher = MicroBatcher(self.detector.member_logits, self._models, max_batch=max_batch)
        self._pending = 0
        # Decoded pictures alive at once: one batch running and the next one filling. A burst of photos waits as
        # the bytes Telegram sent (some hundred KB each), not as decoded pixels (3.7 MB for 1280x960): with 40
        # photos at once the bot's peak memory fell from 697-705 MiB to 524 (docs/speed.md, "The Lite2 whole-picture
        # member"), as fast within the machine's noise.
        self.decoded_limit = 2 * max_batch
        self._decoded = asyncio.Semaphore(self.decoded_limit)

    @classmethod
    def load(cls, weights_dir, workers: int = 1, queue_limit: int = 64, max_batch: int = 8, onnx_dir=None) -> Analyst:
        """Load the shipped ensemble, build the explainer, and run both once so the first user does not wait.

        With ``onnx_dir`` the verdict runs on ONNX Runtime where it was checked (``ensemble.onnx_runtime``).
        """
        detector = Detector.from_dir(weights_dir, onnx_dir=onnx_dir)
        explainer = Explainer(detector, image_format="jpeg")  # Telegram re-encodes photos as JPEG anyway
        analyst = cls(detector, explainer, workers, queue_limit, max_batch)
        analyst.warm_up()
        return analyst

    def warm_up(self) -> None:
        """Trace the compiled functions on a small picture."""
        import io

        from PIL import Image

        buffer = io.BytesIO()
        Image.new("RGB", (320, 240), (120, 130, 140)).save(buffer, "JPEG")
        self._explain(buffer.getvalue())
        picture = open_image(buffer.getvalue())
        for size in sorted({1, 2, 4, self.batcher.max_batch}):  # every batch shape traced before users come
            if size <= self.batcher.max_batch:
                self.detector.member_logits([picture] * size)

    @property
    def pending(self) -> int:
        """Pictures waiting or being analysed now."""
        return self._pending

    def _decode(self, data: bytes):
        return open_image(data), read_evidence(data)

    def _explain(self, data: bytes) -> Explanation:
        return self.explainer.explain(data)

    def _admit(self) -> None:
        if self._pending >= self.queue_limit:
            raise Busy(f"{self._pending} pictures are waiting")
        self._pending += 1

    async def check(self, data: bytes) -> Checked:
        """Judge an encoded picture (in a batch with any others waiting).

        Raises:
            Busy: the queue is full.
            ImageRejected: not a picture that can be judged (a one-line reason).
        """
        self._admit()
        try:
            async with self._decoded:
                loop = asyncio.get_running_loop()
                picture, evidence = await loop.run_in_executor(self._decoding, self._decode, data)
                logits = await self.batcher.submit(picture)
                width, height = picture.size
                del picture  # the pixels go before the next picture is decoded
            return Checked(self.detector.judgement(logits), evidence, width, height)
        finally:
            self._pending -= 1

    async def explain(self, data: bytes) -> Explanation:
        """The "Why?" answer for an encoded picture: overlay JPEG, verdict and evidence.

        Raises:
            Busy: the queue is full.
            ImageRejected: not a picture that can be judged.
        """
        self._admit()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._models, self._explain, data)
        finally:
            self._pending -= 1

    def close(self) -> None:
        """Stop the pools; work already running finishes."""
        self._decoding.shutdown(wait=True, cancel_futures=True)
        self._models.shutdown(wait=True, cancel_futures=True)
