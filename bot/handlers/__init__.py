"""One router per topic, built afresh for each Dispatcher; the order matters: commands, pictures, the rest."""

from aiogram import Router

from bot.handlers import admin, other, pictures, start


def all_routers() -> list[Router]:
    return [start.build_router(), admin.build_router(), pictures.build_router(), other.build_router()]
