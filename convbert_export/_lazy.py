"""Lazily imported package attributes (PEP 562), so importing a package loads nothing heavy."""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_attributes(package: str, table: dict[str, tuple[str, str | None]], namespace: dict) -> Callable:
    """A module ``__getattr__`` resolving ``table[name] = (module, attribute)`` on first use.

    ``attribute`` None means the module itself. The value is cached in ``namespace``.
    """

    def __getattr__(name: str):
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = table[name]
        value = importlib.import_module(module)
        if attr is not None:
            value = getattr(value, attr)
        namespace[name] = value
        return value

    return __getattr__
