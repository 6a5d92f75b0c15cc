"""The update journal: what is recorded, finished, handed out again after a crash, and given up on."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.types import Update

from bot import journal as journal_module
from bot.journal import MAX_ATTEMPTS, Feeder, FollowUpMiddleware, UpdateJournal


def update(update_id: int, text: str = "hello", album: str | None = None) -> Update:
    message = {
        "message_id": update_id,
        "date": 1_700_000_000,
        "chat": {"id": 7, "type": "private"},
        "from": {"id": 7, "is_bot": False, "first_name": "Ann", "language_code": "ru"},
        "text": text,
    }
    if album is not None:
        message["media_group_id"] = album
    return Update.model_validate({"update_id": update_id, "message": message})


@pytest.fixture
def journal(tmp_path):
    journal = UpdateJournal(tmp_path / "updates.sqlite3")
    yield journal
    journal.close()


async def test_unfinished_updates_come_back_after_a_restart_exactly_as_received(tmp_path, journal):
    assert await journal.record([update(1), update(2, "Привет")]) == [update(1), update(2, "Привет")]
    await journal.finish(1)
    journal.close()

    reopened = UpdateJournal(tmp_path / "updates.sqlite3")
    try:
        bodies = await reopened.unfinished()
        assert [Update.model_validate_json(body) for body in bodies] == [update(2, "Привет")]
        assert await reopened.last_update_id() == 2
    finally:
        reopened.close()


async def test_a_redelivered_update_is_taken_once(journal):
    assert len(await journal.record([update(5)])) == 1
    assert await journal.record([update(5), update(6)]) == [update(6)]
    await journal.finish(5)
    assert await journal.record([update(5)]) == [], "finished, and still remembered"


async def test_an_update_that_never_finishes_is_dropped_after_max_attempts(journal):
    await journal.record([update(9)])
    handed_out = 0
    for _start in range(MAX_ATTEMPTS + 2):
        handed_out += len(await journal.unfinished())
    assert handed_out == MAX_ATTEMPTS - 1, "the first start plus MAX_ATTEMPTS - 1 replays"
    assert await journal.counts() == (1, 0)


class RecordingDispatcher:
    """Stands in for the Dispatcher: remembers what it was fed, and can be told to fail or hang."""

    def __init__(self, fail: bool = False, hang: bool = False, hold: set[int] = frozenset()) -> None:
        self.fed: list[int] = []
        self.fail, self.hang, self.hold = fail, hang, hold
        self.release = asyncio.Event()

    async def feed_update(self, bot, update: Update) -> None:
        self.fed.append(update.update_id)
        if self.hang:
            await asyncio.Event().wait()
        if update.update_id in self.hold:
            await self.release.wait()
        if self.fail:
            raise RuntimeError("handler bug")


async def settle(journal: UpdateJournal, expected: tuple[int, int]) -> None:
    for _ in range(200):
        if await journal.counts() == expected:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"journal counts {await journal.counts()}, expected {expected}")


async def test_feeder_marks_handled_and_failed_updates_finished(journal):
    await Feeder(RecordingDispatcher(), None, journal).take([update(1), update(2)])
    await settle(journal, (2, 0))
    await Feeder(RecordingDispatcher(fail=True), None, journal).take([update(3)])
    await settle(journal, (3, 0))  # the error handler answered; replaying a bug would only fail again


async def test_updates_cut_off_at_shutdown_are_replayed_by_the_next_start(journal):
    feeder = Feeder(RecordingDispatcher(hang=True), None, journal)
    await feeder.take([update(1)])
    await asyncio.sleep(0.05)
    await feeder.cancel()
    assert await journal.counts() == (0, 1)

    again = RecordingDispatcher()
    assert await Feeder(again, None, journal).replay() == 1
    await settle(journal, (1, 0))
    assert again.fed == [1]


async def test_finished_updates_are_forgotten_after_a_while_without_a_restart(journal, monkeypatch):
    monkeypatch.setattr(journal_module, "KEEP_FINISHED_S", 0)
    monkeypatch.setattr(journal_module, "PRUNE_EVERY", 3)
    await journal.record([update(1), update(2)])
    await journal.finish(1)
    await journal.finish(2)
    await journal.record([update(3)])  # the third record: finished rows are pruned
    assert await journal.counts() == (0, 1)


async def test_a_journal_that_cannot_write_does_not_stop_the_answers(tmp_path, caplog):
    broken = UpdateJournal(tmp_path / "updates.sqlite3")
    broken.close()  # every later write raises, as a full disk or a damaged file would
    dispatcher = RecordingDispatcher()
    await Feeder(dispatcher, None, broken).take([update(1)])
    for _ in range(100):
        if dispatcher.fed:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert dispatcher.fed == [1]
    assert "cannot record" in caplog.text and "cannot mark update 1 answered" in caplog.text


async def test_an_albums_parts_finish_together_when_its_answer_is_done(journal):
    """The first part answers for the album and the others return at once (bot.middlewares.album): none of
    them may count as finished before that answer, or a crash would leave a lone part to replay."""
    parts = [update(n, album="g1") for n in (1, 2, 3)]
    dispatcher = RecordingDispatcher(hold={1})  # part 1 is still judging the whole album
    feeder = Feeder(dispatcher, None, journal)
    await feeder.take(parts)
    await asyncio.sleep(0.1)
    assert await journal.counts() == (0, 3)

    await feeder.cancel()  # a stop now leaves the whole album to the next start
    assert len(await journal.unfinished()) == 3

    again = RecordingDispatcher(hold={1})
    second = Feeder(again, None, journal)
    await second.replay()
    await asyncio.sleep(0.1)
    assert await journal.counts() == (0, 3)
    again.release.set()
    await settle(journal, (3, 0))


class FollowingUpDispatcher:
    """Sends its answer from a follow-up task of its own, as aiogram-dialog does when it starts a dialog."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    async def feed_update(self, bot, update: Update) -> None:
        async def follow_up() -> None:
            await FollowUpMiddleware()(self.send, update, {})

        asyncio.get_running_loop().call_soon(lambda: asyncio.create_task(follow_up()))  # context copied

    async def send(self, event: Update, data: dict) -> None:
        await asyncio.sleep(0.5)
        self.sent.append(event.update_id)


async def test_an_update_finishes_after_its_follow_up_and_shutdown_cancels_both(journal):
    dispatcher = FollowingUpDispatcher()
    await Feeder(dispatcher, None, journal).take([update(1)])
    await asyncio.sleep(0.2)
    assert await journal.counts() == (0, 1), "the answer is not sent yet"
    await settle(journal, (1, 0))
    assert dispatcher.sent == [1]

    feeder = Feeder(dispatcher, None, journal)
    await feeder.take([update(2)])
    await asyncio.sleep(0.2)
    await feeder.cancel()
    await asyncio.sleep(0.6)
    assert dispatcher.sent == [1], "nothing is sent after the stop; the next start answers it"
    assert await journal.counts() == (1, 1)
