"""Webhook mode: an aiohttp server that Telegram posts updates to, with health and readiness endpoints.

Order of a run:
  1. the server starts at once, so ``/healthz`` answers while the models load; ``/readyz`` and the webhook
     path answer 503 until they are loaded (Telegram retries a 503 later, nothing is lost);
  2. the models load, the Dispatcher is built, and the webhook is set with ``secret_token``;
  3. on SIGTERM or SIGINT: ``/readyz`` turns 503, the answers in progress are finished (up to
     ``DRAIN_SECONDS``), the webhook is removed (unless replicas share Redis: the others still serve it),
     and the process exits 0.

Requests to the webhook path without Telegram's ``X-Telegram-Bot-Api-Secret-Token`` header, or with a wrong
one, get 401 (compared in constant time). An update is answered 200 only once it is in the journal
(``bot.journal``): a crash after that answers it on the next start.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from urllib.parse import urlsplit

from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from bot.app import build_bot, build_dispatcher, finish_in_flight
from bot.config import Config
from bot.journal import Feeder, UpdateJournal
from bot.stores import open_stores

log = logging.getLogger(__name__)


def webhook_path(config: Config) -> str:
    """The path Telegram posts to: the path of ``WEBHOOK_URL`` (``/webhook`` when it has none)."""
    return urlsplit(config.webhook_url or "").path or "/webhook"


class WebhookServer:
    """The aiohttp application and what it serves; ``handler`` is set once the models are loaded."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.secret = (config.webhook_secret or "").encode()
        self.feeder: Feeder | None = None
        self.ready = False
        self.app = web.Application(client_max_size=2 * 2**20)  # updates are small; Telegram's are far below 2 MB
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/readyz", self.readyz)
        self.app.router.add_post(webhook_path(config), self.update)

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "up"})

    async def readyz(self, _request: web.Request) -> web.Response:
        if self.ready:
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "loading" if self.feeder is None else "stopping"}, status=503)

    async def update(self, request: web.Request) -> web.Response:
        if self.feeder is None or not self.ready:
            return web.json_response({"status": "not ready"}, status=503)
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "").encode()
        if not hmac.compare_digest(given, self.secret):
            return web.Response(status=401, text="Unauthorized")
        try:
            update = Update.model_validate_json(await request.read(), context={"bot": self.feeder.bot})
        except ValidationError:
            return web.Response(status=400, text="not a Telegram update")
        await self.feeder.take([update])  # on disk before Telegram hears 200 and forgets it
        return web.json_response({})


def load_shipped_analyst(config: Config):
    from bot.analysis import Analyst  # imports TensorFlow: only when the bot really starts

    return Analyst.load(config.weights_dir, config.workers, config.queue_limit, config.max_batch, config.onnx_dir)


async def run_webhook(config: Config, load_analyst=load_shipped_analyst, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM or SIGINT (or until ``stop`` is set, when given: tests use that).

    ``load_analyst(config)`` builds the models, in a worker thread.
    """
    server = WebhookServer(config)
    runner = web.AppRunner(server.app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    log.info("listening on %s:%d; %s takes updates once the models are loaded", config.host, config.port,
             webhook_path(config))  # fmt: skip

    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

    stores = analyst = bot = dispatcher = journal = None
    try:
        stores = await open_stores(config)
        journal = UpdateJournal(config.data_dir / "updates.sqlite3")
        loading = asyncio.ensure_future(asyncio.to_thread(load_analyst, config))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            log.info("stopped while loading")
            stopping.cancel()
            analyst = await loading  # a thread cannot be interrupted; let it finish, then close it
            return
        analyst = loading.result()
        bot = build_bot(config)
        dispatcher, in_flight = build_dispatcher(config, stores, analyst)
        server.feeder = Feeder(dispatcher, bot, journal)
        await dispatcher.emit_startup(bot=bot, dispatcher=dispatcher, **dispatcher.workflow_data)
        await server.feeder.replay()
        await bot.set_webhook(
            config.webhook_url,
            secret_token=config.webhook_secret,
            allowed_updates=dispatcher.resolve_used_update_types(),
            drop_pending_updates=False,
        )
        server.ready = True
        log.info("webhook set; serving")
        await stopping
    finally:
        server.ready = False
        if dispatcher is not None:
            log.info("stopping: finishing answers in progress")
            await finish_in_flight(in_flight, server.feeder, config.drain_seconds)
            await dispatcher.emit_shutdown(bot=bot, dispatcher=dispatcher, **dispatcher.workflow_data)
            if stores is not None and not stores.shared:
                await bot.delete_webhook(drop_pending_updates=False)
        await runner.cleanup()
        if bot is not None:
            await bot.session.close()
        if analyst is not None:
            analyst.close()
        if stores is not None:
            await stores.close()
        if journal is not None:
            journal.close()
        log.info("stopped")
