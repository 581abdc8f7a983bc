"""Errors raised by convbert-export.

Every error the package raises on purpose derives from :class:`ConvBertExportError`. Errors about
bad input (a wrong argument, a malformed file, an unknown name) also derive from ``ValueError`` so
callers that already catch ``ValueError`` keep working. The CLI turns these into one line:
exit status 2 for bad usage or input, 1 for a failed validation.

Messages follow one shape: what failed, "expected X, got Y", and the fix or the valid choices.
"""

from __future__ import annotations

import contextlib
import numbers


class ConvBertExportError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code = 2


class InvalidInputError(ConvBertExportError, ValueError):
    """Bad input: an argument, a file or a request the caller can fix."""


class ConfigError(InvalidInputError):
    """A config.json value is missing, impossible or asks for something we refuse."""


class CheckpointError(InvalidInputError):
    """A checkpoint directory cannot be loaded (missing files, missing/unexpected/mis-shaped keys)."""


class UnknownNameError(InvalidInputError, KeyError):
    """A registry lookup missed (task, preset, backend, provider); the message lists what exists."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class IntegrityError(InvalidInputError):
    """A directory's files do not match its manifest (edited, swapped, missing, or a symlink
    leaving the directory); nothing was loaded from it."""


class ExportError(ConvBertExportError):
    """The export itself failed (tracing, ONNX checking, writing the output)."""


class ValidationFailedError(ConvBertExportError):
    """Backend outputs differ from the reference beyond the tolerances."""

    exit_code = 1

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


class MissingDependencyError(ConvBertExportError, ImportError):
    """An optional dependency (TensorRT, onnxruntime-gpu, a compiler) is not installed."""


class BuildError(ConvBertExportError):
    """Building the custom-op library or a TensorRT engine failed."""


class QueueFullError(ConvBertExportError):
    """The micro-batcher's queue is full; retry later or raise max_queue."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while we were writing: raised so cleanup runs as for Ctrl-C (the CLI
    exits 143)."""


class RequestError(InvalidInputError):
    """One request in a batch is invalid; it fails alone."""


class ModelLoadError(InvalidInputError):
    """A backend could not load a model file (corrupt, truncated, or of an unsupported form).

    ``reason`` is the backend's message, first line only.
    """

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason


def check_int(name: str, value, minimum: int, note: str = "") -> None:
    """Refuse ``value`` unless it is an int (numpy ints too, bool never: ``threads=True`` is a
    mistake, not 1) of at least ``minimum``; one message shape for every integer setting."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise InvalidInputError(f"{name} must be an int >= {minimum}{note}, got {value!r}")


def lookup(registry, name, what: str):
    """``registry[name]``; a miss raises one UnknownNameError listing what exists.

    The one registry-lookup error: ``unknown <what> <name>; expected one of: a, b, c``.
    ``registry`` is a mapping (returns the value) or a sequence of names (returns the name).
    """
    from collections.abc import Mapping

    try:
        if isinstance(registry, Mapping):
            return registry[name]
        if name in registry:  # a tuple or set of names: the name itself
            return name
    except (KeyError, TypeError):
        pass
    raise UnknownNameError(f"unknown {what} {name!r}; expected one of: {', '.join(map(str, registry))}") from None


_REFERENCE_ERRORS = {"ConfigError": ConfigError, "CheckpointError": CheckpointError,
                     "UnknownNameError": UnknownNameError, "ReferenceModelError": InvalidInputError}


@contextlib.contextmanager
def reference_errors():
    """Re-raise the reference model's errors (``reference_model.errors``, which knows nothing of
    this package) as this package's errors of the same name and message, so callers and the
    CLI see one error family."""
    try:
        yield
    except Exception as exc:
        mapped = _REFERENCE_ERRORS.get(type(exc).__name__) if type(exc).__module__ == "reference_model.errors" else None
        if mapped is None:
            raise
        raise mapped(str(exc)) from exc
