"""Users' corrections of verdicts: one answer per user per picture, the raw material of ``bot harvest``.

What is kept: the user's and the chat's ids, the picture's Telegram ``file_id`` and ``file_unique_id``, the model's
p_fake and verdict at the time, the answer (``FAKE``: made by AI, ``REAL``: made by a person) and when it was given.
Never the picture itself: harvest downloads it from Telegram later, and only while Telegram still has it.

A user's second answer on the same picture (same ``file_unique_id``) replaces the first. ``FeedbackStore`` keeps the
answers in SQLite (``DATA_DIR/feedback.sqlite3``); ``bot.redis_state.RedisFeedbackStore`` in Redis for replicas.
"""

from __future__ import annotations

import csv
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Literal

from bot.storage import SQLiteDatabase

Answer = Literal["FAKE", "REAL"]
ANSWERS = ("FAKE", "REAL")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    file_unique_id TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    chat_id INTEGER NOT NULL,
    file_id TEXT NOT NULL,
    answer TEXT NOT NULL CHECK (answer IN ('FAKE', 'REAL')),
    verdict TEXT NOT NULL CHECK (verdict IN ('FAKE', 'REAL', 'UNSURE')),
    p_fake REAL NOT NULL,
    answered_at REAL NOT NULL,  -- unix time
    PRIMARY KEY (file_unique_id, user_id)
);
"""


@dataclass(frozen=True)
class FeedbackRecord:
    """One user's answer about one picture; the fields are the columns of the export, in order."""

    file_unique_id: str
    user_id: int
    chat_id: int
    file_id: str
    answer: Answer
    verdict: str
    p_fake: float
    answered_at: float


EXPORT_COLUMNS = tuple(field.name for field in fields(FeedbackRecord))


def checked(answer: str, verdict: str, p_fake: float) -> float:
    """Validate an answer's fields (for every store); returns p_fake as a float.

    Raises:
        ValueError: an unknown answer or verdict, or p_fake outside [0, 1].
    """
    if answer not in ANSWERS:
        raise ValueError(f"answer must be one of {ANSWERS}, got {answer!r}")
    if verdict not in ("FAKE", "REAL", "UNSURE"):
        raise ValueError(f"verdict must be FAKE, REAL or UNSURE, got {verdict!r}")
    p_fake = float(p_fake)
    if not 0.0 <= p_fake <= 1.0:
        raise ValueError(f"p_fake must be a probability in [0, 1], got {p_fake}")
    return p_fake


@dataclass(frozen=True)
class FeedbackSummary:
    """What /stats shows: how many answers, and how often users contradicted a confident verdict."""

    count: int
    confident: dict[str, tuple[int, int]]  # verdict (FAKE or REAL) -> (answers about it, answers saying otherwise)


def summarize(records: Iterable[FeedbackRecord]) -> FeedbackSummary:
    count, confident = 0, {"FAKE": [0, 0], "REAL": [0, 0]}
    for record in records:
        count += 1
        if record.verdict in confident:
            confident[record.verdict][0] += 1
            confident[record.verdict][1] += record.answer != record.verdict
    return FeedbackSummary(count, {verdict: (n, against) for verdict, (n, against) in confident.items()})


def write_csv(records: Iterable[FeedbackRecord], path: Path) -> int:
    """Write the answers as CSV (``EXPORT_COLUMNS``, oldest first); returns how many rows were written."""
    rows = sorted(records, key=lambda record: (record.answered_at, record.file_unique_id, record.user_id))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(EXPORT_COLUMNS)
        for record in rows:
            writer.writerow([repr(value) if isinstance(value, float) else value for value in astuple(record)])
    return len(rows)


class FeedbackStore:
    """Answers in SQLite. Threading follows :mod:`bot.storage`.

    Args:
        path: The SQLite file; its parent folders are created.
        clock: Source of unix time for ``answered_at``; tests replace it.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._db = SQLiteDatabase(path, _SCHEMA)
        self._clock = clock

    async def record(
        self,
        *,
        user_id: int,
        chat_id: int,
        file_id: str,
        file_unique_id: str,
        p_fake: float,
        verdict: str,
        answer: str,
    ) -> bool:
        """Store the user's answer about the picture, replacing an earlier one; returns whether it replaced one.

        Raises:
            ValueError: see :func:`checked`.
        """
        p_fake = checked(answer, verdict, p_fake)
        row = (file_unique_id, user_id, chat_id, file_id, answer, verdict, p_fake, self._clock())

        def body(conn: sqlite3.Connection) -> bool:
            known = conn.execute(
                "SELECT 1 FROM feedback WHERE file_unique_id = ? AND user_id = ?", (file_unique_id, user_id)
            ).fetchone()
            columns = ", ".join(EXPORT_COLUMNS)
            conn.execute(f"INSERT OR REPLACE INTO feedback ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            return known is not None

        return await self._db.run(body, write=True)

    async def all(self) -> list[FeedbackRecord]:
        """Every answer, oldest first."""
        rows = await self._db.run(
            lambda conn: conn.execute(
                f"SELECT {', '.join(EXPORT_COLUMNS)} FROM feedback ORDER BY answered_at, file_unique_id, user_id"
            ).fetchall(),
            write=False,
        )
        return [FeedbackRecord(*row) for row in rows]

    async def summary(self) -> FeedbackSummary:
        return summarize(await self.all())

    def close(self) -> None:
        self._db.close()
