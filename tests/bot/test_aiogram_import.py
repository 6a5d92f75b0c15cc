"""aiogram imported with its validators deferred (bot.aiogram_import): every type still builds and parses alike.

Each check runs in a fresh interpreter, since the deferral only happens on the process's first aiogram import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

UPDATE = {
    "update_id": 7,
    "message": {
        "message_id": 3,
        "date": 1_700_000_000,
        "chat": {"id": -100123, "type": "supergroup", "title": "t", "is_forum": True},
        "from": {"id": 5, "is_bot": False, "first_name": "Аня", "language_code": "ru"},
        "message_thread_id": 9,
        "caption": "/check",
        "caption_entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        "photo": [{"file_id": "a", "file_unique_id": "b", "width": 90, "height": 60, "file_size": 100}],
        "reply_to_message": {
            "message_id": 2,
            "date": 1_700_000_000,
            "chat": {"id": -100123, "type": "supergroup"},
            "document": {"file_id": "c", "file_unique_id": "d", "mime_type": "image/png"},
        },
    },
}

DEFER = "from bot.aiogram_import import import_aiogram; import_aiogram()"

PARSE = """
import json, sys
{setup}
from aiogram.client.default import Default
from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Update
update = Update.model_validate(json.loads(sys.argv[1]))
markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Why?", callback_data="w:1")]])
method = SendMessage(chat_id=1, text="hi", reply_markup=markup)
print(json.dumps({{
    "update": update.model_dump(mode="json", exclude_none=True),
    "method": {{k: v for k, v in method.model_dump(exclude_none=True).items() if not isinstance(v, Default)}},
}}, sort_keys=True, default=str))
"""


def run(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_deferred_import_parses_like_aiogram_own():
    deferred = run(PARSE.format(setup=DEFER), json.dumps(UPDATE))
    eager = run(PARSE.format(setup=""), json.dumps(UPDATE))
    assert json.loads(deferred) == json.loads(eager)
    assert json.loads(deferred)["update"]["message"]["reply_to_message"]["document"]["file_id"] == "c"


def test_every_deferred_aiogram_model_builds():
    code = """
from bot.aiogram_import import aiogram_models, import_aiogram
import_aiogram()
deferred = [model for model in aiogram_models() if not model.__pydantic_complete__]
failed = []
for model in deferred:
    try:
        model.model_rebuild()
    except Exception as error:
        failed.append(f"{model.__module__}.{model.__qualname__}: {error}")
print(len(deferred))
print("\\n".join(failed))
"""
    deferred, *failed = run(code).splitlines()
    assert int(deferred) > 300, "aiogram's types were built at import: bot.aiogram_import no longer defers them"
    assert [line for line in failed if line] == []
