"""Bot state that survives restarts: aiogram FSM storage (and so aiogram-dialog stacks) in one SQLite file.

aiogram-dialog keeps every open dialog as FSM *data* (never FSM state) under keys whose ``destiny`` is
``aiogd:stack:<stack id>`` or ``aiogd:context:<intent id>``; the inline buttons of a sent message carry the intent
id. Keeping those rows on disk is what lets a button pressed on a message sent before a restart still work.

Threading: every store owns one ``sqlite3`` connection guarded by a ``threading.Lock``; each operation runs in a
worker thread through ``asyncio.to_thread``. Most calls take well under a millisecond, but a WAL checkpoint or a
busy lock held by another process can take milliseconds to seconds, and that must not stall the event loop that
serves every other chat.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey

__all__ = ["DIALOG_CONTEXT_PREFIX", "DIALOG_STACK_PREFIX", "SQLiteDatabase", "SQLiteStorage"]

T = TypeVar("T")

# aiogram-dialog 2 names its rows like this (aiogram_dialog/context/storage.py, StorageProxy._stack_key and
# _context_key); prune relies on it, and tests/bot/test_storage.py checks it against the real library.
DIALOG_STACK_PREFIX = "aiogd:stack:"
DIALOG_CONTEXT_PREFIX = "aiogd:context:"

# How long a statement waits for another connection (another process, or a VerdictStore on the same file)
# to release its write lock before giving up with "database is locked".
_BUSY_TIMEOUT_S = 5.0


class SQLiteDatabase:
    """One SQLite file behind a single connection, safe to use from asyncio code.

    Opens (creating the parent folders and the file if needed) in WAL mode, so readers never block the writer
    and a crash cannot leave a half-written row. Every call of :meth:`run` holds the lock for its whole body
    and, when it writes, wraps the body in one transaction.

    Args:
        path: The SQLite file.
        schema: SQL script run once at open; it must be idempotent (``CREATE ... IF NOT EXISTS``).
    """

    def __init__(self, path: Path, schema: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: this class issues BEGIN/COMMIT itself, so reads stay outside transactions and
        # the write transactions are exactly the bodies of run(write=True).
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            self.journal_mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            # In WAL mode NORMAL loses no data on an application crash, only possibly the last commits on a power
            # cut; that is fine for chat state and saves an fsync per write.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(schema)
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._conn is None

    async def run(self, body: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run ``body(connection)`` in a worker thread while holding the connection's lock.

        Args:
            body: Blocking function doing the SQL work; it must fetch all rows it needs before returning.
            write: Run the body in one ``BEGIN IMMEDIATE`` transaction, committed when it returns and rolled
                back when it raises.

        Returns:
            What ``body`` returned.

        Raises:
            RuntimeError: The database was closed.
        """
        return await asyncio.to_thread(self._run_locked, body, write)

    def _run_locked(self, body: Callable[[sqlite3.Connection], T], write: bool) -> T:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise RuntimeError(f"{self.path} is closed")
            if not write:
                return body(conn)
            # IMMEDIATE takes the write lock up front, so a read-modify-write body cannot fail half-way with
            # SQLITE_BUSY when another connection writes the same file.
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    def close(self) -> None:
        """Close the connection; safe to call more than once. Later :meth:`run` calls raise ``RuntimeError``."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


_FSM_SCHEMA = """
CREATE TABLE IF NOT EXISTS fsm (
    -- Canonical JSON array of all six StorageKey fields (see _key_text): one exact, NULL-safe unique key.
    key TEXT PRIMARY KEY,
    -- The same fields again as columns, for prune and for a human reading the file.
    bot_id INTEGER NOT NULL,
    chat_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    thread_id INTEGER,
    business_connection_id TEXT,
    destiny TEXT NOT NULL,
    state TEXT,
    data TEXT,  -- JSON object, NULL when empty; a row with state and data both NULL is deleted
    updated_at REAL NOT NULL  -- unix time of the last write
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fsm_updated_at ON fsm (updated_at);
"""

_KEY_COLUMNS = "key, bot_id, chat_id, user_id, thread_id, business_connection_id, destiny"


def _key_text(key: StorageKey) -> str:
    # A composite primary key over the columns would not do: SQLite treats NULLs as distinct in unique
    # constraints, so thread_id=None rows would never conflict, and any sentinel for None could collide with a
    # real value. JSON keeps None and 0 (or "" and None) apart.
    return json.dumps(
        [key.bot_id, key.chat_id, key.user_id, key.thread_id, key.business_connection_id, key.destiny],
        separators=(",", ":"),
    )


def _key_row(key: StorageKey) -> tuple[Any, ...]:
    return (
        _key_text(key),
        key.bot_id,
        key.chat_id,
        key.user_id,
        key.thread_id,
        key.business_connection_id,
        key.destiny,
    )


def _dump_data(data: Mapping[str, Any]) -> str | None:
    if not data:
        return None
    try:
        return json.dumps(dict(data), ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise TypeError(f"FSM data must be JSON-serialisable to be stored in SQLite: {error}") from error


def _load_data(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


def _write_column(conn: sqlite3.Connection, key: StorageKey, column: str, value: str | None, now: float) -> None:
    """Set ``column`` ("state" or "data") of the key's row, deleting the row once it holds nothing."""
    key_text = _key_text(key)
    if value is None:
        # Nothing to add: never create a row, only clear an existing one and drop it when it became empty.
        conn.execute(f"UPDATE fsm SET {column} = NULL, updated_at = ? WHERE key = ?", (now, key_text))
        conn.execute("DELETE FROM fsm WHERE key = ? AND state IS NULL AND data IS NULL", (key_text,))
        return
    conn.execute(
        f"INSERT INTO fsm ({_KEY_COLUMNS}, {column}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        f"ON CONFLICT (key) DO UPDATE SET {column} = excluded.{column}, updated_at = excluded.updated_at",
        (*_key_row(key), value, now),
    )


def _read_column(conn: sqlite3.Connection, key: StorageKey, column: str) -> str | None:
    rows = conn.execute(f"SELECT {column} FROM fsm WHERE key = ?", (_key_text(key),)).fetchall()
    return rows[0][0] if rows else None


class SQLiteStorage(BaseStorage):
    """aiogram FSM storage kept in one SQLite file, so FSM and aiogram-dialog state survive a restart.

    Rows are keyed by every :class:`StorageKey` field. State is stored as its string name (``State.state`` for
    :class:`State` objects, as aiogram's own storages do); data as a JSON object. JSON is all aiogram-dialog 2
    needs (it serialises its stacks and contexts to dicts of str, int, float, bool, None, lists and dicts, and its
    own test storage is JSON-backed too), but it means tuples come back as lists and non-str dict keys as str;
    anything JSON cannot hold raises ``TypeError`` at write time instead of being stored wrongly.

    A row whose state is ``None`` and whose data is empty is deleted, so ``set_data({})`` plus
    ``set_state(None)`` (which is how aiogram-dialog forgets a finished dialog) leave nothing behind.

    Args:
        path: The SQLite file; its parent folders are created.
        clock: Source of unix time for ``updated_at``; tests replace it.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._db = SQLiteDatabase(path, _FSM_SCHEMA)
        self._clock = clock

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._db.path

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        """Set the FSM state of ``key``; ``None`` clears it.

        Args:
            key: Storage key.
            state: A :class:`State`, its string name, or ``None``.
        """
        value = state.state if isinstance(state, State) else state
        now = self._clock()
        await self._db.run(lambda conn: _write_column(conn, key, "state", value, now), write=True)

    async def get_state(self, key: StorageKey) -> str | None:
        """Return the FSM state name of ``key``, or ``None``.

        Args:
            key: Storage key.
        """
        return await self._db.run(lambda conn: _read_column(conn, key, "state"), write=False)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        """Replace the data of ``key``; an empty mapping clears it.

        Args:
            key: Storage key.
            data: New data; must be JSON-serialisable.

        Raises:
            TypeError: ``data`` holds something JSON cannot represent; nothing is written.
        """
        # Serialised here, before the thread hop, so the stored value is the data as it was at the call even if
        # the caller mutates the dict while the write waits for the lock.
        text = _dump_data(data)
        now = self._clock()
        await self._db.run(lambda conn: _write_column(conn, key, "data", text, now), write=True)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        """Return a fresh copy of the data of ``key`` (``{}`` when there is none).

        Args:
            key: Storage key.
        """
        text = await self._db.run(lambda conn: _read_column(conn, key, "data"), write=False)
        return _load_data(text)

    async def update_data(self, key: StorageKey, data: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``data`` into the data of ``key`` (like ``dict.update``) in one transaction.

        The base class reads and then writes in two steps, so two concurrent updates of one key could lose one
        of them; here the read, merge and write happen under one lock and transaction.

        Args:
            key: Storage key.
            data: Partial data; must be JSON-serialisable.

        Returns:
            A copy of the merged data.

        Raises:
            TypeError: ``data`` holds something JSON cannot represent; nothing is written.
        """
        # Round-trip through JSON now: rejects bad values before touching the file and snapshots the patch.
        patch = _load_data(_dump_data(data))
        now = self._clock()

        def body(conn: sqlite3.Connection) -> dict[str, Any]:
            merged = _load_data(_read_column(conn, key, "data"))
            merged.update(patch)
            _write_column(conn, key, "data", _dump_data(merged), now)
            return merged

        return await self._db.run(body, write=True)

    async def prune(self, older_than_seconds: float) -> int:
        """Delete aiogram-dialog rows not written for ``older_than_seconds``.

        Stacks idle that long are deleted, then contexts idle that long that no remaining stack lists. A context
        can be old yet live: aiogram-dialog re-saves only the top dialog of a stack on each event, so the dialogs
        below it keep their old ``updated_at``. Plain FSM rows (other destinies) are never pruned.

        A button on a message whose dialog was pruned stops working (aiogram-dialog raises ``UnknownIntent``),
        so pick an age well beyond how long users plausibly come back to an old message.

        Args:
            older_than_seconds: Minimum idle time of a deleted row.

        Returns:
            How many rows were deleted.
        """
        cutoff = self._clock() - older_than_seconds

        def body(conn: sqlite3.Connection) -> int:
            deleted = conn.execute(
                "DELETE FROM fsm WHERE destiny GLOB ? AND updated_at < ?", (DIALOG_STACK_PREFIX + "*", cutoff)
            ).rowcount
            live: set[str] = set()
            stacks = conn.execute(
                "SELECT bot_id, chat_id, user_id, thread_id, business_connection_id, data FROM fsm "
                "WHERE destiny GLOB ? AND data IS NOT NULL",
                (DIALOG_STACK_PREFIX + "*",),
            ).fetchall()
            for bot_id, chat_id, user_id, thread_id, business_connection_id, data in stacks:
                for intent_id in _load_data(data).get("intents", []):
                    # A context lives under the same key fields as its stack, only the destiny differs.
                    context_key = StorageKey(
                        bot_id=bot_id,
                        chat_id=chat_id,
                        user_id=user_id,
                        thread_id=thread_id,
                        business_connection_id=business_connection_id,
                        destiny=DIALOG_CONTEXT_PREFIX + intent_id,
                    )
                    live.add(_key_text(context_key))
            old_contexts = conn.execute(
                "SELECT key FROM fsm WHERE destiny GLOB ? AND updated_at < ?", (DIALOG_CONTEXT_PREFIX + "*", cutoff)
            ).fetchall()
            dead = [(key_text,) for (key_text,) in old_contexts if key_text not in live]
            conn.executemany("DELETE FROM fsm WHERE key = ?", dead)
            return deleted + len(dead)

        return await self._db.run(body, write=True)

    async def close(self) -> None:
        """Close the database connection; safe to call more than once (aiogram calls it on shutdown)."""
        self._db.close()
