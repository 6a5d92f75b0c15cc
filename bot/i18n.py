"""Russian and English through gettext: English source strings, ``bot/locales/<lang>/LC_MESSAGES/messages.po``.

The catalogues are committed as ``.po`` text and compiled in memory at
start-up (Babel), so there is no build step and no binary ``.mo`` in git.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES = Path(__file__).resolve().parent / "locales"
DOMAIN = "messages"
# Users of these Telegram languages read Russian more easily than English.
RUSSIAN_READERS = frozenset({"ru", "uk", "be", "kk"})


class PoI18n(I18n):
    """aiogram's ``I18n`` that reads ``.po`` catalogues instead of compiled ``.mo`` files."""

    def find_locales(self) -> dict[str, gettext.GNUTranslations]:
        translations = {}
        for po_path in sorted(self.path.glob(f"*/LC_MESSAGES/{self.domain}.po")):
            locale = po_path.parent.parent.name
            with po_path.open("rb") as source:
                catalog = read_po(source, locale=locale)
            compiled = io.BytesIO()
            write_mo(compiled, catalog)
            compiled.seek(0)
            translations[locale] = gettext.GNUTranslations(compiled)
        return translations

    @contextmanager
    def context(self) -> Iterator[PoI18n]:
        # aiogram keeps "the current I18n" per class; gettext() looks it up on I18n itself.
        token = I18n.set_current(self)
        try:
            yield self
        finally:
            I18n.reset_current(token)


def locale_for(user: User | None) -> str:
    """``ru`` for Russian, Ukrainian, Belarusian and Kazakh Telegram users, ``en`` for everyone else."""
    code = (user.language_code or "") if user else ""
    return "ru" if code.split("-")[0].lower() in RUSSIAN_READERS else "en"


class LanguageMiddleware(I18nMiddleware):
    """Sets the gettext locale of every update from the sender's Telegram language."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        return locale_for(data.get("event_from_user"))


def build_i18n() -> PoI18n:
    return PoI18n(path=LOCALES, default_locale="en", domain=DOMAIN)
