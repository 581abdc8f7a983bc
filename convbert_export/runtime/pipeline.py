"""Compatibility alias: the pipelines live in ``convbert_export.runtime.pipelines`` (one module
per task). Every public name (and ``_max_length``) is re-exported here, so code that imports
``convbert_export.runtime.pipeline`` keeps working."""

from __future__ import annotations

from .pipelines import *  # noqa: F401,F403
from .pipelines import __all__  # noqa: F401
from .pipelines.base import _max_length  # noqa: F401
