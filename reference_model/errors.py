"""The reference model's own errors (it imports nothing from convbert_export).

Every message names what failed, what was expected and what was found. All derive from
``ValueError`` (bad input the caller can fix); convbert_export re-raises them as its own errors
of the same names (``convbert_export.errors.reference_errors``).
"""

from __future__ import annotations


class ReferenceModelError(ValueError):
    """Base of the reference model's errors."""


class ConfigError(ReferenceModelError):
    """A config.json value is missing, impossible or asks for something we refuse."""


class CheckpointError(ReferenceModelError):
    """A checkpoint directory cannot be loaded (missing files, missing/unexpected/mis-shaped keys)."""


class UnknownNameError(ReferenceModelError, KeyError):
    """An unknown preset, task or architecture; the message lists what exists."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""
