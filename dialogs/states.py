"""Every dialog state of the bot."""

from aiogram.fsm.state import State, StatesGroup


class Check(StatesGroup):
    """One picture's verdict."""

    verdict = State()
    help = State()
    feedback = State()  # "Is this picture AI-made or made by a person?"


class Album(StatesGroup):
    """The verdicts of an album's pictures, in one message."""

    summary = State()
    help = State()
    pick = State()  # which picture the user says the bot got wrong
    feedback = State()
