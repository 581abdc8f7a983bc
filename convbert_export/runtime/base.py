"""The Runner protocol every backend implements (ONNX Runtime, TensorRT, the torch reference).

A runner turns a dict of input arrays into a dict of output arrays. The base class does the
work that must be the same for every backend, once (Polygraphy's ``infer`` / ``infer_impl``
split):

* lifecycle: ``start()`` / ``close()`` or ``with runner:``; ``run`` on a runner that is not
  started raises;
* input checks before anything reaches the backend: names, dtypes, ranks, the same shape for
  every input, token ids in ``[0, vocab_size)``, token type ids in ``[0, type_vocab_size)``,
  attention mask values in {0, 1}, sequence length <= ``max_position_embeddings``, and no
  all-zero attention-mask row. ONNX Runtime's CUDA provider and TensorRT do not range-check
  token ids (TensorRT returns zeros), so these checks are what keeps a bad request from giving
  a silent wrong answer.

A subclass implements ``start_impl``, ``close_impl``, ``run_impl`` and sets ``input_metadata``
(in ``__init__`` or ``start_impl``). ``run_impl`` receives feeds already checked and returns
``dict[str, np.ndarray]`` keyed by output name.

This module imports only numpy.
"""

from __future__ import annotations

import abc
import os
import threading
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..errors import InvalidInputError

__all__ = ["TensorMeta", "ModelLimits", "Runner", "read_manifest", "nonfinite_rows"]


@dataclass(frozen=True)
class TensorMeta:
    """One graph input or output: its name, numpy dtype and axes.

    ``axes`` holds an ``int`` for a fixed dimension and a ``str`` (the axis name, such as
    ``"batch"``) for a dynamic one.
    """

    name: str
    dtype: np.dtype
    axes: tuple[int | str, ...]

    @property
    def rank(self) -> int:
        return len(self.axes)


@dataclass(frozen=True)
class ModelLimits:
    """Value ranges the inputs must respect (the manifest's ``model`` section).

    A ``None`` field is not checked.
    """

    vocab_size: int | None = None
    type_vocab_size: int | None = None
    max_position_embeddings: int | None = None
    pad_token_id: int | None = None

    @classmethod
    def from_mapping(cls, model: Mapping[str, Any] | None) -> "ModelLimits":
        """Read the limits from a manifest ``model`` section or a config.json dict."""
        model = model or {}
        return cls(
            vocab_size=model.get("vocab_size"),
            type_vocab_size=model.get("type_vocab_size"),
            max_position_embeddings=model.get("max_position_embeddings"),
            pad_token_id=model.get("pad_token_id"),
        )


def read_manifest(export_dir: str | os.PathLike) -> dict:
    """``manifest.json`` of an export directory as a dict, checked by :mod:`convbert_export.manifest`."""
    from ..manifest import load_manifest

    return load_manifest(export_dir).to_dict()


def nonfinite_rows(outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Boolean mask over the batch axis: True where any output of that row has NaN or Inf."""
    bad = None
    for value in outputs.values():
        if value.ndim == 0 or not np.issubdtype(value.dtype, np.floating):
            continue
        row = ~np.isfinite(value.reshape(value.shape[0], -1)).all(axis=1)
        bad = row if bad is None else bad | row
    if bad is None:
        first = next(iter(outputs.values()))
        return np.zeros(first.shape[0] if first.ndim else 1, dtype=bool)
    return bad


_SEQUENCE_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class Runner(abc.ABC):
    """Base of every backend runner.

    Args:
        limits: value ranges to check inputs against (from the manifest's ``model`` section).
            Defaults to no range checks.
        name: a human-readable name used in messages.

    Subclasses set ``self.input_metadata`` (an ordered ``dict[str, TensorMeta]``) and
    ``self.output_names`` before the first ``run`` (usually in ``start_impl``).
    """

    def __init__(self, limits: ModelLimits | None = None, name: str | None = None):
        self.limits = limits or ModelLimits()
        self.name = name or type(self).__name__
        self.input_metadata: dict[str, TensorMeta] = {}
        self.output_names: tuple[str, ...] = ()
        self._active = False
        self._lock = threading.Lock()

    # ---- lifecycle ---------------------------------------------------------------------
    @property
    def is_active(self) -> bool:
        return self._active

    def start(self) -> "Runner":
        """Load the model (session, engine, module). Idempotent."""
        with self._lock:
            if not self._active:
                self.start_impl()
                self._active = True
        return self

    def close(self) -> None:
        """Release the backend. Idempotent."""
        with self._lock:
            if self._active:
                self._active = False
                self.close_impl()

    def __enter__(self) -> "Runner":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @classmethod
    def from_dir(cls, path, *, provider: str | None = None, settings=None, strict: bool = False,
                 custom_ops: str | None = None, **options) -> "Runner":
        """The runner for a directory, as :func:`convbert_export.runtime.factory.create_runner`
        calls it. A backend with providers or settings overrides this; the default refuses them."""
        if provider is not None:
            raise InvalidInputError(f"{cls.__name__} takes no provider, got provider={provider!r}; leave it out")
        if settings is not None:
            raise InvalidInputError(f"{cls.__name__} takes no settings, got {type(settings).__name__}; leave them out")
        return cls(path, **options)

    def describe(self) -> dict:
        """What ran, for reports: at least ``name`` and ``backend`` (a human-readable label)."""
        return {"name": self.name, "backend": self.name}

    # ---- inference ---------------------------------------------------------------------
    def run(self, feeds: Mapping[str, np.ndarray], *, check: bool = True) -> dict[str, np.ndarray]:
        """Check ``feeds`` and run the model; returns ``{output name: array}``.

        ``check=False`` skips the input checks; only for callers (the Pipeline) that built the
        feeds themselves and checked them already.
        """
        if not self._active:
            raise InvalidInputError(
                f"{self.name} is not started; call runner.start() or use `with runner:` first"
            )
        if check:
            feeds = self.check_feeds(feeds)
        return self.run_impl(dict(feeds))

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Check names, dtypes, ranks, shapes and value ranges; returns the feeds as a dict.

        Raises InvalidInputError naming the input, what was expected, what was given and the fix.
        """
        if not isinstance(feeds, Mapping):
            raise InvalidInputError(
                f"{self.name}.run expects a dict of input name -> numpy array, got {type(feeds).__name__}"
            )
        expected = self.input_metadata
        missing = [name for name in expected if name not in feeds]
        unknown = [name for name in feeds if name not in expected]
        if missing or unknown:
            raise InvalidInputError(
                f"{self.name}: wrong input names: missing {missing}, unknown {unknown}; "
                f"expected exactly {list(expected)}"
            )
        shape = None
        first = None
        for name, meta in expected.items():
            value = feeds[name]
            if not isinstance(value, np.ndarray):
                raise InvalidInputError(
                    f"{self.name}: input {name!r} must be a numpy array, got {type(value).__name__}; "
                    f"pass np.asarray(value, dtype=np.{meta.dtype.name})"
                )
            if value.dtype != meta.dtype:
                raise InvalidInputError(
                    f"{self.name}: input {name!r} has dtype {value.dtype}, expected {meta.dtype}; "
                    f"convert with .astype(np.{meta.dtype.name})"
                )
            if value.ndim != meta.rank:
                raise InvalidInputError(
                    f"{self.name}: input {name!r} has rank {value.ndim} (shape {value.shape}), "
                    f"expected rank {meta.rank} with axes {meta.axes}"
                )
            for dim, axis in zip(value.shape, meta.axes):
                if isinstance(axis, int) and dim != axis:
                    raise InvalidInputError(
                        f"{self.name}: input {name!r} has shape {value.shape}, expected {meta.axes}"
                    )
            if name in _SEQUENCE_INPUTS:
                if shape is None:
                    shape, first = value.shape, name
                elif value.shape != shape:
                    raise InvalidInputError(
                        f"{self.name}: input {name!r} has shape {value.shape} but {first!r} has "
                        f"shape {shape}; every input must have the same shape"
                    )
            if value.size == 0:
                raise InvalidInputError(
                    f"{self.name}: input {name!r} is empty (shape {value.shape}); "
                    "expected at least one sequence of at least one token"
                )
        self._check_ranges(feeds)
        return dict(feeds)

    def _check_ranges(self, feeds: Mapping[str, np.ndarray]) -> None:
        limits = self.limits
        ids = feeds.get("input_ids")
        if ids is not None:
            if limits.max_position_embeddings is not None and ids.shape[-1] > limits.max_position_embeddings:
                raise InvalidInputError(
                    f"{self.name}: sequence length {ids.shape[-1]} exceeds the model's "
                    f"max_position_embeddings {limits.max_position_embeddings}; truncate the input"
                )
            _check_range(self.name, "input_ids", ids, 0, limits.vocab_size, "vocab_size")
        types = feeds.get("token_type_ids")
        if types is not None:
            _check_range(self.name, "token_type_ids", types, 0, limits.type_vocab_size, "type_vocab_size")
        mask = feeds.get("attention_mask")
        if mask is not None:
            if ((mask != 0) & (mask != 1)).any():
                bad = np.unique(mask[(mask != 0) & (mask != 1)])[:5].tolist()
                raise InvalidInputError(
                    f"{self.name}: attention_mask must hold only 0 and 1, got values {bad}"
                )
            rows = mask.reshape(-1, mask.shape[-1])
            empty = np.flatnonzero(rows.sum(axis=1) == 0)
            if empty.size:
                raise InvalidInputError(
                    f"{self.name}: attention_mask rows {empty[:5].tolist()} are all zero; every "
                    "sequence needs at least one real token (mask 1)"
                )

    # ---- for subclasses ----------------------------------------------------------------
    @abc.abstractmethod
    def start_impl(self) -> None:
        """Create the backend objects and set ``input_metadata`` / ``output_names``."""

    @abc.abstractmethod
    def close_impl(self) -> None:
        """Release the backend objects."""

    @abc.abstractmethod
    def run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run checked feeds; return every output as a numpy array keyed by name."""

    def __repr__(self) -> str:
        state = "active" if self._active else "inactive"
        return f"<{self.name} {state}>"


def _check_range(runner: str, name: str, value: np.ndarray, low: int, high: int | None, field: str) -> None:
    lo = int(value.min())
    if lo < low:
        raise InvalidInputError(
            f"{runner}: {name} contains {lo}, expected values >= {low}"
        )
    if high is not None:
        hi = int(value.max())
        if hi >= high:
            what = ("the token type ids do not fit this model (a pair where it has one segment type?)"
                    if name == "token_type_ids" else
                    "the ids do not belong to this model's vocabulary (wrong tokenizer?)")
            raise InvalidInputError(f"{runner}: {name} contains {hi}, expected values < {field} = {high}; {what}")
