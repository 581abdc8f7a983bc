"""One way to get a runner for a directory: the backend registry and :func:`create_runner`.

Pipelines, validation and the benchmark all get their runners here, so an export directory, a
TensorRT engine directory or another backend's directory runs through the same code wherever
it is used, and a missing provider or GPU fails the same way (one line) everywhere.

The registry is ``convbert_export.runtime.RUNNERS`` (backend name -> (module, class)); a
backend is one Runner class with a ``from_dir`` classmethod, registered there with one line.
``backend_for(path)`` picks the backend a directory asks for: a directory holding
``engine.json`` is a TensorRT engine directory; one holding ``openvino_model.xml`` an OpenVINO
export directory; any other is an export directory for ONNX Runtime (``provider="openvino"``
runs it on OpenVINO instead).

Imports nothing heavy: the runner's module is imported when it is chosen.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from ..errors import lookup
from .base import Runner

__all__ = ["create_runner", "runner_class", "backend_for", "is_engine_dir", "verify_dir", "provider_choices"]


def is_engine_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a TensorRT engine directory (it holds ``engine.json``), as written by
    ``convbert-export build-engine``; otherwise it is taken for an export directory."""
    return (Path(path) / "engine.json").is_file()


def verify_dir(path: str | os.PathLike) -> None:
    """Check every file a loader reads from an export or engine directory against its manifest
    (see :func:`convbert_export.manifest.verify_directory`); raises IntegrityError. An engine
    directory holds the export's manifest (its sha256 recorded in engine.json), config and
    tokenizer files; its plan is checked against engine.json when the runner starts."""
    from ..manifest import LOADED, verify_directory

    if is_engine_dir(path):
        from ..engine.metadata import read_engine_info

        info = read_engine_info(path)
        copied = [name for name in LOADED if not name.startswith("model.onnx")]  # the plan replaces the model
        verify_directory(path, required=copied, manifest_sha256=(info.source or {}).get("manifest_sha256"))
    else:
        verify_directory(path)


def backend_for(path: str | os.PathLike, provider: str | None = None) -> str:
    """The backend a directory is run with: ``tensorrt`` for an engine directory, ``openvino``
    for an OpenVINO export directory or ``provider="openvino"``, else ``onnxruntime``."""
    if is_engine_dir(path):
        return "tensorrt"
    if provider == "openvino" or (Path(path) / "openvino_model.xml").is_file():
        return "openvino"
    return "onnxruntime"


def provider_choices() -> list[str]:
    """Every ``provider`` value a command accepts: ONNX Runtime's providers, then ``openvino``
    (see :func:`backend_for`)."""
    from .ort import PROVIDERS

    return [*PROVIDERS, "openvino"]


def runner_class(backend: str) -> type[Runner]:
    """The Runner class registered for ``backend`` (a miss lists the backends that exist)."""
    from . import RUNNERS

    module, name = lookup(RUNNERS, backend, "backend")
    return getattr(importlib.import_module(module), name)


def create_runner(
    path: str | os.PathLike,
    *,
    backend: str | None = None,
    provider: str | None = None,
    settings=None,
    strict: bool = False,
    custom_ops: str | None = None,
    **options,
) -> Runner:
    """The (unstarted) runner for a directory.

    Args:
        path: an export directory, a TensorRT engine directory, or what ``backend`` reads.
        backend: a key of ``RUNNERS``; default :func:`backend_for` ``(path)``.
        provider: the device or ONNX Runtime provider (``cpu``, ``cuda``, ``tensorrt``); each
            backend refuses the ones it cannot use.
        settings: backend settings (``OrtSettings`` for ONNX Runtime); a backend without
            settings refuses them.
        strict: a provider that is not available is an error (validation, benchmarks) instead
            of a warning and a fallback (serving).
        custom_ops: how to get the DynamicConv library for a custom-op model (``if-built``,
            ``auto``, ``required``, ``off``; see ``OrtSettings.custom_ops``); None: the
            backend's default. A backend that needs no library ignores it.
        **options: passed to the runner class.
    """
    backend = backend or backend_for(path, provider)
    return runner_class(backend).from_dir(path, provider=provider, settings=settings, strict=strict,
                                          custom_ops=custom_ops, **options)
