"""Per-chat settings that survive restarts: today only whether auto mode is on in a group.

``ChatSettingsStore`` keeps them in SQLite (``DATA_DIR/chats.sqlite3``); ``bot.redis_state.RedisChatSettings``
in Redis when replicas share it. A chat never configured has auto mode off: the bot stays quiet until asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bot.storage import SQLiteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_settings (
    chat_id INTEGER PRIMARY KEY,
    auto INTEGER NOT NULL CHECK (auto IN (0, 1)),
    changed_by INTEGER,  -- the administrator who last changed it
    changed_at REAL NOT NULL  -- unix time
);
"""


class ChatSettingsStore:
    """Auto mode per chat, in SQLite. Threading follows :mod:`bot.storage`."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._db = SQLiteDatabase(path, _SCHEMA)
        self._clock = clock

    async def auto(self, chat_id: int) -> bool:
        """Whether auto mode is on in the chat (off when never set)."""
        rows = await self._db.run(
            lambda conn: conn.execute("SELECT auto FROM chat_settings WHERE chat_id = ?", (chat_id,)).fetchall(),
            write=False,
        )
        return bool(rows and rows[0][0])

    async def set_auto(self, chat_id: int, on: bool, changed_by: int | None) -> None:
        row = (chat_id, int(on), changed_by, self._clock())
        await self._db.run(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO chat_settings (chat_id, auto, changed_by, changed_at) VALUES (?, ?, ?, ?)", row
            ),
            write=True,
        )

    def close(self) -> None:
        self._db.close()
