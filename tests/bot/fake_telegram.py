"""A fake Telegram Bot API server for end-to-end tests of the bot.

The server speaks the same HTTP protocol as ``api.telegram.org``: ``POST {base}/bot{token}/{method}`` with
urlencoded, multipart or JSON parameters, answered with ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": ..., "description": ...}``, and ``GET {base}/file/bot{token}/{file_path}`` for
downloads. Point the bot at it with ``TELEGRAM_API_URL=fake.base_url`` (aiogram:
``TelegramAPIServer.from_base(fake.base_url)``).

It runs an aiohttp server on 127.0.0.1 (port chosen by the OS) in a background thread with its own event loop, so
it works the same from synchronous tests, from async tests, and for a bot started as a subprocess. All state is
guarded by one lock; test-side helpers may be called from any thread.

Test-side API in short:

* inputs: :meth:`FakeTelegram.send_text`, :meth:`~FakeTelegram.send_command`, :meth:`~FakeTelegram.send_photo`,
  :meth:`~FakeTelegram.send_document` (and sticker / animation / video / voice), :meth:`~FakeTelegram.press_button`,
  :meth:`~FakeTelegram.push_update` queue updates for ``getUpdates`` and return the update dict;
  :meth:`~FakeTelegram.post_update_to` delivers an update to a webhook instead.
* outputs: :attr:`~FakeTelegram.calls` (every API call, as :class:`Call`), :meth:`~FakeTelegram.calls_of`,
  :meth:`~FakeTelegram.sent_to`, :meth:`~FakeTelegram.file_bytes`, and the waiting helpers
  :meth:`~FakeTelegram.wait_for` (async) / :meth:`~FakeTelegram.wait_for_sync`.
* faults: :meth:`~FakeTelegram.fail_next` and :meth:`~FakeTelegram.delay_next`.

Where it is cheap, the fake is as strict as Telegram: unknown chats, HTML that Telegram cannot parse, over-long
texts, invalid inline buttons, edits of missing or unchanged messages, and stale callback queries are all rejected
with Telegram's error descriptions. It does not produce message entities for formatted text: for
``parse_mode="HTML"`` the stored ``text`` is the text with tags removed; other parse modes are stored verbatim.
"""

from __future__ import annotations

import asyncio
import copy
import email.message
import email.utils
import html
import io
import itertools
import json
import mimetypes
import re
import secrets
import socket
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

# What an administrator's ChatMember carries (all granted in the fake).
_ADMIN_RIGHTS = (
    "can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
    "can_promote_members", "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories",
    "can_delete_stories", "can_send_welcome_messages",
)  # fmt: skip
DEFAULT_TOKEN = "123456:TEST_fake_token_for_end_to_end_tests"
BOT_USERNAME = "fake_detector_bot"
BOT_FIRST_NAME = "Fake Detector"

MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024  # getFile refuses bigger files
MAX_UPLOAD_SIZE = 50 * 1024 * 1024  # multipart uploads over this get 413
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA = 64

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"

# Parameters that are plain strings even when they happen to look like JSON ("42", "true", "[1]").
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "url",
        "secret_token",
        "callback_query_id",
        "inline_message_id",
        "file_id",
        "action",
        "language_code",
        "business_connection_id",
        "message_effect_id",
        "emoji",
        "title",
        "description",
        "short_description",
        "name",
        "query",
        "question",
        "explanation",
        "custom_title",
        "ip_address",
        "photo",
        "document",
        "video",
        "animation",
        "audio",
        "voice",
        "sticker",
        "video_note",
        "thumbnail",
    }
)
_MEDIA_KEYS = ("photo", "video", "animation", "audio", "document", "sticker", "voice", "video_note")
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
        "tg-time",
    }
)
_HTML_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_BUTTON_NON_ACTION_KEYS = frozenset({"text", "style", "icon_custom_emoji_id", "disabled"})
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_FILE_ID_PREFIX = {
    "photo": "AgACAgIAAxkBAAI",
    "document": "BQACAgIAAxkBAAI",
    "sticker": "CAACAgIAAxkBAAI",
    "animation": "CgACAgIAAxkBAAI",
    "video": "BAACAgIAAxkBAAI",
    "voice": "AwACAgIAAxkBAAI",
    "audio": "CQACAgIAAxkBAAI",
    "video_note": "DQACAgIAAxkBAAI",
}
_FOLDERS = {
    "photo": "photos",
    "document": "documents",
    "sticker": "stickers",
    "animation": "animations",
    "video": "videos",
    "voice": "voice",
    "audio": "music",
    "video_note": "video_notes",
}
_IMAGE_SUFFIXES = frozenset({"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "heic"})


class ApiError(Exception):
    """A Telegram error answer. Raise it from a handler given to :meth:`FakeTelegram.set_handler`."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(f"{status} {description}")
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


@dataclass
class Call:
    """One Bot API request as the fake received it.

    ``params`` holds the request parameters with JSON-encoded values (numbers, booleans, objects such as
    ``reply_markup``) decoded; text-like parameters stay strings. ``files`` maps multipart field names to the
    uploaded bytes, ``filenames`` the same names to the file names the client gave. ``status`` and ``response``
    (the ``result`` or the error body) are filled in once the call is answered.
    """

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    time: float
    filenames: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    response: Any = None
    via_webhook: bool = False

    def file(self, ref: str) -> bytes | None:
        """Bytes uploaded for a parameter name (``"photo"``) or an ``"attach://name"`` reference."""
        if ref.startswith("attach://"):
            return self.files.get(ref.removeprefix("attach://"))
        value = self.params.get(ref)
        if isinstance(value, str) and value.startswith("attach://"):
            return self.files.get(value.removeprefix("attach://"))
        return self.files.get(ref)


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_size: int
    width: int | None = None
    height: int | None = None


DOWNLOAD = "file download"  # fail_next(DOWNLOAD, ...) fails downloads from /file/bot<token>/...; "*" does not


@dataclass
class _Fault:
    method: str  # lower case, "*" for any
    status: int | None
    description: str
    retry_after: int | None
    remaining: int
    delay: float


def _default_description(status: int, retry_after: int | None) -> str:
    if status == 429:
        return f"Too Many Requests: retry after {retry_after}"
    return {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden: bot was blocked by the user",
        404: "Not Found",
        409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
        413: "Request Entity Too Large",
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
    }.get(status, f"Error {status}")


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _decode_param(name: str, value: Any) -> Any:
    if not isinstance(value, str) or name in _STRING_PARAMS:
        return value
    try:
        decoded = json.loads(value, parse_constant=_reject_constant)
    except ValueError:
        return value
    return value if isinstance(decoded, str) else decoded


def _parse_form(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, bytes], dict[str, str]]:
    """(fields, files, file names) of an urlencoded or multipart/form-data body.

    Parsed here rather than with aiohttp's multipart reader, which warns (DeprecationWarning, an error under
    pytest) when a body arrives in small pieces.
    """
    header = email.message.Message()
    header["Content-Type"] = content_type or "application/x-www-form-urlencoded"
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    filenames: dict[str, str] = {}
    if header.get_content_type() != "multipart/form-data":
        fields.update(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        return fields, files, filenames
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError("multipart body without a boundary")
    chunks = (b"\r\n" + body).split(b"\r\n--" + boundary.encode())
    if len(chunks) < 2 or not chunks[-1].startswith(b"--"):
        raise ValueError("unterminated multipart body")
    for chunk in chunks[1:-1]:
        head, separator, data = chunk.partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("multipart part without a header block")
        part = email.message.Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, colon, value = line.partition(":")
            if colon:
                part[key.strip()] = value.strip()
        name = part.get_param("name", header="content-disposition")
        if name is None:
            raise ValueError("multipart part without a name")
        name = email.utils.collapse_rfc2231_value(name)
        filename = part.get_filename()
        if filename is not None:
            files[name] = data
            filenames[name] = filename
        else:
            fields[name] = data.decode(part.get_content_charset() or "utf-8")
    return fields, files, filenames


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _html_to_plain(text: str) -> str:
    """Text without tags, as Telegram shows it; raises Telegram's errors for markup it cannot parse."""

    def fail(detail: str, position: int) -> ApiError:
        offset = len(text[:position].encode())
        return _bad_request(f"can't parse entities: {detail} at byte offset {offset}")

    out: list[str] = []
    stack: list[str] = []
    name_re = re.compile(r"[A-Za-z0-9-]*")
    i = 0
    while i < len(text):
        char = text[i]
        if char == "<":
            closing = text.startswith("</", i)
            start = i + (2 if closing else 1)
            name = name_re.match(text, start).group(0)  # type: ignore[union-attr]
            if not name:
                raise fail("Unexpected end of name token", i)
            end = text.find(">", start)
            if end < 0:
                raise fail("Unclosed start tag" if not closing else "Unclosed end tag", i)
            tag = name.lower()
            if closing:
                if not stack:
                    raise fail(f'Unexpected end tag "{name}"', i)
                if stack[-1] != tag:
                    raise fail(f'Unmatched end tag, expected "</{stack[-1]}>", found "</{name}>"', i)
                stack.pop()
            else:
                if tag not in _HTML_TAGS:
                    raise fail(f'Unsupported start tag "{name}"', i)
                stack.append(tag)
            i = end + 1
        elif char == "&":
            match = re.match(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z]+);", text[i:])
            if match and (match.group(1).startswith("#") or match.group(1) in _HTML_NAMED_ENTITIES):
                out.append(html.unescape(match.group(0)))
                i += len(match.group(0))
            else:
                out.append("&")
                i += 1
        else:
            out.append(char)
            i += 1
    if stack:
        raise _bad_request(f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return "".join(out)


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a project dependency
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Exception:  # noqa: BLE001 - any unreadable picture just has no known size
        return None


def _brief(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FakeTelegram:
    """Fake Telegram Bot API server; see the module docstring."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = BOT_USERNAME,
        bot_first_name: str = BOT_FIRST_NAME,
        shutdown_timeout: float = 2.0,
    ) -> None:
        left, sep, right = token.partition(":")
        if not (sep and left.isdigit() and right):
            raise ValueError(f"not a bot token: {token!r}")
        self.token = token
        self.bot_user: dict[str, Any] = {
            "id": int(left),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._shutdown_timeout = shutdown_timeout
        self._lock = threading.RLock()
        self._counter = itertools.count(1)

        self._calls: list[Call] = []
        self._unauthorized: list[Call] = []
        self._downloads: list[str] = []
        self._server_errors: list[str] = []

        self._users: dict[int, dict[str, Any]] = {}
        self._groups: dict[int, dict[str, Any]] = {}  # chat id -> Chat dict (type group or supergroup)
        self._statuses: dict[tuple[int, int], str] = {}  # (chat id, user id) -> getChatMember status
        self._hidden: list[dict[str, Any]] = []  # group messages privacy mode kept from the bot
        self._blocked: set[int] = set()
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._formatting: dict[tuple[int, int], str | None] = {}
        self._bot_sent: list[tuple[int, int]] = []
        self._deleted: set[tuple[int, int]] = set()
        self._next_message_id: dict[int, int] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 700_000_001
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._callback_queries: dict[str, dict[str, Any]] = {}
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._webhook: dict[str, Any] | None = None
        self._faults: list[_Fault] = []
        self._handlers: dict[str, Callable[[Call], Any]] = {}

        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port: int | None = None
        self._started_at = time.time()
        self._wake: asyncio.Event | None = None
        self._closing: asyncio.Event | None = None

        self._builtin: dict[str, Callable[[Call], Any]] = {
            "getme": lambda call: copy.deepcopy(self.bot_user),
            "logout": lambda call: True,
            "close": lambda call: True,
            "deletewebhook": self._delete_webhook,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "sendmediagroup": self._send_media_group,
            "sendchataction": self._send_chat_action,
            "editmessagetext": self._edit_message_text,
            "editmessagecaption": self._edit_message_caption,
            "editmessagemedia": self._edit_message_media,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "answercallbackquery": self._answer_callback_query,
            "getfile": self._get_file,
            "getchatmember": self._get_chat_member,
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeTelegram:
        """Start serving (returns at once when already running).

        The first start binds a port the OS chooses; a start after stop() binds the same port again, so a bot
        process keeps its URL across a simulated outage (OSError in the rare case that the port was taken
        meanwhile).
        """
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self._port or 0))
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(
            target=self._run, args=(sock, ready, failure), name=f"FakeTelegram:{self._port}", daemon=True
        )
        thread.start()
        if not ready.wait(10.0):
            raise RuntimeError("fake Telegram server did not start within 10 s")
        if failure:
            thread.join(10.0)
            raise RuntimeError("fake Telegram server failed to start") from failure[0]
        self._thread = thread
        return self

    def stop(self) -> None:
        """Stop serving and join the server thread. Recorded state stays readable; start() serves it again.

        Pending long polls are answered with an empty list and pending delays end at once.
        """
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._begin_shutdown)
            except RuntimeError:  # the loop closed in between
                pass
        thread.join(self._shutdown_timeout + 10.0)
        if thread.is_alive():
            raise RuntimeError("fake Telegram server thread did not stop")
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeTelegram:  # start() and stop() block only briefly
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: the value for TELEGRAM_API_URL / TelegramAPIServer.from_base."""
        return f"http://127.0.0.1:{self.port}"

    def file_url(self, file_path: str) -> str:
        return f"{self.base_url}/file/bot{self.token}/{file_path}"

    def _run(self, sock: socket.socket, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(sock, ready))
        except BaseException as error:  # noqa: BLE001 - reported to start(), or kept for the tests to see
            if not ready.is_set():
                failure.append(error)
            else:
                with self._lock:
                    self._server_errors.append(f"server loop crashed: {type(error).__name__}: {error}")
        finally:
            sock.close()  # no-op when the server already closed it
            try:
                pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()
                ready.set()

    async def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=MAX_UPLOAD_SIZE + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_download)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown_path)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=self._shutdown_timeout)
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
            ready.set()
            await self._closing.wait()
        finally:
            await runner.cleanup()

    def _begin_shutdown(self) -> None:
        if self._closing is not None:
            self._closing.set()
        if self._wake is not None:
            self._wake.set()

    def _notify(self) -> None:
        """Wake long-polling getUpdates requests (safe from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._set_wake)
        except RuntimeError:  # loop closed concurrently
            pass

    def _set_wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but return early when the server shuts down."""
        assert self._closing is not None
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ HTTP handlers

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes], dict[str, str]]:
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        filenames: dict[str, str] = {}
        if request.method == "POST" and request.can_read_body:
            body = await request.read()  # enforces client_max_size
            if request.content_type == "application/json":
                data = json.loads(body) if body else {}
                if not isinstance(data, dict):
                    raise _bad_request("invalid JSON body")
                raw.update(data)
            else:
                fields, files, filenames = _parse_form(request.headers.get("Content-Type", ""), body)
                raw.update(fields)
        params = {key: _decode_param(key, value) for key, value in raw.items()}
        return params, files, filenames

    async def _handle_method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        authorized = request.match_info["token"] == self.token
        try:
            params, files, filenames = await self._read_params(request)
        except (web.HTTPRequestEntityTooLarge, ApiError, ValueError, aiohttp.ClientError) as error:
            if not authorized:
                params, files, filenames = {}, {}, {}
            elif isinstance(error, web.HTTPRequestEntityTooLarge):
                return web.json_response(ApiError(413, "Request Entity Too Large").payload(), status=413)
            elif isinstance(error, ApiError):
                return web.json_response(error.payload(), status=error.status)
            else:
                body = _bad_request(f"can't parse request: {error}").payload()
                return web.json_response(body, status=400)
        call = Call(method=method, params=params, files=files, time=time.time(), filenames=filenames)
        if not authorized:
            call.status, call.response = 401, ApiError(401, "Unauthorized").payload()
            with self._lock:
                self._unauthorized.append(call)
            return web.json_response(call.response, status=401)
        with self._lock:
            self._calls.append(call)
            fault = self._take_fault(method)
        if fault is not None:
            if fault.delay > 0:
                await self._sleep(fault.delay)
            if fault.status is not None:
                call.status = fault.status
                call.response = ApiError(fault.status, fault.description, fault.retry_after).payload()
                return web.json_response(call.response, status=fault.status)
        status, body = await self._execute(call)
        return web.json_response(body, status=status)

    async def _execute(self, call: Call) -> tuple[int, dict[str, Any]]:
        """Answer a recorded call; fills call.status / call.response."""
        name = call.method.lower()
        try:
            if name == "getupdates" and name not in self._handlers:
                result = await self._get_updates(call)
            else:
                with self._lock:
                    handler = self._handlers.get(name) or self._builtin.get(name)
                    if handler is None:
                        raise ApiError(404, "Not Found: method not found")
                    result = copy.deepcopy(handler(call))
        except ApiError as error:
            call.status, call.response = error.status, error.payload()
            return error.status, call.response
        except Exception as error:  # noqa: BLE001 - a bug in the fake or a test handler: answer 500 and keep it
            text = f"{call.method}: {type(error).__name__}: {error}"
            with self._lock:
                self._server_errors.append(text)
            call.status = 500
            call.response = ApiError(500, f"Internal Server Error: fake server failed: {text}").payload()
            return 500, call.response
        call.status, call.response = 200, result
        return 200, {"ok": True, "result": result}

    async def _handle_download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").payload(), status=401)
        path = request.match_info["path"]
        with self._lock:
            stored = self._files_by_path.get(path)
            self._downloads.append(path)
            fault = self._take_fault(DOWNLOAD, wildcard=False)
        if fault is not None:
            if fault.delay > 0:
                await self._sleep(fault.delay)
            if fault.status is not None:
                return web.json_response(ApiError(fault.status, fault.description).payload(), status=fault.status)
        if stored is None:
            return web.json_response(ApiError(404, "Not Found").payload(), status=404)
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return web.Response(body=stored.data, content_type=content_type)

    async def _handle_unknown_path(self, request: web.Request) -> web.Response:
        return web.json_response(ApiError(404, "Not Found").payload(), status=404)

    # ------------------------------------------------------------------ getUpdates and webhooks

    async def _get_updates(self, call: Call) -> list[dict[str, Any]]:
        params = call.params
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        with self._lock:
            if self._webhook is not None:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
                    "the webhook first",
                )
            allowed = params.get("allowed_updates")
            if isinstance(allowed, list):
                self._allowed_updates = [str(kind) for kind in allowed] or None
            if offset > 0:
                self._updates = [update for update in self._updates if update["update_id"] >= offset]
            elif offset < 0:
                self._updates = self._updates[offset:]
            self._poll_generation += 1
            generation = self._poll_generation
        if self._wake is not None:
            self._wake.set()  # an older long poll of another instance gets its 409
        assert self._loop is not None and self._wake is not None and self._closing is not None
        deadline = self._loop.time() + timeout
        while True:
            with self._lock:
                if generation != self._poll_generation:
                    raise ApiError(409, _default_description(409, None))
                batch = self._select_updates(limit)
            remaining = deadline - self._loop.time()
            if batch or remaining <= 0 or self._closing.is_set():
                return batch
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                pass

    def _select_updates(self, limit: int) -> list[dict[str, Any]]:
        if self._allowed_updates is not None:
            allowed = set(self._allowed_updates)
            self._updates = [u for u in self._updates if any(key in allowed for key in u if key != "update_id")]
        return copy.deepcopy(self._updates[:limit])

    def _set_webhook(self, call: Call) -> bool:
        url = call.params.get("url") or ""
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
        if not url:
            self._webhook = None
            return True
        allowed = call.params.get("allowed_updates")
        self._webhook = {
            "url": url,
            "secret_token": call.params.get("secret_token"),
            "max_connections": int(call.params.get("max_connections") or 40),
            "allowed_updates": allowed if isinstance(allowed, list) else None,
            "ip_address": call.params.get("ip_address"),
        }
        self._poll_generation += 1  # an active long poll ends with a conflict
        self._notify()
        return True

    def _delete_webhook(self, call: Call) -> bool:
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
        self._webhook = None
        return True

    def _get_webhook_info(self, call: Call) -> dict[str, Any]:
        info: dict[str, Any] = {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)}
        if self._webhook is not None:
            info["url"] = self._webhook["url"]
            info["max_connections"] = self._webhook["max_connections"]
            if self._webhook["allowed_updates"]:
                info["allowed_updates"] = self._webhook["allowed_updates"]
        return info

    @property
    def webhook(self) -> dict[str, Any] | None:
        """What setWebhook recorded (url, secret_token, max_connections, allowed_updates), or None."""
        with self._lock:
            return copy.deepcopy(self._webhook)

    # ------------------------------------------------------------------ commands

    @staticmethod
    def _commands_key(call: Call) -> tuple[str, str]:
        scope = call.params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(call.params.get("language_code") or "")

    def _set_my_commands(self, call: Call) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request("commands must be a JSON array")
        if len(commands) > 100:
            raise _bad_request("too many commands")
        for command in commands:
            name = command.get("command", "") if isinstance(command, dict) else ""
            description = command.get("description", "") if isinstance(command, dict) else ""
            if not _COMMAND_RE.fullmatch(name.lstrip("/")) or not 1 <= len(description) <= 256:
                raise _bad_request("BOT_COMMAND_INVALID")
        self._commands[self._commands_key(call)] = [
            {"command": c["command"].lstrip("/"), "description": c["description"]} for c in commands
        ]
        return True

    def _get_my_commands(self, call: Call) -> list[dict[str, Any]]:
        return self._commands.get(self._commands_key(call), [])

    def _delete_my_commands(self, call: Call) -> bool:
        self._commands.pop(self._commands_key(call), None)
        return True

    def commands(self, scope: dict[str, Any] | None = None, language_code: str = "") -> list[dict[str, Any]]:
        """The command list setMyCommands stored for a scope (default scope) and language."""
        key = json.dumps(scope or {"type": "default"}, sort_keys=True), language_code
        with self._lock:
            return copy.deepcopy(self._commands.get(key, []))

    # ------------------------------------------------------------------ sending helpers

    def _chat_for(self, chat_id: Any) -> dict[str, Any]:
        try:
            user_id = int(chat_id)
        except (TypeError, ValueError):
            raise _bad_request("chat not found") from None
        if user_id in self._groups:
            return copy.deepcopy(self._groups[user_id])
        user = self._users.get(user_id)
        if user is None:
            raise _bad_request("chat not found")
        if user_id in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return self._private_chat(user)

    @staticmethod
    def _private_chat(user: dict[str, Any]) -> dict[str, Any]:
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        for key in ("last_name", "username"):
            if user.get(key):
                chat[key] = user[key]
        return chat

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _format(self, value: Any, parse_mode: Any, *, caption: bool) -> tuple[str | None, str | None]:
        """(plain text, formatting signature) for a text or caption; validates it like Telegram."""
        if value is None or value == "":
            if caption:
                return None, None
            raise _bad_request("message text is empty")
        raw = str(value)
        mode = str(parse_mode or "").lower()
        plain = _html_to_plain(raw) if mode == "html" else raw
        if not plain.strip():
            if caption:
                return None, None
            raise _bad_request("message text is empty")
        if caption and _utf16_length(plain) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        if not caption and _utf16_length(plain) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        return plain, (f"{mode}:{raw}" if mode else None)

    @staticmethod
    def _inline_markup(markup: Any) -> dict[str, Any] | None:
        """The inline keyboard to echo in the message (Telegram echoes only inline keyboards), validated."""
        if isinstance(markup, str):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            return None
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise _bad_request("can't parse inline keyboard button: Text must be non-empty")
                if not set(button) - _BUTTON_NON_ACTION_KEYS:
                    raise _bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                    raise _bad_request("BUTTON_DATA_INVALID")
        return {"inline_keyboard": rows} if rows else None

    def _reply_target(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any] | None:
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            message_id, allow_missing = reply.get("message_id"), bool(reply.get("allow_sending_without_reply"))
            if reply.get("chat_id") is not None:
                chat_id = int(reply["chat_id"])
        else:
            message_id = params.get("reply_to_message_id")
            allow_missing = bool(params.get("allow_sending_without_reply"))
        if message_id is None:
            return None
        key = (chat_id, int(message_id))
        if key not in self._messages or key in self._deleted:
            if allow_missing:
                return None
            raise _bad_request("message to be replied not found")
        target = copy.deepcopy(self._messages[key])
        target.pop("reply_to_message", None)
        return target

    def _bot_message(self, call: Call, content: dict[str, Any], formatting: str | None = None) -> dict[str, Any]:
        chat = self._chat_for(call.params.get("chat_id"))
        markup = self._inline_markup(call.params.get("reply_markup"))
        reply = self._reply_target(chat["id"], call.params)
        key = (chat["id"], self._new_message_id(chat["id"]))
        message: dict[str, Any] = {
            "message_id": key[1],
            "from": {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")},
            "chat": chat,
            "date": int(time.time()),
        }
        if reply is not None:
            message["reply_to_message"] = reply
        if call.params.get("message_thread_id") is not None:  # a forum topic
            message.update(message_thread_id=int(call.params["message_thread_id"]), is_topic_message=True)
        message.update(content)
        if markup is not None:
            message["reply_markup"] = markup
        if call.params.get("has_spoiler"):
            message["has_media_spoiler"] = True
        self._messages[key] = message
        self._formatting[key] = formatting
        self._bot_sent.append(key)
        return message

    def _new_file_id(self, kind: str) -> tuple[str, str]:
        prefix = _FILE_ID_PREFIX.get(kind, _FILE_ID_PREFIX["document"])
        return prefix + secrets.token_urlsafe(42), "AQAD" + secrets.token_urlsafe(9)

    def _store_file(
        self,
        data: bytes,
        kind: str,
        suffix: str,
        *,
        file_size: int | None = None,
        size: tuple[int, int] | None = None,
    ) -> _StoredFile:
        file_id, unique_id = self._new_file_id(kind)
        folder = _FOLDERS.get(kind, "documents")
        path = f"{folder}/file_{next(self._counter)}.{suffix.lstrip('.') or 'bin'}"
        stored = _StoredFile(
            file_id=file_id,
            file_unique_id=unique_id,
            file_path=path,
            data=bytes(data),
            file_size=len(data) if file_size is None else file_size,
            width=size[0] if size else None,
            height=size[1] if size else None,
        )
        self._files[file_id] = stored
        self._files_by_path[path] = stored
        return stored

    def _input_file(self, call: Call, value: Any, param: str) -> tuple[_StoredFile | None, bytes | None, str | None]:
        """Resolve an input file parameter to (known file, new upload bytes, upload file name)."""
        if isinstance(value, str) and value.startswith("attach://"):
            name = value.removeprefix("attach://")
            if name not in call.files:
                raise _bad_request(f"wrong file identifier/HTTP URL specified: attach://{name} is not attached")
            return None, call.files[name], call.filenames.get(name)
        if value is None and param in call.files:
            return None, call.files[param], call.filenames.get(param)
        if isinstance(value, str) and value in self._files:
            return self._files[value], None, None
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            raise _bad_request("failed to get HTTP URL content")
        if value is None:
            raise _bad_request(f"there is no {param} in the request")
        raise _bad_request("wrong file identifier/HTTP URL specified")

    def _photo_sizes(self, data: bytes, size: tuple[int, int]) -> list[dict[str, Any]]:
        """One or two PhotoSize dicts (a 320 px thumbnail when the picture is bigger, and the full size)."""
        width, height = size
        dims = []
        if max(width, height) > 320:
            scale = 320 / max(width, height)
            dims.append((max(1, round(width * scale)), max(1, round(height * scale))))
        dims.append((width, height))
        sizes = []
        for w, h in dims:
            stored = self._store_file(data, "photo", "jpg", size=(w, h))
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_size": stored.file_size,
                    "width": w,
                    "height": h,
                }
            )
        return sizes

    def _bot_photo(self, call: Call, value: Any) -> list[dict[str, Any]]:
        known, data, _ = self._input_file(call, value, "photo")
        if known is not None:
            if known.width is None or known.height is None:
                raise _bad_request("wrong file identifier/HTTP URL specified")
            return [self._file_dict(known, width=known.width, height=known.height)]
        assert data is not None
        if not data:
            raise _bad_request("file must be non-empty")
        size = _image_size(data)
        if size is None:
            raise _bad_request("IMAGE_PROCESS_FAILED")
        width, height = size
        if width + height > 10000 or max(width, height) > 20 * min(width, height):
            raise _bad_request("PHOTO_INVALID_DIMENSIONS")
        return self._photo_sizes(data, size)

    @staticmethod
    def _file_dict(stored: _StoredFile, **extra: Any) -> dict[str, Any]:
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            **extra,
        }

    def _bot_document(self, call: Call, value: Any, kind: str = "document") -> dict[str, Any]:
        known, data, filename = self._input_file(call, value, kind)
        if known is not None:
            return self._file_dict(known, file_name=known.file_path.rsplit("/", 1)[-1])
        assert data is not None
        if not data:
            raise _bad_request("file must be non-empty")
        filename = filename or "document"
        mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        suffix = filename.rsplit(".", 1)[-1] if "." in filename else "bin"
        stored = self._store_file(data, kind, suffix, size=_image_size(data))
        return self._file_dict(stored, file_name=filename, mime_type=mime)

    def _caption_content(self, call: Call, params: dict[str, Any] | None = None) -> tuple[dict[str, Any], str | None]:
        params = call.params if params is None else params
        caption, formatting = self._format(params.get("caption"), params.get("parse_mode"), caption=True)
        return ({"caption": caption} if caption is not None else {}), formatting

    # ------------------------------------------------------------------ send* methods

    def _send_message(self, call: Call) -> dict[str, Any]:
        self._chat_for(call.params.get("chat_id"))
        text, formatting = self._format(call.params.get("text"), call.params.get("parse_mode"), caption=False)
        return self._bot_message(call, {"text": text}, formatting)

    def _send_photo(self, call: Call) -> dict[str, Any]:
        self._chat_for(call.params.get("chat_id"))
        content, formatting = self._caption_content(call)
        photo = self._bot_photo(call, call.params.get("photo"))
        return self._bot_message(call, {"photo": photo, **content}, formatting)

    def _send_document(self, call: Call) -> dict[str, Any]:
        self._chat_for(call.params.get("chat_id"))
        content, formatting = self._caption_content(call)
        document = self._bot_document(call, call.params.get("document"))
        return self._bot_message(call, {"document": document, **content}, formatting)

    def _media_content(self, call: Call, media: Any) -> tuple[dict[str, Any], str | None]:
        if not isinstance(media, dict) or "media" not in media:
            raise _bad_request("can't parse InputMedia JSON object")
        kind = media.get("type")
        content, formatting = self._caption_content(call, media)
        if kind == "photo":
            content["photo"] = self._bot_photo(call, media["media"])
        elif kind in ("document", "audio"):
            content[kind] = self._bot_document(call, media["media"], kind)
        elif kind in ("video", "animation"):
            item = self._bot_document(call, media["media"], kind)
            item.update(
                width=int(media.get("width") or 640),
                height=int(media.get("height") or 480),
                duration=int(media.get("duration") or 1),
            )
            content[kind] = item
            if kind == "animation":
                content["document"] = {k: v for k, v in item.items() if k not in ("width", "height", "duration")}
        else:
            raise _bad_request(f"unsupported media type {kind!r}")
        return content, formatting

    def _send_media_group(self, call: Call) -> list[dict[str, Any]]:
        self._chat_for(call.params.get("chat_id"))
        media = call.params.get("media")
        if not isinstance(media, list) or not media:
            raise _bad_request("media must be a non-empty JSON array")
        if len(media) > 10:
            raise _bad_request("too many messages to send as an album")
        group_id = str(secrets.randbelow(9 * 10**17) + 10**17)
        prepared = [self._media_content(call, item) for item in media]
        messages = []
        for content, formatting in prepared:
            messages.append(self._bot_message(call, {"media_group_id": group_id, **content}, formatting))
        return messages

    def _send_chat_action(self, call: Call) -> bool:
        self._chat_for(call.params.get("chat_id"))
        if call.params.get("action") not in _CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        return True

    # ------------------------------------------------------------------ edits, deletes, callbacks

    def _message_key(self, call: Call, *, action: str) -> tuple[int, int]:
        if call.params.get("inline_message_id") is not None:
            raise _bad_request("MESSAGE_ID_INVALID")
        chat = self._chat_for(call.params.get("chat_id"))
        try:
            key = (chat["id"], int(call.params.get("message_id")))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise _bad_request(f"message to {action} not found") from None
        if key not in self._messages or key in self._deleted:
            raise _bad_request(f"message to {action} not found")
        return key

    def _editable(self, call: Call) -> tuple[tuple[int, int], dict[str, Any]]:
        key = self._message_key(call, action="edit")
        message = self._messages[key]
        if message["from"]["id"] != self.bot_user["id"]:
            raise _bad_request("message can't be edited")
        return key, message

    def _apply_edit(
        self,
        key: tuple[int, int],
        message: dict[str, Any],
        content: dict[str, Any],
        drop: tuple[str, ...],
        markup: dict[str, Any] | None,
        formatting: str | None,
    ) -> dict[str, Any]:
        same_content = all(message.get(k) == v for k, v in content.items()) and not any(k in message for k in drop)
        if same_content and message.get("reply_markup") == markup and self._formatting.get(key) == formatting:
            raise _bad_request(NOT_MODIFIED)
        for k in drop:
            message.pop(k, None)
        message.update(content)
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        self._formatting[key] = formatting
        return message

    def _edit_message_text(self, call: Call) -> dict[str, Any]:
        key, message = self._editable(call)
        if "text" not in message:
            raise _bad_request("there is no text in the message to edit")
        text, formatting = self._format(call.params.get("text"), call.params.get("parse_mode"), caption=False)
        markup = self._inline_markup(call.params.get("reply_markup"))
        return self._apply_edit(key, message, {"text": text}, (), markup, formatting)

    def _edit_message_caption(self, call: Call) -> dict[str, Any]:
        key, message = self._editable(call)
        if not any(k in message for k in _MEDIA_KEYS):
            raise _bad_request("there is no caption in the message to edit")
        content, formatting = self._caption_content(call)
        markup = self._inline_markup(call.params.get("reply_markup"))
        drop = () if content else ("caption",)
        return self._apply_edit(key, message, content, drop, markup, formatting)

    def _edit_message_media(self, call: Call) -> dict[str, Any]:
        key, message = self._editable(call)
        if not any(k in message for k in _MEDIA_KEYS):
            raise _bad_request("there is no media in the message to edit")
        media = call.params.get("media")
        content, formatting = self._media_content(call, media)
        markup = self._inline_markup(call.params.get("reply_markup"))
        drop = tuple(k for k in (*_MEDIA_KEYS, "caption") if k in message and k not in content)
        return self._apply_edit(key, message, content, drop, markup, formatting)

    def _edit_message_reply_markup(self, call: Call) -> dict[str, Any]:
        key, message = self._editable(call)
        markup = self._inline_markup(call.params.get("reply_markup"))
        return self._apply_edit(key, message, {}, (), markup, self._formatting.get(key))

    def _delete_message(self, call: Call) -> bool:
        key = self._message_key(call, action="delete")
        self._deleted.add(key)
        return True

    def _answer_callback_query(self, call: Call) -> bool:
        query = self._callback_queries.get(str(call.params.get("callback_query_id")))
        if query is None or query["answer"] is not None:
            raise _bad_request(QUERY_TOO_OLD)
        text = call.params.get("text")
        if text is not None and _utf16_length(str(text)) > 200:
            raise _bad_request("MESSAGE_TOO_LONG")
        query["answer"] = {k: v for k, v in call.params.items() if k != "callback_query_id"}
        return True

    def _get_file(self, call: Call) -> dict[str, Any]:
        stored = self._files.get(str(call.params.get("file_id")))
        if stored is None:
            raise _bad_request("invalid file_id")
        if stored.file_size > MAX_DOWNLOAD_SIZE:
            raise _bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": stored.file_path,
        }

    # ------------------------------------------------------------------ test-side: inputs

    def add_user(
        self,
        user_id: int,
        first_name: str | None = None,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
    ) -> dict[str, Any]:
        """Create or update a user (a private chat with chat id == user id); returns the User dict."""
        with self._lock:
            user = self._users.setdefault(
                user_id, {"id": user_id, "is_bot": False, "first_name": first_name or f"Tester{user_id}"}
            )
            if first_name:
                user["first_name"] = first_name
            for key, value in (("last_name", last_name), ("username", username), ("language_code", language_code)):
                if value is not None:
                    user[key] = value
            return copy.deepcopy(user)

    def block_bot(self, user_id: int, blocked: bool = True) -> None:
        """Make sends to this user fail with 403 "Forbidden: bot was blocked by the user" (or undo it)."""
        with self._lock:
            (self._blocked.add if blocked else self._blocked.discard)(user_id)

    def add_file(self, data: bytes, file_path_suffix: str = "jpg", *, file_size: int | None = None) -> tuple[str, str]:
        """Register a downloadable file; returns (file_id, file_unique_id).

        ``file_size`` overrides the size Telegram reports (e.g. to test the 20 MB getFile limit cheaply).
        """
        suffix = file_path_suffix.lstrip(".").lower()
        kind = "photo" if suffix in _IMAGE_SUFFIXES else "document"
        with self._lock:
            stored = self._store_file(data, kind, suffix, file_size=file_size, size=_image_size(data))
            return stored.file_id, stored.file_unique_id

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes behind a file_id (uploaded by the bot or registered by the test)."""
        with self._lock:
            stored = self._files.get(file_id)
            if stored is None:
                raise KeyError(f"unknown file_id {file_id!r}")
            return stored.data

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update for getUpdates (update_id is assigned when missing); returns it."""
        update = copy.deepcopy(update)
        with self._lock:
            if "update_id" not in update:
                update["update_id"] = self._next_update_id
            self._next_update_id = max(self._next_update_id, int(update["update_id"])) + 1
            self._updates.append(update)
            result = copy.deepcopy(update)
        self._notify()
        return result

    def _user_message(self, user_id: int, language_code: str | None, content: dict[str, Any]) -> dict[str, Any]:
        # language_code None keeps the user's language ("en" for a user seen for the first time).
        with self._lock:
            if user_id not in self._users or language_code is not None:
                self.add_user(user_id, language_code=language_code or "en")
            user = self._users[user_id]
            key = (user_id, self._new_message_id(user_id))
            message = {
                "message_id": key[1],
                "from": copy.deepcopy(user),
                "chat": self._private_chat(user),
                "date": int(time.time()),
                **content,
            }
            self._messages[key] = message
            return self.push_update({"message": message})

    def send_text(self, user_id: int, text: str, language_code: str | None = None) -> dict[str, Any]:
        """A user writes a text message to the bot.

        In all the builders the user's private chat is created on first use (first_name "Tester<id>", language
        "en"); ``language_code`` changes the user's language, None keeps it.
        """
        return self._user_message(user_id, language_code, {"text": text})

    def send_command(
        self, user_id: int, command: str, args: str | None = None, language_code: str | None = None
    ) -> dict[str, Any]:
        """A user sends "/command [args]" (with a bot_command entity)."""
        name = "/" + command.lstrip("/")
        text = f"{name} {args}" if args else name
        entity = {"type": "bot_command", "offset": 0, "length": _utf16_length(name)}
        return self._user_message(user_id, language_code, {"text": text, "entities": [entity]})

    def send_photo(
        self,
        user_id: int,
        data: bytes,
        caption: str | None = None,
        media_group_id: str | None = None,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """A user sends a compressed photo. Sizes are read with Pillow (640x480 when it cannot read them)."""
        with self._lock:
            photo = self._photo_sizes(data, _image_size(data) or (640, 480))
        content: dict[str, Any] = {"photo": photo}
        if caption is not None:
            content["caption"] = caption
        if media_group_id is not None:
            content["media_group_id"] = str(media_group_id)
        return self._user_message(user_id, language_code, content)

    def _user_file(
        self, user_id: int, language_code: str | None, kind: str, data: bytes, suffix: str, extra: dict[str, Any]
    ) -> dict[str, Any]:
        with self._lock:
            stored = self._store_file(data, kind, suffix, size=_image_size(data))
        content: dict[str, Any] = {}
        caption = extra.pop("caption", None)
        media_group_id = extra.pop("media_group_id", None)
        content[kind] = self._file_dict(stored, **{k: v for k, v in extra.items() if v is not None})
        if kind == "animation":  # Telegram sends animations as documents too, for old clients
            doc_keys = ("file_id", "file_unique_id", "file_size", "file_name", "mime_type")
            content["document"] = {k: v for k, v in content[kind].items() if k in doc_keys}
        if caption is not None:
            content["caption"] = caption
        if media_group_id is not None:
            content["media_group_id"] = str(media_group_id)
        return self._user_message(user_id, language_code, content)

    def send_document(
        self,
        user_id: int,
        data: bytes,
        file_name: str = "file.bin",
        mime_type: str | None = None,
        caption: str | None = None,
        media_group_id: str | None = None,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """A user sends a file as a document (uncompressed)."""
        mime_type = mime_type or mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        suffix = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        extra = {"file_name": file_name, "mime_type": mime_type, "caption": caption, "media_group_id": media_group_id}
        return self._user_file(user_id, language_code, "document", data, suffix, extra)

    def send_sticker(
        self,
        user_id: int,
        data: bytes = b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        emoji: str = "\N{GRINNING FACE}",
        *,
        is_animated: bool = False,
        is_video: bool = False,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """A user sends a sticker (static webp by default)."""
        suffix = "tgs" if is_animated else "webm" if is_video else "webp"
        extra = {
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": is_animated,
            "is_video": is_video,
            "emoji": emoji,
        }
        return self._user_file(user_id, language_code, "sticker", data, suffix, extra)

    def send_animation(
        self,
        user_id: int,
        data: bytes = b"GIF89a",
        file_name: str = "animation.mp4",
        mime_type: str = "video/mp4",
        caption: str | None = None,
        *,
        width: int = 320,
        height: int = 240,
        duration: int = 2,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """A user sends a GIF / silent video (the message carries both ``animation`` and ``document``)."""
        extra = {
            "width": width,
            "height": height,
            "duration": duration,
            "file_name": file_name,
            "mime_type": mime_type,
            "caption": caption,
        }
        return self._user_file(user_id, language_code, "animation", data, "mp4", extra)

    def send_video(
        self,
        user_id: int,
        data: bytes = b"\x00\x00\x00\x18ftypmp42",
        caption: str | None = None,
        *,
        file_name: str = "video.mp4",
        mime_type: str = "video/mp4",
        width: int = 640,
        height: int = 360,
        duration: int = 3,
        media_group_id: str | None = None,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """A user sends a video."""
        extra = {
            "width": width,
            "height": height,
            "duration": duration,
            "file_name": file_name,
            "mime_type": mime_type,
            "caption": caption,
            "media_group_id": media_group_id,
        }
        return self._user_file(user_id, language_code, "video", data, "mp4", extra)

    def send_voice(
        self,
        user_id: int,
        data: bytes = b"OggS",
        *,
        duration: int = 2,
        mime_type: str = "audio/ogg",
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """A user sends a voice message."""
        extra = {"duration": duration, "mime_type": mime_type}
        return self._user_file(user_id, language_code, "voice", data, "oga", extra)

    # ------------------------------------------------------------------ test-side: groups

    def add_group(
        self,
        chat_id: int,
        title: str = "Test group",
        *,
        kind: str = "supergroup",
        members: dict[int, str] | None = None,
    ) -> dict[str, Any]:
        """Create a group chat (negative id) with members by status ("creator", "administrator", "member").

        The bot is a plain member unless ``members`` names its id. Users named here are created as needed.
        """
        if chat_id >= 0 or kind not in ("group", "supergroup"):
            raise ValueError("a group needs a negative id and kind group or supergroup")
        with self._lock:
            self._groups[chat_id] = {"id": chat_id, "type": kind, "title": title}
            self._statuses[(chat_id, self.bot_user["id"])] = "member"
            for user_id, status in (members or {}).items():
                self.set_status(chat_id, user_id, status)
            return copy.deepcopy(self._groups[chat_id])

    def set_status(self, chat_id: int, user_id: int, status: str) -> None:
        """A user's (or the bot's) status in a group: creator, administrator, member, left or kicked."""
        if status not in ("creator", "administrator", "member", "left", "kicked"):
            raise ValueError(f"unknown status {status!r}")
        with self._lock:
            if user_id != self.bot_user["id"] and user_id not in self._users:
                self.add_user(user_id)
            self._statuses[(chat_id, user_id)] = status

    def set_privacy(self, on: bool) -> None:
        """BotFather's privacy mode: on, the bot gets only commands, replies to it and mentions in groups."""
        with self._lock:
            self.bot_user["can_read_all_group_messages"] = not on

    @property
    def hidden(self) -> list[dict[str, Any]]:
        """Group messages that privacy mode kept from the bot, oldest first."""
        with self._lock:
            return copy.deepcopy(self._hidden)

    def _get_chat_member(self, call: Call) -> dict[str, Any]:
        chat = self._chat_for(call.params.get("chat_id"))
        try:
            user_id = int(call.params.get("user_id"))
        except (TypeError, ValueError):
            raise _bad_request("user not found") from None
        if user_id == self.bot_user["id"]:
            user = {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")}
        elif user_id in self._users:
            user = copy.deepcopy(self._users[user_id])
        else:
            raise _bad_request("user not found")
        if chat["type"] == "private":
            status = "member" if user_id in (chat["id"], self.bot_user["id"]) else "left"
        else:
            status = self._statuses.get((chat["id"], user_id), "left")
        member: dict[str, Any] = {"status": status, "user": user}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update({name: True for name in _ADMIN_RIGHTS})
            member.update(can_be_edited=False, is_anonymous=False)
        elif status == "kicked":
            member["until_date"] = 0
        return member

    def _sees(self, chat_id: int, message: dict[str, Any]) -> bool:
        """Whether the bot gets a group message, as Telegram decides with privacy mode."""
        if self.bot_user["can_read_all_group_messages"] or "migrate_to_chat_id" in message:  # service messages too
            return True
        if self._statuses.get((chat_id, self.bot_user["id"])) in ("creator", "administrator"):
            return True
        text = message.get("text") or message.get("caption") or ""
        entities = message.get("entities") or message.get("caption_entities") or []
        if any(entity["type"] == "bot_command" for entity in entities):
            return True
        if f"@{self.bot_user['username']}".lower() in text.lower():
            return True
        replied = message.get("reply_to_message") or {}
        return replied.get("from", {}).get("id") == self.bot_user["id"]

    def add_topic(self, chat_id: int, name: str = "Topic", by: int = 1) -> int:
        """User ``by`` opens a forum topic in a group (which becomes a forum); returns its message_thread_id."""
        with self._lock:
            group = self._groups[chat_id]
            group["is_forum"] = True
            if by not in self._users:
                self.add_user(by)
            thread_id = self._new_message_id(chat_id)
            self._messages[(chat_id, thread_id)] = {
                "message_id": thread_id,
                "from": copy.deepcopy(self._users[by]),
                "chat": copy.deepcopy(group),
                "date": int(time.time()),
                "message_thread_id": thread_id,
                "is_topic_message": True,
                "forum_topic_created": {"name": name, "icon_color": 7322096},
            }
            return thread_id

    def group_message(
        self,
        chat_id: int,
        user_id: int,
        content: dict[str, Any],
        *,
        reply_to: dict[str, Any] | int | None = None,
        thread_id: int | None = None,
        anonymous: bool = False,
    ) -> dict[str, Any] | None:
        """A user posts in a group; returns the update, or None when privacy mode keeps it from the bot.

        ``reply_to``: the message (or its id) this one replies to. ``thread_id``: the forum topic it is posted in
        (a message that replies to nothing then replies to the topic's first message, as in Telegram).
        ``anonymous``: an anonymous admin posts: ``from`` is Telegram's GroupAnonymousBot, ``sender_chat`` the group.
        """
        with self._lock:
            if chat_id not in self._groups:
                raise ValueError(f"no group {chat_id}: add_group first")
            if user_id not in self._users:
                self.add_user(user_id)
            key = (chat_id, self._new_message_id(chat_id))
            sender = copy.deepcopy(self._users[user_id])
            if anonymous:
                sender = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
            message = {
                "message_id": key[1],
                "from": sender,
                "chat": copy.deepcopy(self._groups[chat_id]),
                "date": int(time.time()),
                **content,
            }
            if anonymous:
                message["sender_chat"] = copy.deepcopy(self._groups[chat_id])
            if thread_id is not None:
                message.update(message_thread_id=thread_id, is_topic_message=True)
                if reply_to is None:
                    reply_to = thread_id
            if reply_to is not None:
                replied_id = reply_to if isinstance(reply_to, int) else int(reply_to["message_id"])
                replied = copy.deepcopy(self._messages[(chat_id, replied_id)])
                replied.pop("reply_to_message", None)
                message["reply_to_message"] = replied
            self._messages[key] = message
            if not self._sees(chat_id, message):
                self._hidden.append(copy.deepcopy(message))
                return None
            return self.push_update({"message": message})

    def group_photo(
        self,
        chat_id: int,
        user_id: int,
        data: bytes,
        caption: str | None = None,
        *,
        media_group_id: str | None = None,
        reply_to: dict[str, Any] | int | None = None,
        thread_id: int | None = None,
    ) -> dict[str, Any] | None:
        """A user posts a compressed photo in a group (see :meth:`group_message`)."""
        with self._lock:
            content: dict[str, Any] = {"photo": self._photo_sizes(data, _image_size(data) or (640, 480))}
        if caption is not None:
            content["caption"] = caption
            content.update(self._command_entities(caption, "caption_entities"))
        if media_group_id is not None:
            content["media_group_id"] = str(media_group_id)
        return self.group_message(chat_id, user_id, content, reply_to=reply_to, thread_id=thread_id)

    def group_text(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        reply_to: dict[str, Any] | int | None = None,
        thread_id: int | None = None,
        anonymous: bool = False,
    ) -> dict[str, Any] | None:
        """A user writes in a group; a leading /command and @mentions get their entities, as Telegram adds them."""
        content = {"text": text, **self._command_entities(text, "entities")}
        return self.group_message(chat_id, user_id, content, reply_to=reply_to, thread_id=thread_id,
                                  anonymous=anonymous)  # fmt: skip

    @staticmethod
    def _command_entities(text: str, field: str) -> dict[str, Any]:
        entities = []
        for match in re.finditer(r"(?<![\w/@])(/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?|@[A-Za-z0-9_]{5,})", text):
            kind = "bot_command" if match.group(0).startswith("/") else "mention"
            if kind == "bot_command" and match.start() != 0:
                continue  # Telegram makes a command only of a leading /word
            offset = _utf16_length(text[: match.start()])
            entities.append({"type": kind, "offset": offset, "length": _utf16_length(match.group(0))})
        return {field: entities} if entities else {}

    def press_button(
        self,
        user_id: int,
        message: dict[str, Any] | int | Any,
        callback_data: str,
        *,
        check: bool = True,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """A user presses an inline button on a message the bot sent (a message dict, aiogram Message or id).

        The callback_query carries the message as it is now (after edits). With ``check`` (default) the message must
        exist, not be deleted, and have a button with this callback_data; otherwise ValueError.
        """
        if isinstance(message, dict):
            key = (int(message["chat"]["id"]), int(message["message_id"]))
        elif hasattr(message, "message_id"):  # an aiogram Message the test got back from the bot
            key = (int(message.chat.id), int(message.message_id))
        else:
            key = (user_id, int(message))
        with self._lock:
            if user_id not in self._users or language_code is not None:
                self.add_user(user_id, language_code=language_code or "en")
            current = self._messages.get(key)
            if check:
                if current is None or key in self._deleted:
                    raise ValueError(f"message {key} does not exist or was deleted")
                buttons = [b for row in current.get("reply_markup", {}).get("inline_keyboard", []) for b in row]
                if not any(b.get("callback_data") == callback_data for b in buttons):
                    available = [b.get("callback_data") for b in buttons]
                    raise ValueError(f"message {key} has no button {callback_data!r}; it has {available}")
            query_id = str(secrets.randbelow(9 * 10**18) + 10**18)
            query: dict[str, Any] = {
                "id": query_id,
                "from": copy.deepcopy(self._users[user_id]),
                "chat_instance": str(-(10**18) - key[0]),
                "data": callback_data,
            }
            if current is not None:
                query["message"] = copy.deepcopy(current)
            self._callback_queries[query_id] = {"update": query, "answer": None}
            return self.push_update({"callback_query": query})

    def callback_answer(self, query_id: str) -> dict[str, Any] | None:
        """The answerCallbackQuery parameters for a pressed button (text, show_alert, ...), None if unanswered."""
        with self._lock:
            query = self._callback_queries.get(query_id)
            if query is None:
                raise KeyError(f"unknown callback query {query_id!r}")
            return copy.deepcopy(query["answer"])

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        with self._lock:
            return copy.deepcopy(self._updates)

    # ------------------------------------------------------------------ test-side: webhooks

    def post_update_to(
        self, url: str, update: dict[str, Any], secret_token: str | None = None, timeout: float = 30.0
    ) -> int:
        """POST an update to a webhook URL like Telegram does; returns the HTTP status.

        A method that the webhook answers with (aiogram's "reply into webhook") is executed and recorded as a Call
        with ``via_webhook=True``. Do not call this from a running event loop (use post_update_to_async).
        """
        self._refuse_inside_event_loop("post_update_to", "post_update_to_async")
        return self._submit(self._post_update(url, update, secret_token, timeout)).result(timeout + 5.0)

    async def post_update_to_async(
        self, url: str, update: dict[str, Any], secret_token: str | None = None, timeout: float = 30.0
    ) -> int:
        """Async form of post_update_to (the request itself runs on the fake's own loop)."""
        return await asyncio.wrap_future(self._submit(self._post_update(url, update, secret_token, timeout)))

    def _submit(self, coro: Any) -> Any:
        loop = self._loop
        if loop is None or self._thread is None:
            coro.close()
            raise RuntimeError("FakeTelegram is not started")
        return asyncio.run_coroutine_threadsafe(coro, loop)

    async def _post_update(self, url: str, update: dict[str, Any], secret_token: str | None, timeout: float) -> int:
        headers = {"Content-Type": "application/json"}
        if secret_token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret_token
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.post(url, data=json.dumps(update), headers=headers) as response:
                reply = await self._read_webhook_reply(response)
                status = response.status
        if status == 200 and reply is not None:
            await self._execute_webhook_reply(reply)
        return status

    @staticmethod
    async def _read_webhook_reply(response: aiohttp.ClientResponse) -> dict[str, Any] | None:
        if response.status != 200:
            await response.read()
            return None
        body = await response.read()
        if response.content_type == "multipart/form-data":
            fields: dict[str, Any] = _parse_form(response.headers.get("Content-Type", ""), body)[0]
            return fields if "method" in fields else None
        try:
            data = json.loads(body) if body else None
        except ValueError:
            return None
        return data if isinstance(data, dict) and "method" in data else None

    async def _execute_webhook_reply(self, reply: dict[str, Any]) -> None:
        method = str(reply.pop("method"))
        params = {key: _decode_param(key, value) for key, value in reply.items()}
        call = Call(method=method, params=params, files={}, time=time.time(), via_webhook=True)
        with self._lock:
            self._calls.append(call)
        await self._execute(call)

    # ------------------------------------------------------------------ test-side: outputs

    @property
    def calls(self) -> list[Call]:
        """Every authorized API call so far, oldest first (a snapshot)."""
        with self._lock:
            return list(self._calls)

    @property
    def unauthorized_calls(self) -> list[Call]:
        """Calls made with another token (answered 401; not in ``calls``)."""
        with self._lock:
            return list(self._unauthorized)

    @property
    def downloads(self) -> list[str]:
        """file_paths requested from the file endpoint, in order."""
        with self._lock:
            return list(self._downloads)

    @property
    def server_errors(self) -> list[str]:
        """Exceptions raised inside the fake while answering (each was answered with 500)."""
        with self._lock:
            return list(self._server_errors)

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()
            self._unauthorized.clear()
            self._downloads.clear()

    def calls_of(self, method: str) -> list[Call]:
        """Recorded calls of one method (case-insensitive, like Telegram)."""
        name = method.lower()
        return [call for call in self.calls if call.method.lower() == name]

    def sent_to(self, chat_id: int, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Messages the bot sent to a chat, oldest first, as they are now (after edits)."""
        with self._lock:
            return [
                copy.deepcopy(self._messages[key])
                for key in self._bot_sent
                if key[0] == chat_id and (include_deleted or key not in self._deleted)
            ]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """Any stored message (sent by the bot or by a user) as it is now; None when unknown or deleted."""
        with self._lock:
            key = (chat_id, message_id)
            if key in self._deleted:
                return None
            found = self._messages.get(key)
            return copy.deepcopy(found) if found is not None else None

    def is_deleted(self, chat_id: int, message_id: int) -> bool:
        with self._lock:
            return (chat_id, message_id) in self._deleted

    # ------------------------------------------------------------------ test-side: faults and custom methods

    def fail_next(
        self,
        method: str,
        status: int | None = 500,
        description: str | None = None,
        retry_after: int | None = None,
        count: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``count`` calls of ``method`` ("*" = any method; ``DOWNLOAD``: file downloads) fail.

        They are answered with ``status`` and ``description`` (a Telegram-like default per status) after waiting
        ``delay`` seconds. A 429 carries ``parameters.retry_after`` (default 1). ``status=None`` with a delay
        answers normally, only late (see delay_next). Faults queue up in the order given.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        if status is None and delay <= 0:
            raise ValueError("a fault needs a status or a delay")
        if status == 429 and retry_after is None:
            retry_after = 1
        text = description if description is not None else _default_description(status or 500, retry_after)
        fault = _Fault(method.lower(), status, text, retry_after, count, float(delay))
        with self._lock:
            self._faults.append(fault)

    def delay_next(self, method: str, seconds: float, count: int = 1) -> None:
        """Answer the next ``count`` calls of ``method`` normally, but only after ``seconds`` (for timeouts)."""
        self.fail_next(method, status=None, delay=seconds, count=count)

    def _take_fault(self, method: str, wildcard: bool = True) -> _Fault | None:
        name = method.lower()
        for fault in self._faults:
            if fault.method == name or (wildcard and fault.method == "*"):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def set_handler(self, method: str, handler: Callable[[Call], Any] | None) -> None:
        """Answer ``method`` with ``handler(call)`` (its return value is the result; raise ApiError to fail).

        Runs on the server thread under the fake's lock; None restores the built-in behaviour.
        """
        with self._lock:
            if handler is None:
                self._handlers.pop(method.lower(), None)
            else:
                self._handlers[method.lower()] = handler

    # ------------------------------------------------------------------ test-side: waiting

    def describe_calls(self, last: int = 20) -> str:
        """A readable dump of the most recent calls (used in timeout messages)."""
        calls = self.calls[-last:]
        lines = []
        for call in calls:
            params = ", ".join(f"{key}={_brief(value, 60)}" for key, value in call.params.items())
            files = "".join(f" +{name}<{len(data)} bytes>" for name, data in call.files.items())
            answer = ""
            if call.status is not None and call.status != 200 and isinstance(call.response, dict):
                answer = f" {call.response.get('description')!r}"
            lines.append(
                f"  +{call.time - self._started_at:8.3f}s {call.method}({params}){files} -> {call.status}{answer}"
            )
        total = len(self.calls)
        header = f"last {len(calls)} of {total} calls:" if total else "no calls recorded"
        extra = [f"  server error: {error}" for error in self.server_errors]
        if pending := self.pending_updates:
            extra.append(f"  {len(pending)} update(s) still pending in getUpdates")
        return "\n".join([header, *lines, *extra])

    def _timeout_error(self, timeout: float, what: str | None, predicate: Any) -> AssertionError:
        target = what or getattr(predicate, "__name__", repr(predicate))
        return AssertionError(f"timed out after {timeout:.1f}s waiting for {target}\n{self.describe_calls()}")

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 5.0, *, interval: float = 0.02, what: str | None = None
    ) -> Any:
        """Poll ``predicate()`` until it returns something truthy and return that; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise self._timeout_error(timeout, what, predicate)
            await asyncio.sleep(interval)

    def wait_for_sync(
        self, predicate: Callable[[], Any], timeout: float = 5.0, *, interval: float = 0.02, what: str | None = None
    ) -> Any:
        """Blocking form of wait_for, for synchronous tests (refused inside a running event loop)."""
        self._refuse_inside_event_loop("wait_for_sync", "wait_for")
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise self._timeout_error(timeout, what, predicate)
            time.sleep(interval)

    def _call_matcher(self, method: str, where: Callable[[Call], bool] | None, after: int) -> Callable[[], Any]:
        def found() -> Call | None:
            for call in self.calls_of(method)[after:]:
                if call.status is not None and (where is None or where(call)):
                    return call
            return None

        return found

    async def wait_for_call(
        self, method: str, where: Callable[[Call], bool] | None = None, timeout: float = 5.0, *, after: int = 0
    ) -> Call:
        """Wait until a call of ``method`` (optionally matching ``where``) has been answered; returns it.

        ``after`` skips that many earlier calls of the method (pass ``len(fake.calls_of(method))``).
        """
        return await self.wait_for(self._call_matcher(method, where, after), timeout, what=f"a {method} call")

    def wait_for_call_sync(
        self, method: str, where: Callable[[Call], bool] | None = None, timeout: float = 5.0, *, after: int = 0
    ) -> Call:
        """Blocking form of wait_for_call."""
        return self.wait_for_sync(self._call_matcher(method, where, after), timeout, what=f"a {method} call")

    @staticmethod
    def _refuse_inside_event_loop(name: str, alternative: str) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        raise RuntimeError(f"{name}() would block the running event loop; use `await fake.{alternative}(...)`")
