"""Every dialog state of the bot."""

from aiogram.fsm.state import State, StatesGroup


class Check(StatesGroup):
    """One picture's verdict."""

    verdict = State()
    help = State()


class Album(StatesGroup):
    """The verdicts of an album's pictures, in one message."""

    summary = State()
    help = State()
