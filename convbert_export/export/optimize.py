"""Compatibility alias: optimization lives in the :mod:`convbert_export.optimize` package
(settings, graph + the Fusion skeleton, rewrites, precision, run). Every public name is
re-exported here, so ``from convbert_export.export.optimize import optimize`` keeps working."""

from __future__ import annotations

import importlib as _importlib

from ..optimize import __all__  # noqa: F401

_optimize = _importlib.import_module("convbert_export.optimize")
globals().update({name: getattr(_optimize, name) for name in __all__})
