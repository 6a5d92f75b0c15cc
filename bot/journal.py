"""At-least-once handling: every update is written to disk before Telegram may forget it, and crossed out after.

Telegram forgets an update once the bot confirms it: in polling, by asking for updates after it; in webhook
mode, by answering the POST with 200. A process killed between that moment and its answer (SIGKILL, the out-of-
memory killer, a lost machine) would lose the user's picture without a word. So:

1. ``Feeder.take`` records the updates in ``DATA_DIR/updates.sqlite3`` and only then lets them be confirmed
   (the poller asks for the next batch, the webhook answers 200);
2. each update is handled in a task of its own and marked finished when its handler returns, answered or
   failed with the error handler's apology;
3. on start, the updates recorded and never finished are handled again (``Feeder.replay``), oldest first.

A crash after an answer was sent and before it was crossed out answers that update twice: the price of never
answering nothing. An update that was started ``MAX_ATTEMPTS`` times without finishing (one that crashes the
process every time) is dropped with a warning instead of looping forever. Finished rows stay a day, so an
update Telegram delivers twice (a webhook retry) is handled once.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.types import TelegramObject, Update

from bot.storage import SQLiteDatabase

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
KEEP_FINISHED_S = 24 * 3600  # as long as Telegram keeps an unconfirmed update
PRUNE_EVERY = 500  # updates recorded between two clean-ups of finished rows older than KEEP_FINISHED_S

_SCHEMA = """
CREATE TABLE IF NOT EXISTS updates (
    update_id INTEGER PRIMARY KEY,
    body TEXT NOT NULL,        -- the update as Telegram's JSON
    received REAL NOT NULL,    -- unix time it was recorded
    attempts INTEGER NOT NULL DEFAULT 0,  -- starts before the current one that did not finish
    finished REAL              -- unix time it was handled; NULL while it is not
);
CREATE INDEX IF NOT EXISTS updates_finished ON updates (finished);
"""


class UpdateJournal:
    """The updates taken and whether each was handled, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.db = SQLiteDatabase(path, _SCHEMA)
        self._since_prune = 0

    async def record(self, updates: list[Update]) -> list[Update]:
        """Write ``updates`` down; returns the ones not recorded before (a redelivery is dropped)."""
        self._since_prune += len(updates)
        prune, self._since_prune = self._since_prune >= PRUNE_EVERY, self._since_prune % PRUNE_EVERY

        def body(conn: sqlite3.Connection) -> list[Update]:
            now = time.time()
            if prune:
                conn.execute("DELETE FROM updates WHERE finished < ?", (now - KEEP_FINISHED_S,))
            fresh = []
            for update in updates:
                text = update.model_dump_json(by_alias=True, exclude_none=True)
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO updates (update_id, body, received) VALUES (?, ?, ?)",
                    (update.update_id, text, now),
                ).rowcount
                if inserted:
                    fresh.append(update)
            return fresh

        return await self.db.run(body, write=True)

    async def finish(self, update_id: int) -> None:
        await self.db.run(
            lambda conn: conn.execute("UPDATE updates SET finished = ? WHERE update_id = ?", (time.time(), update_id)),
            write=True,
        )

    async def last_update_id(self) -> int | None:
        """The newest update ever recorded: polling resumes after it."""
        return await self.db.run(lambda conn: conn.execute("SELECT max(update_id) FROM updates").fetchone()[0],
                                 write=False)  # fmt: skip

    async def unfinished(self) -> list[str]:
        """The bodies of updates to handle again, oldest first; counts this start as an attempt of each.

        Also forgets finished updates older than a day, and drops those tried ``MAX_ATTEMPTS`` times.
        """

        def body(conn: sqlite3.Connection) -> list[str]:
            conn.execute("DELETE FROM updates WHERE finished < ?", (time.time() - KEEP_FINISHED_S,))
            rows = conn.execute(
                "SELECT update_id, body, attempts FROM updates WHERE finished IS NULL ORDER BY update_id"
            ).fetchall()
            again = []
            for update_id, text, attempts in rows:
                if attempts + 1 >= MAX_ATTEMPTS:
                    log.warning("update %d was started %d times and never finished: dropped", update_id, attempts + 1)
                    conn.execute("UPDATE updates SET finished = ? WHERE update_id = ?", (time.time(), update_id))
                    continue
                conn.execute("UPDATE updates SET attempts = attempts + 1 WHERE update_id = ?", (update_id,))
                again.append(text)
            return again

        return await self.db.run(body, write=True)

    async def counts(self) -> tuple[int, int]:
        """(finished, unfinished) rows."""
        return await self.db.run(
            lambda conn: conn.execute("SELECT count(finished), count(*) - count(finished) FROM updates").fetchone(),
            write=False,
        )

    def close(self) -> None:
        self.db.close()


# The task handling an update taken from Telegram, and the follow-up tasks it started: aiogram-dialog shows a
# dialog started in a new stack from a task of its own (its Updater copies the context, so this travels along).
_FOLLOW_UPS: ContextVar[tuple[asyncio.Task, set[asyncio.Task]] | None] = ContextVar("follow_ups", default=None)


class FollowUpMiddleware(BaseMiddleware):
    """An outer update middleware: ties aiogram-dialog's follow-up updates to the update that started them, so
    an update counts as finished only when its verdict message is really sent."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        owner = _FOLLOW_UPS.get()
        task = asyncio.current_task()
        if owner is not None and task is not owner[0]:
            owner[1].add(task)
        return await handler(event, data)


class Feeder:
    """Hands updates to the Dispatcher, each in a task of its own, journaled first when a journal is given."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, journal: UpdateJournal | None = None) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self.journal = journal
        self.closing = False
        self._tasks: set[asyncio.Task] = set()
        self._follow_ups: dict[asyncio.Task, set[asyncio.Task]] = {}
        # An album's parts: one part answers for all (bot.middlewares.album), the others return at once. Each
        # part counts as finished only when every part taken with it is handled, so that a crash leaves the
        # whole album unfinished and the next start gathers it again.
        self._albums: dict[str, dict[int, asyncio.Event]] = {}

    async def take(self, updates: list[Update]) -> None:
        """Start handling ``updates``; returns once they are on disk, so they may be confirmed to Telegram.

        While closing, updates are only recorded: the next start answers them.
        """
        if self.journal is not None:
            try:
                updates = await self.journal.record(updates)
            except (sqlite3.Error, OSError, RuntimeError) as error:  # a full disk, a broken file: answer anyway
                log.error("the update journal cannot record (%s); answering without it", error)
        if self.closing:
            return
        for update in updates:
            self._start(update)

    async def replay(self) -> int:
        """Handle again what an earlier run took and never finished; returns how many."""
        if self.journal is None:
            return 0
        bodies = await self.journal.unfinished()
        for text in bodies:
            self._start(Update.model_validate_json(text, context={"bot": self.bot}))
        if bodies:
            log.info("answering %d updates an earlier run took and did not finish", len(bodies))
        return len(bodies)

    def _start(self, update: Update) -> None:
        album = update.message.media_group_id if update.message is not None else None
        handled = None
        if album is not None:
            handled = self._albums.setdefault(album, {}).setdefault(update.update_id, asyncio.Event())
        task = asyncio.create_task(self._handle(update, album, handled), name=f"update-{update.update_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, update: Update, album: str | None, handled: asyncio.Event | None) -> None:
        task = asyncio.current_task()
        follow_ups = self._follow_ups[task] = set()
        _FOLLOW_UPS.set((task, follow_ups))
        try:
            await self.dispatcher.feed_update(self.bot, update)
            while True:  # follow-ups are scheduled with call_soon: give them a moment to start, then wait for them
                await asyncio.sleep(0.01)
                pending = {follow_up for follow_up in follow_ups if not follow_up.done()}
                if not pending:
                    break
                await asyncio.wait(pending)
        except asyncio.CancelledError:
            raise  # cut off by shutdown: left unfinished, so the next start answers it
        except Exception:
            # The error handler already apologised to the user, or could not (Telegram unreachable): either way
            # handling it again would fail the same way.
            log.exception("update %d failed", update.update_id)
        finally:
            del self._follow_ups[task]
        if handled is not None:
            handled.set()
            for event in list(self._albums.get(album, {}).values()):
                await event.wait()
            self._albums.pop(album, None)
        if self.journal is not None:
            try:
                await self.journal.finish(update.update_id)
            except (sqlite3.Error, OSError, RuntimeError) as error:
                log.error("the update journal cannot mark update %d answered (%s)", update.update_id, error)

    async def cancel(self) -> None:
        """Stop taking updates and cancel what is still running, follow-ups included (after the drain): those
        updates stay unfinished in the journal, and nothing of theirs is sent after this returns."""
        self.closing = True
        running = set(self._tasks) | {follow_up for group in self._follow_ups.values() for follow_up in group}
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=5)
