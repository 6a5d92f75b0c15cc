"""Small helpers shared by the bot tests."""

from __future__ import annotations

from tests.images import encode, photo_like


def jpeg(width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    return encode(photo_like(width, height, seed), "JPEG", quality=90)


def buttons(message: dict) -> dict[str, str]:
    """Button text -> callback_data of a message's inline keyboard."""
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return {button["text"]: button["callback_data"] for row in rows for button in row}
