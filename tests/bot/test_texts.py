"""Russian and English: every sentence the bot can say is translated, and the language follows the user."""

from __future__ import annotations

import pytest
from aiogram.types import User
from babel.messages.extract import extract_from_dir

from bot import texts
from bot.i18n import LOCALES, build_i18n, locale_for

ROOT = LOCALES.parents[1]


def source_messages() -> set[str]:
    found = set()
    for folder in ("bot", "dialogs"):
        for _file, _line, message, _comments, _context in extract_from_dir(ROOT / folder, keywords={"_": None}):
            found.add(message)
    return found


def test_every_message_in_the_code_has_a_russian_translation():
    i18n = build_i18n()
    messages = source_messages()
    assert len(messages) > 30  # the extraction found the bot's sentences
    catalog = i18n.locales["ru"]
    untranslated = [message for message in messages if catalog.gettext(message) == message]
    assert not untranslated


def test_translations_keep_their_placeholders():
    import re

    catalog = build_i18n().locales["ru"]
    for message in source_messages():
        assert sorted(re.findall(r"\{[^}]*\}", message)) == sorted(re.findall(r"\{[^}]*\}", catalog.gettext(message)))


@pytest.mark.parametrize(
    "code, locale", [("ru", "ru"), ("uk", "ru"), ("be", "ru"), ("kk", "ru"), ("ru-RU", "ru"), ("en", "en"),
                     ("de", "en"), (None, "en")],
)  # fmt: skip
def test_the_language_follows_telegram(code, locale):
    assert locale_for(User(id=1, is_bot=False, first_name="A", language_code=code)) == locale


def test_verdict_text_in_both_languages():
    i18n = build_i18n()
    with i18n.context(), i18n.use_locale("ru"):
        russian = texts.verdict_text("FAKE", 0.934, ["camera:Canon <EOS>"], "photo")
    with i18n.context(), i18n.use_locale("en"):
        english = texts.verdict_text("UNSURE", 0.5, [], "document")
    assert "93%" in russian and "нейросеть" in russian and "Canon &lt;EOS&gt;" in russian and "файлом" in russian
    assert "UNSURE" in english and "too close to call" in english and "as a file" not in english


@pytest.mark.parametrize("p, shown", [(0.0, "<1%"), (0.004, "<1%"), (0.5, "50%"), (0.996, ">99%"), (1.0, ">99%")])
def test_percent_never_claims_certainty(p, shown):
    assert texts.percent(p) == shown


@pytest.mark.parametrize(("size_mb", "shown"), [(20.3, "20.3 MB"), (20.6, "21 MB"), (1024.0, "1024 MB")])
def test_an_oversized_file_never_looks_as_small_as_the_limit(size_mb, shown):
    i18n = build_i18n()
    with i18n.context(), i18n.use_locale("en"):
        text = texts.too_large(size_mb)
    assert f"This file is {shown};" in text and "at most 20 MB" in text
