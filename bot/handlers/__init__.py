"""One router per topic, built afresh for each Dispatcher; the order matters: commands, asking in groups,
pictures, the rest."""

from aiogram import Router

from bot.handlers import admin, groups, other, pictures, start


def all_routers() -> list[Router]:
    return [
        start.build_router(),
        admin.build_router(),
        groups.build_router(),
        pictures.build_router(),
        other.build_router(),
    ]
