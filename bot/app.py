"""Wiring: the Bot, the Dispatcher with its storage, middlewares, routers and dialogs, and the polling run.

Webhook mode (``bot.webhook``) builds on this module; ``python -m bot`` picks one of the two.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import BotCommand, BotCommandScopeAllGroupChats, BotCommandScopeDefault, ErrorEvent
from aiogram_dialog import setup_dialogs
from aiogram_dialog.api.exceptions import OutdatedIntent, UnknownIntent, UnknownState

from bot import texts
from bot.api_retry import RetryMiddleware
from bot.config import Config
from bot.handlers import all_routers
from bot.i18n import LanguageMiddleware, PoI18n, build_i18n, locale_for
from bot.journal import Feeder, FollowUpMiddleware, UpdateJournal
from bot.members import ChatMembers, OncePerChat
from bot.middlewares.album import AlbumMiddleware
from bot.middlewares.in_flight import InFlightMiddleware
from bot.middlewares.members_only import MembersOnlyMiddleware
from bot.polling import poll
from bot.stores import Stores, open_stores
from dialogs import all_dialogs
from dialogs.common import AnswerOnceMessageManager

log = logging.getLogger(__name__)

# The command menu: (scope, language) -> commands. Private chats get the default scope; groups their own list.
COMMANDS = {
    (BotCommandScopeDefault(), "en"): [
        BotCommand(command="start", description="What this bot does"),
        BotCommand(command="help", description="How it works, its limits, privacy"),
    ],
    (BotCommandScopeDefault(), "ru"): [
        BotCommand(command="start", description="Что умеет этот бот"),
        BotCommand(command="help", description="Как это работает, ограничения, приватность"),
    ],
    (BotCommandScopeAllGroupChats(), "en"): [
        BotCommand(command="check", description="Reply to a picture: made by AI or by a person?"),
        BotCommand(command="auto", description="Admins: on / off, answer FAKE pictures unasked"),
        BotCommand(command="help", description="How to use the bot in this chat"),
    ],
    (BotCommandScopeAllGroupChats(), "ru"): [
        BotCommand(command="check", description="Ответом на картинку: сделала нейросеть или человек?"),
        BotCommand(command="auto", description="Для админов: on / off, сам отвечать на FAKE-картинки"),
        BotCommand(command="help", description="Как пользоваться ботом в этом чате"),
    ],
}


def build_bot(config: Config) -> Bot:
    """The Bot, its calls retried when Telegram says 429 or 5xx or does not answer in ``api_timeout`` s."""
    if config.api_url:
        # A server started with --local answers getFile with a path on its own disk, which aiogram then reads.
        api = TelegramAPIServer.from_base(config.api_url, is_local=config.api_local)
        session = AiohttpSession(api=api, timeout=config.api_timeout)
    else:
        session = AiohttpSession(timeout=config.api_timeout)
    session.middleware(RetryMiddleware())
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

    async def on_error(event: ErrorEvent, bot: Bot) -> None:
        log.error("update %s failed", event.update.update_id, exc_info=event.exception)
        context, locale = speaking(event)
        follow_up = getattr(event.update, "aiogd_update", None)  # aiogram-dialog showing a dialog, e.g. a verdict
        with context, locale:
            if event.update.message is not None:
                await event.update.message.answer(texts.failed())
            elif event.update.callback_query is not None:
                await event.update.callback_query.answer(texts.failed(), show_alert=True)
            elif follow_up is not None and follow_up.chat is not None:
                await bot.send_message(follow_up.chat.id, texts.failed())

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
        chat_settings=stores.chat_settings,
        feedback=stores.feedback,
        members=ChatMembers(),
        refusals=OncePerChat(),
    )
    in_flight = InFlightMiddleware()
    dispatcher.update.outer_middleware(in_flight)
    dispatcher.update.outer_middleware(FollowUpMiddleware())
    i18n = build_i18n()
    dispatcher.update.outer_middleware(LanguageMiddleware(i18n))
    # Before aiogram-dialog's middlewares, which handle one update per chat at a time: an album's parts must
    # meet here while they arrive together.
    dispatcher.message.outer_middleware(AlbumMiddleware(stores.albums))
    dispatcher.callback_query.outer_middleware(MembersOnlyMiddleware())  # before aiogram-dialog loads a dialog
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
        for (scope, language), commands in COMMANDS.items():
            await bot.set_my_commands(commands, scope=scope, language_code=None if language == "en" else language)
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


async def finish_in_flight(in_flight: InFlightMiddleware, feeder: Feeder, seconds: float) -> None:
    """Let the answers in progress finish for up to ``seconds``; cut off the rest, which stay in the journal."""
    await in_flight.drain(seconds)
    await feeder.cancel()


async def serve_polling(
    bot: Bot,
    dispatcher: Dispatcher,
    in_flight: InFlightMiddleware,
    journal: UpdateJournal | None,
    stop: asyncio.Event,
    *,
    drain_seconds: float = 20,
    polling_timeout: int = 20,
) -> None:
    """Poll until ``stop`` is set: start-up hooks, the updates an earlier run left unanswered, then new ones."""
    feeder = Feeder(dispatcher, bot, journal)
    workflow = {"dispatcher": dispatcher, "bots": [bot], **dispatcher.workflow_data}
    await dispatcher.emit_startup(bot=bot, **workflow)
    try:
        await bot.delete_webhook(drop_pending_updates=False)  # polling and a webhook cannot both be set
        await feeder.replay()
        await poll(bot, feeder, dispatcher.resolve_used_update_types(), stop, polling_timeout)
    finally:
        await finish_in_flight(in_flight, feeder, drain_seconds)
        await dispatcher.emit_shutdown(bot=bot, **workflow)


async def run_polling(config: Config) -> None:
    """Load everything once, then poll; on SIGTERM or SIGINT the answers in progress are finished first."""
    from bot.analysis import Analyst  # imports TensorFlow: only when the bot really starts

    stores = await open_stores(config)
    journal = UpdateJournal(config.data_dir / "updates.sqlite3")
    analyst = await asyncio.to_thread(
        Analyst.load, config.weights_dir, config.workers, config.queue_limit, config.max_batch, config.onnx_dir
    )
    bot = build_bot(config)
    dispatcher, in_flight = build_dispatcher(config, stores, analyst)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await serve_polling(bot, dispatcher, in_flight, journal, stop, drain_seconds=config.drain_seconds)
    finally:
        await bot.session.close()
        analyst.close()
        await stores.close()
        journal.close()
        log.info("stopped")
