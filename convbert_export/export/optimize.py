"""Compatibility alias: optimization lives in the :mod:`convbert_export.optimize` package
(settings, graph + the Fusion skeleton, rewrites, precision, run). Every public name is
re-exported here, so ``from convbert_export.export.optimize import optimize`` keeps working."""

from __future__ import annotations

from ..optimize import *  # noqa: F401,F403
from ..optimize import __all__  # noqa: F401
