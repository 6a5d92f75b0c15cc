"""The models' side of the bot: judge and explain pictures off the event loop, a bounded number at a time.

The detector and the explainer are built once at start-up and reach the
handlers through the Dispatcher. Their work is synchronous TensorFlow code: it
runs in a small thread pool, so one user's big picture never freezes the
loop, and a bounded count of waiting pictures turns overload into a polite
"busy" answer instead of a queue that grows without limit.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

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

    def __init__(self, detector: Detector, explainer: Explainer, workers: int = 1, queue_limit: int = 64) -> None:
        """Wrap a loaded detector and explainer.

        Args:
            detector: the ensemble.
            explainer: the "Why?" explainer built on the same detector.
            workers: threads running model work; on 2 cores one is best (TensorFlow already uses both).
            queue_limit: pictures allowed to wait or run at once; more get ``Busy``.
        """
        self.detector = detector
        self.explainer = explainer
        self.queue_limit = queue_limit
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="analysis")
        self._pending = 0

    @classmethod
    def load(cls, weights_dir, workers: int = 1, queue_limit: int = 64) -> Analyst:
        """Load the shipped ensemble, build the explainer, and run both once so the first user does not wait."""
        detector = Detector.from_dir(weights_dir)
        explainer = Explainer(detector, image_format="jpeg")  # Telegram re-encodes photos as JPEG anyway
        analyst = cls(detector, explainer, workers, queue_limit)
        analyst.warm_up()
        return analyst

    def warm_up(self) -> None:
        """Trace the compiled functions on a small picture."""
        import io

        from PIL import Image

        buffer = io.BytesIO()
        Image.new("RGB", (320, 240), (120, 130, 140)).save(buffer, "JPEG")
        self._explain(buffer.getvalue())

    @property
    def pending(self) -> int:
        """Pictures waiting or being analysed now."""
        return self._pending

    def _check(self, data: bytes) -> Checked:
        picture = open_image(data)
        return Checked(self.detector.judge(picture), read_evidence(data), picture.width, picture.height)

    def _explain(self, data: bytes) -> Explanation:
        return self.explainer.explain(data)

    async def _run(self, function, data: bytes):
        if self._pending >= self.queue_limit:
            raise Busy(f"{self._pending} pictures are waiting")
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, function, data)
        finally:
            self._pending -= 1

    async def check(self, data: bytes) -> Checked:
        """Judge an encoded picture.

        Raises:
            Busy: the queue is full.
            ImageRejected: not a picture that can be judged (a one-line reason).
        """
        return await self._run(self._check, data)

    async def explain(self, data: bytes) -> Explanation:
        """The "Why?" answer for an encoded picture: overlay JPEG, verdict and evidence.

        Raises:
            Busy: the queue is full.
            ImageRejected: not a picture that can be judged.
        """
        return await self._run(self._explain, data)

    def close(self) -> None:
        """Stop the pool; work already running finishes."""
        self._executor.shutdown(wait=True, cancel_futures=True)
