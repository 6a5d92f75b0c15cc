"""Wiring: the Bot, the Dispatcher with its storage, middlewares, routers and dialogs, and the polling run."""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import BotCommand, ErrorEvent
from aiogram_dialog import setup_dialogs
from aiogram_dialog.api.exceptions import OutdatedIntent, UnknownIntent, UnknownState

from bot import texts
from bot.config import Config
from bot.handlers import all_routers
from bot.i18n import LanguageMiddleware, PoI18n, build_i18n, locale_for
from bot.middlewares.album import AlbumMiddleware
from bot.middlewares.in_flight import InFlightMiddleware
from bot.stores import Stores, open_stores
from dialogs import all_dialogs
from dialogs.common import AnswerOnceMessageManager

log = logging.getLogger(__name__)

COMMANDS = {
    "en": [BotCommand(command="start", description="What this bot does"),
           BotCommand(command="help", description="How it works, its limits, privacy")],
    "ru": [BotCommand(command="start", description="Что умеет этот бот"),
           BotCommand(command="help", description="Как это работает, ограничения, приватность")],
}  # fmt: skip


def build_bot(config: Config) -> Bot:
    if config.api_url:
        # A server started with --local answers getFile with a path on its own disk, which aiogram then reads.
        session = AiohttpSession(api=TelegramAPIServer.from_base(config.api_url, is_local=config.api_local))
    else:
        session = AiohttpSession()
    return Bot(
        config.bot_token,
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


def error_handlers(i18n: PoI18n):
    """Handlers for updates that failed; they run outside the language middleware, so they set the locale."""

    def speaking(event: ErrorEvent):
        user = event.update.event.from_user if event.update.event is not None else None
        return i18n.context(), i18n.use_locale(locale_for(user))

    async def on_stale_button(event: ErrorEvent) -> None:
        """A button whose dialog is gone (pruned, or from a lost database): say so instead of failing."""
        callback = event.update.callback_query
        if callback is not None:
            context, locale = speaking(event)
            with context, locale:
                await callback.answer(texts.too_old(), show_alert=True)

    async def on_error(event: ErrorEvent) -> None:
        log.error("update %s failed", event.update.update_id, exc_info=event.exception)
        context, locale = speaking(event)
        with context, locale:
            if event.update.message is not None:
                await event.update.message.answer(texts.failed())
            elif event.update.callback_query is not None:
                await event.update.callback_query.answer(texts.failed(), show_alert=True)

    return on_stale_button, on_error


def build_dispatcher(
    config: Config, stores: Stores, analyst, message_manager=None
) -> tuple[Dispatcher, InFlightMiddleware]:
    """The Dispatcher, with the models and stores reachable from every handler by argument name.

    ``message_manager`` replaces aiogram-dialog's (tests pass its ``MockMessageManager``).
    """
    dispatcher = Dispatcher(
        storage=stores.storage,
        config=config,
        analyst=analyst,
        verdicts=stores.verdicts,
        limiter=stores.limiter,
    )
    in_flight = InFlightMiddleware()
    dispatcher.update.outer_middleware(in_flight)
    i18n = build_i18n()
    dispatcher.update.outer_middleware(LanguageMiddleware(i18n))
    # Before aiogram-dialog's middlewares, which handle one update per chat at a time: an album's parts must
    # meet here while they arrive together.
    dispatcher.message.outer_middleware(AlbumMiddleware(stores.albums))
    on_stale_button, on_error = error_handlers(i18n)
    dispatcher.errors.register(on_stale_button, ExceptionTypeFilter(UnknownIntent, OutdatedIntent, UnknownState))
    dispatcher.errors.register(on_error)
    dispatcher.include_routers(*all_routers())
    dispatcher.include_routers(*all_dialogs())
    setup_dialogs(
        dispatcher,
        message_manager=message_manager or AnswerOnceMessageManager(),
        events_isolation=stores.events_isolation,
    )

    async def on_startup(bot: Bot) -> None:
        for language, commands in COMMANDS.items():
            await bot.set_my_commands(commands, language_code=None if language == "en" else language)
        me = await bot.get_me()
        detector = analyst.detector
        log.info("ready: @%s answers; %d members loaded, verdicts on %s", me.username, len(detector.members),
                 "ONNX Runtime" if detector.backend == "onnx" else "TensorFlow")  # fmt: skip

    async def on_shutdown() -> None:
        await in_flight.drain(config.drain_seconds)

    dispatcher.startup.register(on_startup)
    dispatcher.shutdown.register(on_shutdown)
    # aiogram registered its own closing of the FSM storage first; answers still in progress need that storage.
    dispatcher.shutdown.handlers.insert(0, dispatcher.shutdown.handlers.pop())
    return dispatcher, in_flight


async def run(config: Config) -> None:
    """Run the bot in the configured mode until SIGTERM or SIGINT."""
    if config.mode == "webhook":
        from bot.webhook import run_webhook

        await run_webhook(config)
    else:
        await run_polling(config)


async def run_polling(config: Config) -> None:
    """Load everything once, then poll; on SIGTERM or SIGINT the answers in progress are finished first."""
    from bot.analysis import Analyst  # imports TensorFlow: only when the bot really starts

    stores = await open_stores(config)
    analyst = await asyncio.to_thread(
        Analyst.load, config.weights_dir, config.workers, config.queue_limit, config.max_batch, config.onnx_dir
    )
    bot = build_bot(config)
    dispatcher, _in_flight = build_dispatcher(config, stores, analyst)
    try:
        await bot.delete_webhook(drop_pending_updates=False)  # polling and a webhook cannot both be set
        await dispatcher.start_polling(bot, allowed_updates=dispatcher.resolve_used_update_types(), polling_timeout=20)
    finally:
        analyst.close()
        await stores.close()
        log.info("stopped")
