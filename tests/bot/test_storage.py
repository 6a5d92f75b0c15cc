"""SQLiteStorage: FSM round-trips, exact keys, empty rows dropped, pruning, and aiogram-dialog across a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest
from aiogram import Dispatcher
from aiogram.filters import CommandStart
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import Message
from aiogram_dialog import Dialog, DialogManager, StartMode, Window, setup_dialogs
from aiogram_dialog.api.exceptions import UnknownIntent
from aiogram_dialog.test_tools import BotClient, MockMessageManager
from aiogram_dialog.test_tools.keyboard import InlineButtonTextLocator
from aiogram_dialog.widgets.kbd import Cancel, Start, SwitchTo
from aiogram_dialog.widgets.text import Const

from bot.storage import DIALOG_CONTEXT_PREFIX, DIALOG_STACK_PREFIX, SQLiteStorage

KEY = StorageKey(bot_id=1, chat_id=10, user_id=20)


class Clock:
    """A settable stand-in for time.time, so tests can age rows without sleeping."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    # A nested path also checks that the constructor creates missing parent folders.
    return tmp_path / "data" / "state" / "fsm.sqlite3"


@pytest.fixture
async def storage(db_path: Path) -> AsyncIterator[SQLiteStorage]:
    store = SQLiteStorage(db_path)
    yield store
    await store.close()


def row_count(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT COUNT(*) FROM fsm").fetchone()[0]


class Form(StatesGroup):
    name = State()


async def test_file_created_in_wal_mode(db_path: Path, storage: SQLiteStorage) -> None:
    assert db_path.is_file()
    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_state_round_trip(storage: SQLiteStorage) -> None:
    assert await storage.get_state(KEY) is None
    await storage.set_state(KEY, "some:state")
    assert await storage.get_state(KEY) == "some:state"
    # State objects are stored by name, as aiogram's MemoryStorage and RedisStorage do.
    await storage.set_state(KEY, Form.name)
    assert await storage.get_state(KEY) == "Form:name"
    await storage.set_state(KEY, None)
    assert await storage.get_state(KEY) is None


async def test_data_round_trip_returns_fresh_copies(storage: SQLiteStorage) -> None:
    assert await storage.get_data(KEY) == {}
    data = {"a": 1, "b": [1, 2.5, None, True], "c": {"nested": {"deep": "ü"}}}
    await storage.set_data(KEY, data)
    data["a"] = 2  # mutating the caller's dict after the write must not change what was stored
    loaded = await storage.get_data(KEY)
    assert loaded == {"a": 1, "b": [1, 2.5, None, True], "c": {"nested": {"deep": "ü"}}}
    loaded["c"]["nested"]["deep"] = "changed"
    assert (await storage.get_data(KEY))["c"]["nested"]["deep"] == "ü"
    assert await storage.get_value(KEY, "a") == 1
    assert await storage.get_value(KEY, "missing", "default") == "default"


async def test_update_data_merges(storage: SQLiteStorage) -> None:
    assert await storage.update_data(KEY, {"a": 1}) == {"a": 1}
    merged = await storage.update_data(KEY, {"b": 2, "a": 3})
    assert merged == {"a": 3, "b": 2}
    merged["x"] = 1  # the returned dict is a copy
    assert await storage.get_data(KEY) == {"a": 3, "b": 2}


async def test_concurrent_updates_of_one_key_are_not_lost(storage: SQLiteStorage) -> None:
    await asyncio.gather(*(storage.update_data(KEY, {f"k{i}": i}) for i in range(50)))
    assert await storage.get_data(KEY) == {f"k{i}": i for i in range(50)}


async def test_state_and_data_are_independent(storage: SQLiteStorage) -> None:
    await storage.set_state(KEY, "s")
    await storage.set_data(KEY, {"a": 1})
    await storage.set_state(KEY, None)
    assert await storage.get_data(KEY) == {"a": 1}
    await storage.set_state(KEY, "t")
    await storage.set_data(KEY, {})
    assert await storage.get_state(KEY) == "t"


async def test_empty_rows_are_deleted(db_path: Path, storage: SQLiteStorage) -> None:
    await storage.set_state(KEY, "s")
    await storage.set_data(KEY, {"a": 1})
    assert row_count(db_path) == 1
    await storage.set_data(KEY, {})
    assert row_count(db_path) == 1  # the state still holds something
    await storage.set_state(KEY, None)
    assert row_count(db_path) == 0
    # Clearing a key that was never written creates nothing.
    await storage.set_data(KEY, {})
    await storage.set_state(KEY, None)
    await storage.update_data(KEY, {})
    assert row_count(db_path) == 0


async def test_non_json_data_is_rejected_without_writing(storage: SQLiteStorage) -> None:
    await storage.set_data(KEY, {"ok": 1})
    with pytest.raises(TypeError, match="JSON"):
        await storage.set_data(KEY, {"bad": object()})
    with pytest.raises(TypeError, match="JSON"):
        await storage.update_data(KEY, {"bad": {1, 2}})
    assert await storage.get_data(KEY) == {"ok": 1}


KEY_VARIANTS = {
    "bot_id": 2,
    "chat_id": 11,
    "user_id": 21,
    "thread_id": 5,
    "business_connection_id": "bc",
    "destiny": "aiogd:stack:",
}


@pytest.mark.parametrize("field", list(KEY_VARIANTS))
async def test_keys_differing_in_one_field_do_not_collide(storage: SQLiteStorage, field: str) -> None:
    other = dataclasses.replace(KEY, **{field: KEY_VARIANTS[field]})
    await storage.set_data(KEY, {"who": "base"})
    await storage.set_state(KEY, "base")
    await storage.set_data(other, {"who": "other"})
    await storage.set_state(other, "other")
    assert await storage.get_data(KEY) == {"who": "base"}
    assert await storage.get_state(KEY) == "base"
    assert await storage.get_data(other) == {"who": "other"}
    assert await storage.get_state(other) == "other"
    await storage.set_data(other, {})
    assert await storage.get_data(KEY) == {"who": "base"}


async def test_none_and_falsy_key_fields_do_not_collide(storage: SQLiteStorage) -> None:
    # SQLite unique constraints treat NULLs as distinct and a sentinel could clash; the key must keep these apart.
    keys = [
        KEY,
        dataclasses.replace(KEY, thread_id=0),
        dataclasses.replace(KEY, business_connection_id=""),
    ]
    for i, key in enumerate(keys):
        await storage.set_data(key, {"i": i})
    for i, key in enumerate(keys):
        await storage.set_data(key, {"i": i, "again": True})  # overwrite, must not add a row
    assert [await storage.get_data(key) for key in keys] == [{"i": i, "again": True} for i in range(3)]
    assert row_count(storage.path) == 3


async def test_survives_close_and_reopen(db_path: Path) -> None:
    thread_key = dataclasses.replace(KEY, thread_id=7, destiny="aiogd:context:abc")
    first = SQLiteStorage(db_path)
    await first.set_state(KEY, Form.name)
    await first.set_data(KEY, {"a": [1, {"b": None}]})
    await first.set_data(thread_key, {"t": 1})
    await first.close()

    second = SQLiteStorage(db_path)
    try:
        assert await second.get_state(KEY) == "Form:name"
        assert await second.get_data(KEY) == {"a": [1, {"b": None}]}
        assert await second.get_data(thread_key) == {"t": 1}
        assert await second.get_data(dataclasses.replace(thread_key, thread_id=None)) == {}
    finally:
        await second.close()


async def test_close_is_idempotent_and_final(db_path: Path) -> None:
    store = SQLiteStorage(db_path)
    await store.close()
    await store.close()
    with pytest.raises(RuntimeError, match="closed"):
        await store.get_data(KEY)


def dialog_key(destiny: str, chat_id: int = 10) -> StorageKey:
    return StorageKey(bot_id=1, chat_id=chat_id, user_id=chat_id, destiny=destiny)


async def test_prune_deletes_only_idle_dialog_rows(db_path: Path) -> None:
    clock = Clock()
    store = SQLiteStorage(db_path, clock=clock)
    try:
        # Written long ago: an abandoned dialog (stack + context), a plain FSM row, and a context that is old but
        # still listed by a fresh stack (the lower dialog of a nested stack is not re-saved on each event).
        await store.set_data(dialog_key(DIALOG_STACK_PREFIX, chat_id=1), {"_id": "", "intents": ["old"]})
        await store.set_data(dialog_key(DIALOG_CONTEXT_PREFIX + "old", chat_id=1), {"state": "S:a"})
        await store.set_state(KEY, "plain:state")
        await store.set_data(dialog_key(DIALOG_CONTEXT_PREFIX + "bottom"), {"state": "S:a"})
        # An old orphan context with the same intent id as a live one in another chat must still go.
        await store.set_data(dialog_key(DIALOG_CONTEXT_PREFIX + "top", chat_id=3), {"state": "S:a"})
        clock.now += 90 * 86400
        await store.set_data(dialog_key(DIALOG_STACK_PREFIX), {"_id": "", "intents": ["bottom", "top"]})
        await store.set_data(dialog_key(DIALOG_CONTEXT_PREFIX + "top"), {"state": "S:b"})

        assert await store.prune(30 * 86400) == 3

        assert await store.get_data(dialog_key(DIALOG_STACK_PREFIX, chat_id=1)) == {}
        assert await store.get_data(dialog_key(DIALOG_CONTEXT_PREFIX + "old", chat_id=1)) == {}
        assert await store.get_data(dialog_key(DIALOG_CONTEXT_PREFIX + "top", chat_id=3)) == {}
        assert await store.get_state(KEY) == "plain:state"
        assert await store.get_data(dialog_key(DIALOG_STACK_PREFIX)) != {}
        assert await store.get_data(dialog_key(DIALOG_CONTEXT_PREFIX + "bottom")) != {}
        assert await store.get_data(dialog_key(DIALOG_CONTEXT_PREFIX + "top")) != {}
        assert await store.prune(30 * 86400) == 0
    finally:
        await store.close()


# A tiny dialog: two windows and a SwitchTo button each way, plus a nested dialog for the stack and prune tests.
class Main(StatesGroup):
    first = State()
    second = State()


class Nested(StatesGroup):
    only = State()


def build_dispatcher(storage: SQLiteStorage) -> tuple[Dispatcher, MockMessageManager]:
    """Build the bot's routing from scratch, as a freshly started process would."""
    # Dialogs are routers and a router can belong to one parent only, so every Dispatcher gets new instances.
    main = Dialog(
        Window(Const("first"), SwitchTo(Const("Next"), id="next", state=Main.second), state=Main.first),
        Window(
            Const("second"),
            SwitchTo(Const("Back"), id="back", state=Main.first),
            Start(Const("Nested"), id="nested", state=Nested.only),
            Cancel(Const("Close")),
            state=Main.second,
        ),
    )
    nested = Dialog(Window(Const("nested"), Cancel(Const("Close")), state=Nested.only))

    async def start(message: Message, dialog_manager: DialogManager) -> None:
        await dialog_manager.start(Main.first, mode=StartMode.RESET_STACK)

    dp = Dispatcher(storage=storage)
    dp.include_routers(main, nested)
    dp.message.register(start, CommandStart())
    manager = MockMessageManager()
    setup_dialogs(dp, message_manager=manager)
    return dp, manager


async def open_second_window(storage: SQLiteStorage) -> Message:
    """Start the dialog and press "Next"; return the message showing the second window."""
    dp, manager = build_dispatcher(storage)
    client = BotClient(dp)
    await client.send("/start")
    first = manager.one_message()
    assert first.text == "first"
    manager.reset_history()
    callback_id = await client.click(first, InlineButtonTextLocator("Next"))
    manager.assert_answered(callback_id)
    second = manager.one_message()
    assert second.text == "second"
    return second


async def test_dialog_button_works_after_restart(db_path: Path) -> None:
    before = SQLiteStorage(db_path)
    try:
        old_message = await open_second_window(before)
    finally:
        await before.close()

    # Restart: new storage object on the same file, new Dispatcher, new dialogs, new message manager.
    after = SQLiteStorage(db_path)
    try:
        dp, manager = build_dispatcher(after)
        client = BotClient(dp)
        callback_id = await client.click(old_message, InlineButtonTextLocator("Back"))
        manager.assert_answered(callback_id)
        first = manager.one_message()
        assert first.text == "first"
        # And the dialog carries on from there.
        manager.reset_history()
        await client.click(first, InlineButtonTextLocator("Next"))
        assert manager.one_message().text == "second"
    finally:
        await after.close()


async def test_dialog_button_fails_without_the_stored_state(db_path: Path, tmp_path: Path) -> None:
    # Control for the restart test: the same click against an empty file must fail, so the test above really
    # depends on what SQLiteStorage kept.
    before = SQLiteStorage(db_path)
    try:
        old_message = await open_second_window(before)
    finally:
        await before.close()

    empty = SQLiteStorage(tmp_path / "empty.sqlite3")
    try:
        dp, _ = build_dispatcher(empty)
        with pytest.raises(UnknownIntent):
            await BotClient(dp).click(old_message, InlineButtonTextLocator("Back"))
    finally:
        await empty.close()


async def test_closed_dialogs_leave_no_context_rows(db_path: Path) -> None:
    store = SQLiteStorage(db_path)
    try:
        dp, manager = build_dispatcher(store)
        client = BotClient(dp)
        await client.send("/start")
        assert row_count(db_path) == 2  # one stack, one context
        message = manager.one_message()
        manager.reset_history()
        await client.click(message, InlineButtonTextLocator("Next"))
        message = manager.one_message()
        manager.reset_history()
        await client.click(message, InlineButtonTextLocator("Nested"))
        message = manager.one_message()
        assert message.text == "nested"
        assert row_count(db_path) == 3  # the stack now lists two contexts
        manager.reset_history()
        await client.click(message, InlineButtonTextLocator("Close"))
        message = manager.one_message()
        assert message.text == "second"
        assert row_count(db_path) == 2
        manager.reset_history()
        await client.click(message, InlineButtonTextLocator("Close"))
        # Closing the last dialog empties the stack; aiogram-dialog then writes {} for it and its contexts.
        assert row_count(db_path) == 0
    finally:
        await store.close()


async def test_prune_matches_real_dialog_rows(db_path: Path) -> None:
    """The destiny prefixes prune relies on are the ones aiogram-dialog really writes."""
    clock = Clock()
    store = SQLiteStorage(db_path, clock=clock)
    try:
        dp, manager = build_dispatcher(store)
        client = BotClient(dp)
        await client.send("/start")
        message = manager.one_message()
        manager.reset_history()
        await client.click(message, InlineButtonTextLocator("Next"))
        message = manager.one_message()
        manager.reset_history()
        # The nested dialog is saved later than the main one, which is now old but still on the stack.
        clock.now += 10 * 86400
        await client.click(message, InlineButtonTextLocator("Nested"))
        with closing(sqlite3.connect(db_path)) as conn:
            destinies = sorted(row[0] for row in conn.execute("SELECT destiny FROM fsm"))
        assert [d.startswith(DIALOG_CONTEXT_PREFIX) for d in destinies] == [True, True, False]
        assert destinies[-1].startswith(DIALOG_STACK_PREFIX)

        assert await store.prune(86400) == 0  # the old main context is still referenced by the live stack
        clock.now += 2 * 86400
        assert await store.prune(86400) == 3
        assert row_count(db_path) == 0
    finally:
        await store.close()
