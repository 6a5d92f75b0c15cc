"""aiogram-dialog windows shown under each verdict: the verdict, Why? (heatmap) and Help."""

from aiogram_dialog import Dialog

from dialogs.album import build_album_dialog
from dialogs.check import build_check_dialog


def all_dialogs() -> list[Dialog]:
    """Fresh dialogs (they are routers, and a router joins one Dispatcher only)."""
    return [build_check_dialog(), build_album_dialog()]
