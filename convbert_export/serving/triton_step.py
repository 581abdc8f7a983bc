"""The logic of the Triton ensemble's Python steps (tokenize, answer), on numpy arrays.

``model.py`` (the Python-backend adapter copied into a repository) calls :class:`TextStep`;
this module needs only numpy and the tokenizer (no torch, onnxruntime or tritonclient). The
repository writer is ``serving/triton.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError, RequestError, lookup
from ..manifest import LOADED, verify_directory
from ..tasks import get_task

__all__ = ["TextStep", "TEXT_INPUT", "ANSWER_OUTPUT", "ROLES"]

TEXT_INPUT = "TEXT"
ANSWER_OUTPUT = "ANSWER"
ROLES = ("tokenize", "answer")


def _step_pipeline(directory: Path):
    """A Pipeline over ``directory`` (manifest, config, tokenizer) whose model runs elsewhere."""
    from ..runtime.base import Runner, TensorMeta
    from ..runtime import Pipeline

    # the step holds the export's manifest, config and tokenizer files, not its model
    manifest = verify_directory(directory, required=[n for n in LOADED if not n.startswith("model.onnx")])

    class StepRunner(Runner):
        def start_impl(self):
            self.input_metadata = {s.name: TensorMeta(s.name, np.dtype(s.dtype), tuple(s.axes)) for s in manifest.inputs}
            self.output_names = tuple(s.name for s in manifest.outputs)

        def close_impl(self):
            pass

        def run_impl(self, feeds):
            raise RuntimeError("the model runs as the ensemble's model step, not inside this Python step")

    return Pipeline.from_export(directory, runner=StepRunner(name="ensemble model step"), verify=False)


class TextStep:
    """The logic of the ensemble's Python steps, on numpy arrays as Triton passes them.

    ``role="tokenize"``: ``{"TEXT": object array of one JSON record (bytes)}`` -> the model's
    inputs for that record (its rows: one, or one per question-answering window; a
    multiple-choice record is one (1, choices, sequence) block), padded exactly as ``Pipeline``
    pads them. ``role="answer"``: ``TEXT`` plus the model's outputs for those rows ->
    ``{"ANSWER": object array of one JSON document}``, the ``Pipeline`` answer for the record.
    ``max_rows`` is the model's max_batch_size; ``max_length`` caps the sequence (an engine's
    profiles), as ``Pipeline`` caps it for a TensorRT runner.
    A bad record raises InvalidInputError (the Python model turns it into that request's error).
    """

    def __init__(self, directory: str | os.PathLike, role: str, max_rows: int | None = None,
                 max_length: int | None = None):
        lookup(ROLES, role, "step role")
        self.role = role
        self.max_rows = max_rows
        self.pipe = _step_pipeline(Path(directory))
        if max_length:  # a TensorRT engine's longest profile sequence
            self.pipe.max_length = min(self.pipe.max_length, int(max_length))
        self.spec = get_task(self.pipe.task)
        self.input_names = (TEXT_INPUT,) if role == "tokenize" else (TEXT_INPUT, *self.spec.output_names)
        self.output_names = tuple(self.spec.input_names) if role == "tokenize" else (ANSWER_OUTPUT,)

    def _features(self, text: np.ndarray):
        from ..records import parse_line, record_to_input

        values = np.asarray(text, dtype=object).reshape(-1)
        if values.size != 1:
            raise InvalidInputError(f"{TEXT_INPUT} must hold one JSON record, got {values.size}")
        item = record_to_input(self.pipe.task, parse_line(values[0]))
        params = self.pipe.sanitize()
        features = self.pipe.preprocess(self.pipe.check_input(item), params)
        if self.max_rows is not None and len(features) > self.max_rows:
            raise RequestError(
                f"this record needs {len(features)} model rows (windows), more than the model's "
                f"max_batch_size {self.max_rows}; shorten the text or regenerate with a larger --max-batch-size"
            )
        return item, params, features

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise InvalidInputError(f"missing step inputs {missing}; expected {list(self.input_names)}")
        item, params, features = self._features(inputs[TEXT_INPUT])
        pad = self.pipe.tokenizer.pad_token_id or 0
        if self.role == "tokenize":
            feeds = self.pipe._pad(features, pad)
            return {name: np.ascontiguousarray(feeds[name], dtype=np.int64) for name in self.output_names}
        from ..records import to_jsonable
        from ..runtime.base import nonfinite_rows

        values = {name: np.asarray(inputs[name]) for name in self.spec.output_names}
        rows = {value.shape[0] if value.ndim else 0 for value in values.values()}
        if rows != {len(features)}:
            raise InvalidInputError(f"expected model outputs with {len(features)} rows for this record, got {sorted(rows)}")
        if nonfinite_rows(values).any():
            raise RequestError("the model returned NaN or Inf for this input; check the export's precision")
        outputs = []
        for row, feature in enumerate(features):
            out = {}
            for name, value in values.items():
                item_value = value[row]
                axes = self.spec.outputs[name]
                if "sequence" in axes:
                    item_value = np.take(item_value, np.arange(feature.length), axis=axes.index("sequence") - 1)
                out[name] = item_value
            outputs.append(out)
        result = self.pipe.postprocess(item, features, outputs, params)
        return {ANSWER_OUTPUT: np.array([json.dumps(to_jsonable(result)).encode("utf-8")], dtype=object)}
