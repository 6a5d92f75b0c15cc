"""Import aiogram without building every Telegram type's validator up front.

aiogram declares its types ``defer_build=True``, but ``aiogram.types`` ends its import by calling
``model_rebuild`` on each of them with a namespace of all the types, so pydantic builds some 450 validators
one by one, each with everything it nests. On the 2-core machine of docs/speed.md that was about 1.4 s of
the bot's start. Here that call is skipped: its namespace (the types' names, which their modules import only
for type checkers) goes into the globals of the modules that define aiogram's models instead, so pydantic
can resolve every annotation whenever a validator is first needed, whoever needs it (a generic
``Response[list[Update]]``, aiogram-dialog's ``DialogUpdate``, which inherits ``Update``'s fields and
resolves them in its own module). Each validator is then built on
first use: ``Update``, with everything it nests, in about 0.1 s.

``import_aiogram`` must run before anything imports ``aiogram``: ``python -m bot`` calls it first
(``bot/__main__.py``), and so does the test suite (``tests/conftest.py``). Importing other ``bot`` modules
(the service layer, ``bot.analysis``) still does not import aiogram. If aiogram is already imported, or a
future aiogram no longer makes that call, nothing changes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

_AIOGRAM = ("aiogram.", "aiogram_dialog.")


def import_aiogram() -> bool:
    """Import aiogram with its schemas deferred; True if they were deferred."""
    if "aiogram.types" in sys.modules:
        return False
    original = BaseModel.__dict__["model_rebuild"]
    types_namespace: dict[str, Any] = {}

    def remember_namespace(
        cls: type[BaseModel],
        *,
        force: bool = False,
        raise_errors: bool = True,
        _parent_namespace_depth: int = 2,
        _types_namespace: dict[str, Any] | None = None,
    ) -> bool | None:
        if _types_namespace is not None and not force and cls.__module__.startswith(_AIOGRAM):
            types_namespace.update(_types_namespace)
            return None
        return original.__func__(
            cls,
            force=force,
            raise_errors=raise_errors,
            _parent_namespace_depth=_parent_namespace_depth + 1,
            _types_namespace=_types_namespace,
        )

    BaseModel.model_rebuild = classmethod(remember_namespace)  # type: ignore[method-assign, assignment]
    try:
        import aiogram  # noqa: F401  (the imports are the point)
        import aiogram_dialog  # noqa: F401  (subclasses Update: its module needs the names too)
    finally:
        BaseModel.model_rebuild = original  # type: ignore[method-assign]
    if not types_namespace:
        return False
    for module_name in {model.__module__ for model in aiogram_models()}:
        module_globals = vars(sys.modules[module_name])
        for name, value in types_namespace.items():
            module_globals.setdefault(name, value)
    return True


def aiogram_models() -> Iterator[type[BaseModel]]:
    """Every pydantic model class aiogram and aiogram-dialog have defined so far."""
    seen: set[type] = set()
    stack = list(BaseModel.__subclasses__())
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        stack.extend(model.__subclasses__())
        if model.__module__.startswith(_AIOGRAM):
            yield model
