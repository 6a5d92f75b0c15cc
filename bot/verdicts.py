"""A persistent record of every verdict, so "Why?" still works after a restart.

The record holds what is needed to fetch the picture again from Telegram (its ``file_id``) and to explain the
verdict, never the image bytes. Records are keyed by chat: callback data comes from the client and can be
forged, so every lookup is by (chat id, verdict id), the chat taken from the update (which Telegram fills in),
never from callback data. In a private chat the chat id is the user's id, so a record there belongs to that user
alone; in a group every member of the chat may open its verdicts, and nobody from another chat can.

Storage: ``VerdictStore`` keeps its own ``verdicts`` table. The intended layout is its own file next to the FSM
storage (e.g. ``DATA_DIR/verdicts.sqlite3``), so either can be deleted or backed up alone; opening it on the same
file as :class:`bot.storage.SQLiteStorage` also works, since the table names differ and WAL mode lets the two
connections share the file. Threading follows :mod:`bot.storage`: one connection behind a lock, calls in a worker
thread.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from bot.storage import SQLiteDatabase

__all__ = ["Kind", "Verdict", "VerdictRecord", "VerdictStore", "checked_fields"]

Kind = Literal["photo", "document"]
Verdict = Literal["FAKE", "REAL", "UNSURE"]

_KINDS: tuple[str, ...] = get_args(Kind)
_VERDICTS: tuple[str, ...] = get_args(Verdict)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    -- AUTOINCREMENT never reuses an id, even after prune deletes the newest rows: an old "Why?" button must not
    -- come to point at a different, later picture of the same user.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    chat_id INTEGER NOT NULL,
    file_id TEXT NOT NULL,
    file_unique_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('photo', 'document')),
    file_name TEXT,
    p_fake REAL NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('FAKE', 'REAL', 'UNSURE')),
    member_p_fake TEXT NOT NULL,  -- JSON object: member name -> p_fake
    evidence TEXT NOT NULL,  -- JSON array of short lines
    overlay_file_id TEXT,
    created_at REAL NOT NULL  -- unix time
);
CREATE INDEX IF NOT EXISTS verdicts_user_id ON verdicts (user_id, id);
CREATE INDEX IF NOT EXISTS verdicts_created_at ON verdicts (created_at);
CREATE INDEX IF NOT EXISTS verdicts_chat_id ON verdicts (chat_id, id);
"""

_INSERT_COLUMNS = (
    "user_id, chat_id, file_id, file_unique_id, kind, file_name, p_fake, verdict, member_p_fake, evidence, "
    "overlay_file_id, created_at"
)
_COLUMNS = "id, " + _INSERT_COLUMNS


@dataclass(frozen=True)
class VerdictRecord:
    """One verdict given in one chat on one picture.

    Attributes:
        id: Store-wide unique id, put in the "Why?" button's callback data.
        user_id: Telegram id of the user who sent the picture (or asked for the check, in a group).
        chat_id: Chat the verdict was sent to; only that chat may read the record.
        file_id: Telegram file_id to download the picture again.
        file_unique_id: Telegram's stable id of the file (same picture, same value, across bots and time).
        kind: ``"photo"`` (compressed by Telegram) or ``"document"`` (sent as a file, original bytes).
        file_name: The document's file name, ``None`` for photos or when Telegram gave none.
        p_fake: Calibrated probability that the picture is AI-generated.
        verdict: ``"FAKE"``, ``"REAL"`` or ``"UNSURE"``.
        member_p_fake: Each ensemble member's p_fake, by member name.
        evidence: Short evidence lines shown with the verdict; may be empty.
        overlay_file_id: Telegram file_id of the uploaded heatmap, reused on the next "Why?"; ``None`` until then.
        created_at: Unix time the verdict was recorded.
    """

    id: int
    user_id: int
    chat_id: int
    file_id: str
    file_unique_id: str
    kind: Kind
    file_name: str | None
    p_fake: float
    verdict: Verdict
    member_p_fake: dict[str, float]
    evidence: list[str]
    overlay_file_id: str | None
    created_at: float


def _record(row: tuple) -> VerdictRecord:
    (
        id_,
        user_id,
        chat_id,
        file_id,
        file_unique_id,
        kind,
        file_name,
        p_fake,
        verdict,
        member_p_fake,
        evidence,
        overlay_file_id,
        created_at,
    ) = row
    return VerdictRecord(
        id=id_,
        user_id=user_id,
        chat_id=chat_id,
        file_id=file_id,
        file_unique_id=file_unique_id,
        kind=kind,
        file_name=file_name,
        p_fake=p_fake,
        verdict=verdict,
        member_p_fake=json.loads(member_p_fake),
        evidence=json.loads(evidence),
        overlay_file_id=overlay_file_id,
        created_at=created_at,
    )


def _probability(name: str, value: float) -> float:
    value = float(value)
    # NaN fails both comparisons, so it is rejected here too.
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
    return value


def checked_fields(
    kind: str, verdict: str, p_fake: float, member_p_fake: Mapping[str, float], evidence: Iterable[str]
) -> tuple[float, dict[str, float], list[str]]:
    """Validate a new record's fields (for every store); returns p_fake, member_p_fake and evidence, normalised.

    Raises:
        ValueError: ``kind`` or ``verdict`` is not one of the allowed values, or a probability is outside
            [0, 1] or NaN.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    if verdict not in _VERDICTS:
        raise ValueError(f"verdict must be one of {_VERDICTS}, got {verdict!r}")
    p_fake = _probability("p_fake", p_fake)
    members = {str(name): _probability(f"member_p_fake[{name!r}]", p) for name, p in member_p_fake.items()}
    return p_fake, members, [str(line) for line in evidence]


class VerdictStore:
    """Verdict records in SQLite, readable only from the chat they were given in.

    Args:
        path: The SQLite file; its parent folders are created. See the module docstring on sharing it.
        clock: Source of unix time for ``created_at`` and ``prune``; tests replace it.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._db = SQLiteDatabase(path, _SCHEMA)
        self._clock = clock

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._db.path

    async def add(
        self,
        *,
        user_id: int,
        chat_id: int,
        file_id: str,
        file_unique_id: str,
        kind: Kind,
        file_name: str | None,
        p_fake: float,
        verdict: Verdict,
        member_p_fake: Mapping[str, float],
        evidence: Iterable[str] = (),
    ) -> VerdictRecord:
        """Record a verdict and return it with its new id and ``created_at``.

        Args:
            user_id: The user who sent the picture.
            chat_id: The chat the verdict goes to.
            file_id: Telegram file_id of the picture.
            file_unique_id: Telegram file_unique_id of the picture.
            kind: ``"photo"`` or ``"document"``.
            file_name: Document file name, or ``None``.
            p_fake: Calibrated probability of AI-generated, in [0, 1].
            verdict: ``"FAKE"``, ``"REAL"`` or ``"UNSURE"``.
            member_p_fake: Each ensemble member's p_fake, by name.
            evidence: Short evidence lines; may be empty.

        Returns:
            The stored record.

        Raises:
            ValueError: ``kind`` or ``verdict`` is not one of the allowed values, or a probability is outside
                [0, 1] or NaN.
        """
        p_fake, members, lines = checked_fields(kind, verdict, p_fake, member_p_fake, evidence)
        created_at = self._clock()
        values = (
            user_id,
            chat_id,
            file_id,
            file_unique_id,
            kind,
            file_name,
            p_fake,
            verdict,
            json.dumps(members),
            json.dumps(lines, ensure_ascii=False),
            None,
            created_at,
        )

        def body(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                f"INSERT INTO verdicts ({_INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            return cursor.lastrowid

        verdict_id = await self._db.run(body, write=True)
        return _record((verdict_id, *values))

    async def get(self, chat_id: int, verdict_id: int) -> VerdictRecord | None:
        """Return the chat's verdict with this id.

        Args:
            chat_id: The chat asking (from the Telegram update, never from callback data).
            verdict_id: The verdict id (typically from callback data, so untrusted).

        Returns:
            The record, or ``None`` when there is no such verdict or it was given in another chat.
        """
        rows = await self._db.run(
            lambda conn: conn.execute(
                f"SELECT {_COLUMNS} FROM verdicts WHERE id = ? AND chat_id = ?", (verdict_id, chat_id)
            ).fetchall(),
            write=False,
        )
        return _record(rows[0]) if rows else None

    async def set_overlay(self, chat_id: int, verdict_id: int, file_id: str) -> bool:
        """Remember the Telegram file_id of the verdict's uploaded heatmap.

        Args:
            chat_id: The chat the verdict was given in.
            verdict_id: The verdict id.
            file_id: Telegram file_id of the uploaded heatmap.

        Returns:
            Whether a record was updated (``False`` when there is none or it belongs to another chat).
        """
        updated = await self._db.run(
            lambda conn: (
                conn.execute(
                    "UPDATE verdicts SET overlay_file_id = ? WHERE id = ? AND chat_id = ?",
                    (file_id, verdict_id, chat_id),
                ).rowcount
            ),
            write=True,
        )
        return updated > 0

    async def recent(self, chat_id: int, limit: int = 10) -> list[VerdictRecord]:
        """Return the chat's latest verdicts, newest first.

        Args:
            chat_id: The chat (a user's id for their private chat).
            limit: At most this many records.
        """
        rows = await self._db.run(
            lambda conn: conn.execute(
                f"SELECT {_COLUMNS} FROM verdicts WHERE chat_id = ? ORDER BY id DESC LIMIT ?", (chat_id, limit)
            ).fetchall(),
            write=False,
        )
        return [_record(row) for row in rows]

    async def count(self) -> int:
        """Return how many verdicts are stored, over all users."""
        rows = await self._db.run(lambda conn: conn.execute("SELECT COUNT(*) FROM verdicts").fetchall(), write=False)
        return rows[0][0]

    async def prune(self, older_than_seconds: float) -> int:
        """Delete verdicts recorded more than ``older_than_seconds`` ago.

        Args:
            older_than_seconds: Minimum age of a deleted record.

        Returns:
            How many records were deleted.
        """
        cutoff = self._clock() - older_than_seconds
        return await self._db.run(
            lambda conn: conn.execute("DELETE FROM verdicts WHERE created_at < ?", (cutoff,)).rowcount, write=True
        )

    def close(self) -> None:
        """Close the database connection; safe to call more than once."""
        self._db.close()
