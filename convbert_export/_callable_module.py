"""Let a subpackage be called like the function it is named after.

``convbert_export.export`` is both the subpackage ``convbert_export/export/`` and the function
users call (``convbert_export.export(model, task, output_dir)``); likewise ``validate``. Once a
subpackage is imported Python binds its name on the parent package, so a plain re-export of the
function would be replaced by the module. Making the module callable keeps both spellings right.
"""

from __future__ import annotations

import sys
import types


def make_callable(module_name: str, function_name: str) -> None:
    """Calling module ``module_name`` calls its attribute ``function_name``."""
    module = sys.modules[module_name]

    class CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return getattr(self, function_name)(*args, **kwargs)

    CallableModule.__name__ = f"{function_name}_module"
    module.__class__ = CallableModule
