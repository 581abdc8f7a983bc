"""Replay: save the worst validation case (inputs and outputs, npz), and load inputs to re-run.

``validate --save-inputs FILE --save-outputs FILE`` writes the case holding the largest
difference relative to its tolerance (``max |diff| / (atol + rtol * |reference|)`` at each
output's largest difference): the inputs npz holds one array per model input, named like the
graph's inputs (``input_ids``, ``attention_mask``, ``token_type_ids``); the outputs npz holds the
export's outputs under their names and the reference's as ``<name>.reference``.
``validate --load-inputs FILE`` runs exactly the inputs of such a file (or any npz with the
model's input names, integer arrays of one shape), instead of the grid and the texts.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..fileio import write_bytes_atomic


def worst_case(stats: dict) -> str | None:
    """The case whose largest difference is largest relative to its tolerance, over outputs."""
    best, name = -1.0, None
    for s in stats.values():
        if not s.elements or not s.worst:
            continue
        ratio = s.max_abs / max(s.atol + s.rtol * abs(s.worst.get("ref", 0.0)), 1e-30)
        if ratio > best:
            best, name = ratio, s.worst_case
    return name


def _npz(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def save_case(feeds: dict, inputs_path=None, outputs_path=None, got: dict | None = None, ref: dict | None = None) -> None:
    """Write the case's inputs and/or outputs (atomically)."""
    if inputs_path:
        write_bytes_atomic(inputs_path, _npz({k: np.asarray(v) for k, v in feeds.items()}))
    if outputs_path:
        arrays = {name: np.asarray(value) for name, value in (got or {}).items()}
        arrays.update({f"{name}.reference": np.asarray(value) for name, value in (ref or {}).items()})
        write_bytes_atomic(outputs_path, _npz(arrays))


def load_inputs(path, input_names, multiple_choice: bool = False) -> dict[str, np.ndarray]:
    """The feeds of an inputs npz, checked against the model's input names, dtypes and ranks."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"--load-inputs {str(path)!r} does not exist; write one with validate --save-inputs FILE")
    try:
        with np.load(path, allow_pickle=False) as data:
            feeds = {name: data[name] for name in data.files}
    except Exception as exc:  # numpy raises several types for a file that is not an npz
        raise InvalidInputError(f"{path}: not a numpy .npz file ({exc}); write one with validate --save-inputs FILE") from None
    if sorted(feeds) != sorted(input_names):
        raise InvalidInputError(f"{path}: holds {sorted(feeds)}, but the model's inputs are {list(input_names)}")
    rank = 3 if multiple_choice else 2
    shapes = {name: value.shape for name, value in feeds.items()}
    for name, value in feeds.items():
        if value.dtype.kind not in "iu" or value.ndim != rank:
            raise InvalidInputError(f"{path}: {name} must be an integer array of rank {rank}, got {value.dtype} {value.shape}")
    if len(set(shapes.values())) != 1:
        raise InvalidInputError(f"{path}: the inputs' shapes differ ({shapes}); they must be equal")
    return {name: feeds[name].astype(np.int64) for name in input_names}
