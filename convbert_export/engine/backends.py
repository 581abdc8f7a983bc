"""The two TensorRT products behind one builder: TensorRT and TensorRT for RTX.

Both ship the same Python builder API under different module names. Neither is imported
until a build or a runner starts; a missing one raises MissingDependencyError (exit 2) with the
command that installs it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from ..errors import MissingDependencyError, lookup


@dataclass(frozen=True)
class Backend:
    """One TensorRT product.

    Attributes:
        name: the ``--backend`` value.
        module: the Python module it installs.
        label: the product name used in messages.
        install: the command that installs it.
        strongly_typed: the network's tensor types decide precision (no FP16/INT8 builder flags).
        plugins: it can load and run plugin libraries.
    """

    name: str
    module: str
    label: str
    install: str
    strongly_typed: bool
    plugins: bool


BACKENDS: dict[str, Backend] = {
    "tensorrt": Backend(
        name="tensorrt", module="tensorrt", label="TensorRT",
        install="pip install tensorrt  (TensorRT 10 or later; needs an NVIDIA GPU driver)",
        strongly_typed=False, plugins=True,
    ),
    "tensorrt-rtx": Backend(
        name="tensorrt-rtx", module="tensorrt_rtx", label="TensorRT for RTX",
        install="pip install tensorrt-rtx",
        strongly_typed=True, plugins=False,
    ),
}


def get_backend(name: str) -> Backend:
    """Look a backend up by name; a miss lists the backends that exist."""
    return lookup(BACKENDS, name, "TensorRT backend")


def import_backend(name: str, alternative: bool = True) -> ModuleType:
    """Import the backend's module, or raise MissingDependencyError saying what to install
    (and, with ``alternative``, for ``build-engine``, which other ``--backend`` exists)."""
    backend = get_backend(name)
    try:
        return importlib.import_module(backend.module)
    except ImportError as exc:
        other = [b for b in BACKENDS if b != name]
        hint = f", or choose --backend {other[0]}" if alternative and other else ""
        raise MissingDependencyError(
            f"{backend.label} is not installed (import {backend.module} failed: {exc}); "
            f"install it with `{backend.install}`{hint}"
        ) from None


def backend_version(module: ModuleType) -> str:
    """The full version string of an imported TensorRT module (``10.13.0.35``, ``1.7.1.116``)."""
    return str(getattr(module, "__version__", "unknown"))
