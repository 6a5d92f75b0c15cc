"""The fake Telegram Bot API server, driven by a real aiogram Bot over HTTP."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.bot.fake_telegram import DEFAULT_TOKEN, FakeTelegram
from tests.images import encode, photo_like

USER = 1001


def _server_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("FakeTelegram")]


@pytest.fixture
def fake():
    with FakeTelegram() as server:
        yield server
    assert not server.running
    assert not _server_threads(), "the server thread outlived stop()"
    assert server.server_errors == []


def _make_bot(fake: FakeTelegram, token: str = DEFAULT_TOKEN) -> Bot:
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))


@pytest.fixture
async def bot(fake):
    bot = _make_bot(fake)
    yield bot
    await bot.session.close()


def _png(width: int = 400, height: int = 300) -> bytes:
    return encode(photo_like(width, height), "PNG")


def _keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=d.title(), callback_data=d) for d in data]])


def _raw_post(url: str, fields: dict[str, str] | None = None) -> tuple[int, dict]:
    body = urllib.parse.urlencode(fields or {}).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


async def test_get_me_describes_the_bot(fake, bot):
    me = await bot.get_me()
    assert me.id == 123456 and me.is_bot
    assert me.username == "fake_detector_bot"
    assert me.can_join_groups is True
    assert [call.method for call in fake.calls] == ["getMe"]


async def test_send_message_echoes_inline_keyboard_and_records_decoded_params(fake, bot):
    fake.add_user(USER, "Ann")
    sent = await bot.send_message(USER, "Pick one", reply_markup=_keyboard("yes", "no"))
    second = await bot.send_message(USER, "42")

    assert sent.message_id == 1 and second.message_id == 2
    assert sent.chat.id == USER and sent.from_user.id == 123456
    assert sent.reply_markup.inline_keyboard[0][1].callback_data == "no"
    (call, _) = fake.calls_of("sendmessage")
    assert call.params["chat_id"] == USER
    assert call.params["reply_markup"]["inline_keyboard"][0][0] == {"text": "Yes", "callback_data": "yes"}
    assert fake.calls_of("sendMessage")[1].params["text"] == "42"  # text stays a string
    assert [m["text"] for m in fake.sent_to(USER)] == ["Pick one", "42"]


async def test_message_ids_count_per_chat_and_include_user_messages(fake, bot):
    fake.send_text(USER, "hi")
    fake.add_user(2002)
    assert (await bot.send_message(USER, "a")).message_id == 2
    assert (await bot.send_message(2002, "b")).message_id == 1


async def test_send_to_unknown_or_blocking_chat_fails_like_telegram(fake, bot):
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999, "anyone?")
    fake.add_user(USER)
    fake.block_bot(USER)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER, "hello")


async def test_html_that_telegram_cannot_parse_is_rejected(fake, bot):
    fake.add_user(USER)
    ok = await bot.send_message(USER, "<b>AI</b> &lt;97%&gt; &amp; more", parse_mode="HTML")
    assert ok.text == "AI <97%> & more"
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "br"'):
        await bot.send_message(USER, "line<br>line", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER, "<b>unclosed", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, "x" * 4097)


async def test_send_photo_records_uploaded_bytes(fake, bot):
    fake.add_user(USER)
    data = _png(400, 300)
    sent = await bot.send_photo(USER, BufferedInputFile(data, "heatmap.png"), caption="Heatmap")

    assert sent.caption == "Heatmap"
    assert [(size.width, size.height) for size in sent.photo] == [(320, 240), (400, 300)]
    assert len({size.file_id for size in sent.photo}) == 2
    (call,) = fake.calls_of("sendPhoto")
    assert call.file("photo") == data
    assert call.filenames == {call.params["photo"].removeprefix("attach://"): "heatmap.png"}
    assert fake.file_bytes(sent.photo[-1].file_id) == data

    again = await bot.send_photo(USER, sent.photo[-1].file_id)  # resending by file_id needs no upload
    assert again.photo[0].file_id == sent.photo[-1].file_id
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(USER, BufferedInputFile(b"not a picture", "x.png"))


async def test_send_document_and_media_group(fake, bot):
    fake.add_user(USER)
    doc = await bot.send_document(USER, BufferedInputFile(b'{"p": 0.9}', "report.json"), caption="raw")
    assert doc.document.file_name == "report.json" and doc.document.mime_type == "application/json"
    assert fake.file_bytes(doc.document.file_id) == b'{"p": 0.9}'

    first, second = _png(100, 80), _png(90, 60)
    album = await bot.send_media_group(
        USER,
        [
            InputMediaPhoto(media=BufferedInputFile(first, "a.png"), caption="original"),
            InputMediaPhoto(media=BufferedInputFile(second, "b.png")),
        ],
    )
    assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id
    assert album[0].caption == "original" and [m.message_id for m in album] == [2, 3]
    (call,) = fake.calls_of("sendMediaGroup")
    assert [call.file(item["media"]) for item in call.params["media"]] == [first, second]


async def test_get_file_and_download(fake, bot):
    data = _png(64, 64)
    file_id, unique_id = fake.add_file(data, "png")
    file = await bot.get_file(file_id)
    assert file.file_unique_id == unique_id and file.file_size == len(data)
    assert file.file_path.endswith(".png")

    downloaded = await bot.download(file_id)
    assert isinstance(downloaded, io.BytesIO) and downloaded.getvalue() == data
    assert fake.downloads == [file.file_path]

    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")
    big_id, _ = fake.add_file(b"x", "jpg", file_size=21 * 1024 * 1024)
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(big_id)


async def test_user_photo_update_points_at_downloadable_bytes(fake, bot):
    data = _png(800, 600)
    update = fake.send_photo(USER, data, caption="real?", language_code="ru")
    message = update["message"]
    assert message["chat"] == {"id": USER, "type": "private", "first_name": f"Tester{USER}"}
    assert message["from"]["language_code"] == "ru"
    assert [(p["width"], p["height"]) for p in message["photo"]] == [(320, 240), (800, 600)]

    (received,) = await bot.get_updates()
    assert received.message.caption == "real?"
    downloaded = await bot.download(received.message.photo[-1].file_id)
    assert downloaded.getvalue() == data


async def test_get_updates_offset_confirms_and_long_polls(fake, bot):
    u1 = fake.send_text(USER, "one")
    fake.send_command(USER, "start", "deep-link")
    fake.send_document(USER, b"%PDF-1.4", "scan.pdf")

    updates = await bot.get_updates()
    assert [u.update_id for u in updates] == [u1["update_id"] + i for i in range(3)]
    assert updates[1].message.text == "/start deep-link"
    assert updates[1].message.entities[0].type == "bot_command"
    assert updates[2].message.document.mime_type == "application/pdf"
    assert len(await bot.get_updates(limit=2)) == 2  # unconfirmed updates come again

    assert [u.update_id for u in await bot.get_updates(offset=updates[2].update_id)] == [updates[2].update_id]
    assert len(fake.pending_updates) == 1
    assert await bot.get_updates(offset=updates[2].update_id + 1) == []
    assert fake.pending_updates == []

    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == []
    assert time.monotonic() - started >= 0.9

    poll = asyncio.create_task(bot.get_updates(offset=updates[2].update_id + 1, timeout=10))
    try:
        await fake.wait_for(lambda: len(fake.calls_of("getUpdates")) == 6)  # recorded while still unanswered
        await asyncio.sleep(0.1)
        assert not poll.done()
        started = time.monotonic()
        threading.Timer(0.1, fake.send_text, args=(USER, "late")).start()
        (late,) = await poll
        assert late.message.text == "late" and time.monotonic() - started < 5
    finally:
        poll.cancel()


async def test_every_update_builder_parses_as_an_aiogram_update(fake, bot):
    fake.add_user(USER, "Ann", username="ann", language_code="de")
    fake.send_sticker(USER)
    fake.send_animation(USER, caption="gif")
    fake.send_video(USER, caption="clip", media_group_id="g1")
    fake.send_photo(USER, b"broken jpeg", media_group_id="g1", language_code=None)
    fake.send_voice(USER)
    fake.push_update({"edited_message": {"message_id": 99, "date": 0, "chat": {"id": USER, "type": "private"}}})

    updates = await bot.get_updates()
    sticker, animation, video, photo, voice, raw = (u.event for u in updates)
    assert sticker.sticker.type == "regular" and sticker.sticker.file_id.startswith("CAAC")
    assert animation.animation.duration == 2 and animation.document.file_id == animation.animation.file_id
    assert video.media_group_id == photo.media_group_id == "g1"
    assert [(p.width, p.height) for p in photo.photo] == [(320, 240), (640, 480)]  # unreadable picture
    assert photo.from_user.language_code == "de" and photo.chat.username == "ann"
    assert voice.voice.mime_type == "audio/ogg"
    assert raw.message_id == 99 and updates[-1].update_id == updates[-2].update_id + 1
    assert (await bot.download(voice.voice.file_id)).getvalue() == b"OggS"


async def test_second_poller_terminates_the_first_with_conflict(fake, bot):
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await fake.wait_for(lambda: fake.calls_of("getUpdates"))
    other = _make_bot(fake)
    try:
        second = asyncio.create_task(other.get_updates(timeout=1))
        with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
            await first
        assert await second == []
    finally:
        await other.session.close()


async def test_edits_follow_telegram_rules(fake, bot):
    fake.add_user(USER)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=USER, message_id=77)

    sent = await bot.send_message(USER, "Analysing…", reply_markup=_keyboard("cancel"))
    edited = await bot.edit_message_text(text="Done", chat_id=USER, message_id=sent.message_id)
    assert edited.text == "Done" and edited.edit_date is not None
    assert edited.reply_markup is None  # an edit without reply_markup drops the keyboard, as in Telegram
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(text="Done", chat_id=USER, message_id=sent.message_id)
    await bot.edit_message_reply_markup(chat_id=USER, message_id=sent.message_id, reply_markup=_keyboard("again"))
    assert fake.sent_to(USER)[-1]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "again"
    with pytest.raises(TelegramBadRequest, match="there is no caption"):
        await bot.edit_message_caption(chat_id=USER, message_id=sent.message_id, caption="c")

    photo = await bot.send_photo(USER, BufferedInputFile(_png(), "a.png"), caption="v1")
    await bot.edit_message_caption(chat_id=USER, message_id=photo.message_id, caption="v2")
    replacement = _png(50, 40)
    media = InputMediaPhoto(media=BufferedInputFile(replacement, "b.png"), caption="v3")
    changed = await bot.edit_message_media(media=media, chat_id=USER, message_id=photo.message_id)
    assert changed.caption == "v3" and fake.file_bytes(changed.photo[-1].file_id) == replacement

    assert await bot.delete_message(USER, sent.message_id) is True
    assert [m["message_id"] for m in fake.sent_to(USER)] == [photo.message_id]
    assert fake.is_deleted(USER, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(USER, sent.message_id)


async def test_button_press_and_callback_answer(fake, bot):
    sent = await bot.send_message(fake.add_user(USER)["id"], "Verdict", reply_markup=_keyboard("why"))
    update = fake.press_button(USER, sent, "why")
    with pytest.raises(ValueError, match="no button 'how'"):
        fake.press_button(USER, sent.message_id, "how")

    (received,) = await bot.get_updates()
    query = received.callback_query
    assert query.data == "why" and query.message.message_id == sent.message_id
    assert query.id == update["callback_query"]["id"]
    assert await bot.answer_callback_query(query.id, text="Computing…") is True
    assert fake.callback_answer(query.id) == {"text": "Computing…"}
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)


async def test_commands_webhook_info_and_chat_action(fake, bot):
    fake.add_user(USER)
    await bot.set_my_commands([BotCommand(command="start", description="Start")], language_code="ru")
    assert [c.command for c in await bot.get_my_commands(language_code="ru")] == ["start"]
    assert await bot.get_my_commands() == []
    assert fake.commands(language_code="ru") == [{"command": "start", "description": "Start"}]
    await bot.delete_my_commands(language_code="ru")
    assert fake.commands(language_code="ru") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Start", description="Start")])

    assert await bot.send_chat_action(USER, "upload_photo") is True
    assert await bot.delete_webhook(drop_pending_updates=True) is True
    assert (await bot.get_webhook_info()).url == ""
    assert await bot.log_out() is True and await bot.close() is True


async def test_retry_after_server_errors_and_unknown_methods(fake, bot):
    fake.fail_next("getMe", status=429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.get_me()
    assert caught.value.retry_after == 7
    assert (await bot.get_me()).id == 123456  # only the next call fails

    fake.fail_next("*", status=502, count=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError, match="Bad Gateway"):
            await bot.get_me()
    assert [c.status for c in fake.calls_of("getMe")] == [429, 200, 502, 502]

    status, body = _raw_post(f"{fake.base_url}/bot{fake.token}/sendSticker")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})
    with pytest.raises(TelegramNotFound):
        await bot.get_chat(USER)


async def test_delayed_answer_makes_the_client_time_out(fake, bot):
    fake.delay_next("getMe", 5)  # stop() cuts the server-side wait short
    started = time.monotonic()
    with pytest.raises(TelegramNetworkError, match="Request timeout error"):
        await bot.get_me(request_timeout=1)
    assert time.monotonic() - started < 4
    assert (await bot.get_me()).username == "fake_detector_bot"


async def test_wrong_token_is_unauthorized(fake):
    other = _make_bot(fake, token="654321:" + "B" * 35)
    try:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await other.get_me()
    finally:
        await other.session.close()
    assert fake.calls == []
    assert [c.method for c in fake.unauthorized_calls] == ["getMe"]


async def test_webhook_delivery_and_reply_into_webhook(fake, bot):
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def pong(message: Message):
        return message.answer(f"pong: {message.text}")  # returned, so aiogram replies inside the webhook response

    app = web.Application()
    SimpleRequestHandler(dispatcher, bot, handle_in_background=False, secret_token="s3cret").register(app, "/hook")
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("/hook"))
        await bot.set_webhook(url, secret_token="s3cret")
        assert fake.webhook["url"] == url and fake.webhook["secret_token"] == "s3cret"
        assert (await bot.get_webhook_info()).url == url
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()

        update = fake.send_text(USER, "ping")
        assert await fake.post_update_to_async(url, update, secret_token="wrong") == 401
        assert await fake.post_update_to_async(url, update, secret_token="s3cret") == 200
        call = await fake.wait_for_call("sendMessage")
        assert call.via_webhook and call.params == {"chat_id": USER, "text": "pong: ping"}
        assert fake.sent_to(USER)[-1]["text"] == "pong: ping"
    finally:
        await server.close()


def test_sync_use_and_wait_for_timeout_dump():
    with FakeTelegram() as fake:
        assert _server_threads()
        fake.add_user(USER)
        status, body = _raw_post(f"{fake.base_url}/bot{fake.token}/sendMessage", {"chat_id": str(USER), "text": "hi"})
        assert status == 200 and body["result"]["text"] == "hi"
        assert fake.wait_for_sync(lambda: fake.sent_to(USER))[0]["message_id"] == 1

        with pytest.raises(AssertionError) as caught:
            fake.wait_for_sync(lambda: fake.calls_of("sendPhoto"), timeout=0.2, what="the verdict photo")
        message = str(caught.value)
        assert "timed out after 0.2s waiting for the verdict photo" in message
        assert f"sendMessage(chat_id={USER}, text='hi') -> 200" in message
        update = fake.send_text(USER, "to a webhook")
        assert fake.post_update_to(f"{fake.base_url}/no-such-hook", update, secret_token="s") == 404
    assert not _server_threads()
    assert fake.calls_of("sendMessage")[0].params == {"chat_id": USER, "text": "hi"}  # state outlives stop()

    url = fake.base_url
    with fake:  # a restart serves the same URL again
        assert fake.base_url == url
        assert _raw_post(f"{url}/bot{fake.token}/getMe")[1]["result"]["username"] == "fake_detector_bot"
    assert not _server_threads()
    with pytest.raises(RuntimeError, match="not started"):
        _ = FakeTelegram().base_url


async def test_sync_helpers_refuse_to_block_a_running_loop(fake):
    with pytest.raises(RuntimeError, match="use `await fake.wait_for"):
        fake.wait_for_sync(lambda: True)


def test_multipart_arriving_in_small_pieces_is_parsed(fake):
    fake.add_user(USER)
    payload = b"line one\r\n\r\n--b0un not a boundary\r\n\x00\xff"
    body = (
        b'--b0undary\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n1001\r\n'
        b'--b0undary\r\nContent-Disposition: form-data; name="caption"\r\n\r\n\xc3\xa9t\xc3\xa9\r\n'
        b'--b0undary\r\nContent-Disposition: form-data; name="document"; filename="notes.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + payload + b"\r\n--b0undary--\r\n"
    )
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        connection.putrequest("POST", f"/bot{fake.token}/sendDocument")
        connection.putheader("Content-Type", "multipart/form-data; boundary=b0undary")
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        for start in range(0, len(body), 7):
            connection.send(body[start : start + 7])
            time.sleep(0.002)
        response = connection.getresponse()
        result = json.loads(response.read())["result"]
    finally:
        connection.close()
    assert result["caption"] == "\u00e9t\u00e9" and result["document"]["file_name"] == "notes.txt"
    (call,) = fake.calls_of("sendDocument")
    assert call.file("document") == payload and call.filenames == {"document": "notes.txt"}
    assert fake.file_bytes(result["document"]["file_id"]) == payload


def test_stop_while_a_long_poll_is_pending_is_quick():
    fake = FakeTelegram().start()
    result: dict = {}

    def poll():
        result["answer"] = _raw_post(f"{fake.base_url}/bot{fake.token}/getUpdates", {"timeout": "30"})

    poller = threading.Thread(target=poll)
    poller.start()
    fake.wait_for_sync(lambda: fake.calls_of("getUpdates"))
    started = time.monotonic()
    fake.stop()
    poller.join(5)
    assert time.monotonic() - started < 3
    assert result["answer"] == (200, {"ok": True, "result": []})
    assert not _server_threads()
