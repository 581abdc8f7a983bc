"""Task pipelines: text in, answers out (tokenize -> batch exactly -> run -> post-process).

``Pipeline.from_export(path, provider="cpu", batch_size=8)`` reads the manifest and returns the
task's pipeline: an export directory runs on ONNX Runtime (provider cpu, cuda or tensorrt), a
TensorRT engine directory (one holding ``engine.json``) on ``TrtRunner``. Tokenization is the
package's shared :class:`~convbert_export.tokenization.Tokenizer`. Inputs and outputs follow
transformers' pipelines for the same task (see each class), so switching is painless;
post-processing mirrors transformers' code (softmax/sigmoid choice, aggregation strategies,
span scoring, fill-mask targets).

Batching is exact (see ``convbert_export.batching``): a text gets the same answer alone or in
a batch of any size.

Bad input (documented behaviour, each tested):
  * empty list, None, non-string, empty or whitespace-only text: InvalidInputError;
  * text longer than ``max_input_chars`` (default 1,000,000): InvalidInputError, checked before
    tokenizing (a multi-MB text never reaches the tokenizer);
  * text longer than ``max_length`` (the model's positions; for a TensorRT engine, also its
    profiles' longest sequence): windows for question-answering (always) and
    token-classification (with ``stride``), otherwise truncated with a warning;
  * lone surrogates: replaced by U+FFFD (same length, so character offsets stay valid) with a
    warning, before the text reaches the Tokenizer (which itself refuses them);
  * NaN/Inf in a model output: that request fails (RequestError), its batch-mates do not;
  * a batch the runner rejects (e.g. a token id beyond the model's vocabulary, from a
    tokenizer extended without resizing the model) is rerun one request at a time, so only the
    bad request fails; any other error while processing one item fails that item only.

In a list call the first failing item raises; ``run_many`` returns per-item results or
exceptions (what the micro-batcher and the CLI use).

Imports numpy, tokenizers and onnxruntime only (never torch); an engine directory also loads
TensorRT and a CUDA Python API when its runner starts (see ``runtime/trt.py``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...batching import pad_sequences, plan_batches
from ...errors import InvalidInputError, RequestError, UnknownNameError, check_int
from ...tasks import TaskSpec, get_task
from ...tokenization import Encoding, Tokenizer, replace_lone_surrogates
from ..base import Runner, nonfinite_rows, read_manifest
from ..factory import create_runner, is_engine_dir, verify_dir  # noqa: F401 - is_engine_dir re-exported
from .features import Feature, _is_int, _keys, _max_length, _read_json, _sigmoid, _softmax  # noqa: F401

__all__ = ["Pipeline", "Feature", "is_engine_dir", "DEFAULT_MAX_INPUT_CHARS"]

DEFAULT_MAX_INPUT_CHARS = 1_000_000


# ---------------------------------------------------------------------------------------------
# the base pipeline
# ---------------------------------------------------------------------------------------------
class Pipeline:
    """Base of the task pipelines. Build one with :meth:`from_export`.

    Args:
        runner: a started or unstarted Runner (OrtRunner, TorchRunner, TrtRunner).
        export_dir: the export directory, or a TensorRT engine directory (both hold
            manifest.json, config.json and the tokenizer files).
        batch_size: the largest batch sent to the runner.
        max_input_chars: texts longer than this are rejected before tokenizing.

    Attributes:
        tokenizer: the directory's :class:`~convbert_export.tokenization.Tokenizer`.
        max_length: the longest sequence sent to the runner, in tokens: the tokenizer's
            ``model_max_length``, capped by the model's positions and, for a TensorRT
            engine, by its optimization profiles' largest sequence. Longer inputs are
            truncated (with a warning) or split into windows, per task.
    """

    task: str = ""

    def __init__(
        self,
        runner: Runner,
        export_dir: str | os.PathLike,
        batch_size: int = 8,
        max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
    ):
        check_int("batch_size", batch_size, 1)
        self.export_dir = Path(export_dir)
        self.manifest = read_manifest(self.export_dir)
        self.config = _read_json(self.export_dir / "config.json") or {}
        self.spec: TaskSpec = get_task(self.manifest["task"])
        self.task = self.spec.name  # the registry's name (a class may serve several tasks)
        model = self.manifest.get("model") or {}
        max_positions = model.get("max_position_embeddings") or self.config.get("max_position_embeddings")
        self.tokenizer = Tokenizer.from_pretrained(self.export_dir)
        self.runner = runner
        self.max_length = _max_length(self.tokenizer, max_positions, runner)
        self.batch_size = batch_size
        self.max_input_chars = max_input_chars
        self.exact_padding = self.manifest.get("padding") == "exact"
        # variants whose rounding depends on the padded length (per-token dynamic int8: a row is
        # independent of its batch-mates, but not of the batch's sequence length) pad every text
        # to a multiple of this and batch equal padded lengths only, alone or not
        self.pad_multiple = int((self.manifest.get("backend_options") or {}).get("pad_to_multiple_of") or 1)
        if not self.manifest.get("batch_invariant", True) and batch_size > 1:
            warnings.warn(
                f"{self.export_dir}: this export's outputs depend on batch-mates (dynamic int8 "
                "quantization scales activations per batch); use batch_size=1 for results that do "
                "not depend on what else is in the batch",
                stacklevel=3,
            )
        id2label = self.manifest.get("id2label") or self.config.get("id2label") or {}
        self.id2label = {int(k): v for k, v in id2label.items()}
        self.runner.start()

    @classmethod
    def from_export(
        cls,
        export_dir: str | os.PathLike,
        provider: str | None = None,
        batch_size: int = 8,
        settings=None,
        runner: Runner | None = None,
        verify: bool = True,
        **kwargs,
    ) -> "Pipeline":
        """The pipeline of the directory's task, on ONNX Runtime, TensorRT or ``runner``.

        Args:
            export_dir: an export directory (manifest.json, model.onnx, tokenizer files), run
                with ONNX Runtime; or a TensorRT engine directory (model.plan, engine.json and
                the export's manifest, config and tokenizer files, as ``build-engine``
                writes it), run with :class:`~convbert_export.runtime.trt.TrtRunner`.
            provider: for an export directory, the ONNX Runtime provider: ``cpu`` (default),
                ``cuda`` or ``tensorrt``. An engine directory runs only on TensorRT: leave it
                out or pass ``tensorrt``; another provider is refused.
            batch_size: the largest batch.
            settings: ``OrtSettings`` for the session (threads, optimization, spinning);
                ONNX Runtime only, refused for an engine directory.
            runner: use this runner instead (TorchRunner, a TrtRunner with custom options);
                ``provider`` and ``settings`` are then unused.
            verify: check every file the pipeline reads (model, config, tokenizer files; for
                an engine directory, also manifest.json against engine.json) against the
                manifest's sha256 before anything is loaded; ``False`` skips it, for callers
                that verified the directory when they deployed it. A TensorRT plan's own hash is
                always checked.
            **kwargs: ``max_input_chars``.

        Raises:
            InvalidInputError: not an export or engine directory, or a provider/settings
                that the directory cannot use.
            IntegrityError: (``verify``) a file differs from the manifest, is missing, is not
                listed, or is a symlink leaving the directory.
            UnknownNameError: the task has no pipeline.
            MissingDependencyError: (engine directory) TensorRT, a CUDA Python API or a GPU
                is missing; raised when the runner starts, before any work.
        """
        task = read_manifest(export_dir).get("task")
        spec = get_task(task)  # an unknown task lists the tasks
        if not spec.pipeline:
            raise UnknownNameError(f"task {task!r} names no pipeline (TaskSpec.pipeline); it cannot be served")
        if verify:
            verify_dir(export_dir)
        if runner is None:
            runner = create_runner(export_dir, provider=provider, settings=settings, verify=False)
        target = spec.pipeline_class() if cls is Pipeline else cls
        return target(runner, export_dir, batch_size=batch_size, **kwargs)

    # ---- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        self.runner.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- public calls ------------------------------------------------------------------
    def __call__(self, inputs, **params):
        """Run one input or a list of inputs; a failing item raises."""
        single = not isinstance(inputs, list)
        items = [inputs] if single else inputs
        results = self.run_many(items, **params)
        for index, result in enumerate(results):
            if isinstance(result, Exception):
                if not single and isinstance(result, InvalidInputError):
                    raise type(result)(f"input {index}: {result}") from result
                raise result
        return self._wrap(results, single, params, items)

    def run_many(self, items: Sequence[Any], **params) -> list[Any]:
        """Results for every item, in order; a bad item gives its exception, not a raise.

        Bad parameters (not bad items) raise for the whole call.
        """
        if not isinstance(items, (list, tuple)):
            raise InvalidInputError(f"expected a list of inputs, got {type(items).__name__}")
        if len(items) == 0:
            raise InvalidInputError("empty input list; expected at least one input")
        params = self.sanitize(**params)
        results: list[Any] = [None] * len(items)
        features: list[Feature] = []
        owners: dict[int, list[int]] = {}
        checked: dict[int, Any] = {}  # what post-processing slices answers from (surrogates replaced)
        for index, item in enumerate(items):
            try:
                checked[index] = self.check_input(item)
                item_features = self.preprocess(checked[index], params)
            except Exception as exc:  # noqa: BLE001 - a failing item fails alone, never its batch-mates
                results[index] = exc
                continue
            for feature in item_features:
                feature.item = index
                owners.setdefault(index, []).append(len(features))
                features.append(feature)
        outputs = self.forward(features)
        for index, feature_ids in owners.items():
            outs = [outputs[i] for i in feature_ids]
            failed = next((o for o in outs if isinstance(o, Exception)), None)
            if failed is not None:
                results[index] = failed
                continue
            try:
                results[index] = self.postprocess(
                    checked[index], [features[i] for i in feature_ids], outs, params
                )
            except Exception as exc:  # noqa: BLE001 - as above
                results[index] = exc
        return results

    # ---- steps -------------------------------------------------------------------------
    def check_text(self, text: Any, what: str = "text") -> str:
        """Validate one text field; returns it (lone surrogates replaced)."""
        if text is None:
            raise InvalidInputError(f"{what} is None; expected a non-empty string")
        if not isinstance(text, str):
            hint = " (decode bytes with .decode('utf-8') first)" if isinstance(text, (bytes, bytearray)) else ""
            raise InvalidInputError(f"{what} must be a string, got {type(text).__name__}{hint}")
        if len(text) > self.max_input_chars:
            raise InvalidInputError(
                f"{what} has {len(text)} characters, more than max_input_chars={self.max_input_chars}; "
                "split it, or raise max_input_chars"
            )
        if not text.strip():
            raise InvalidInputError(f"{what} is empty or whitespace only; expected some text")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            warnings.warn(f"{what} contains lone surrogates; replaced by U+FFFD", RuntimeWarning, stacklevel=4)
            text = replace_lone_surrogates(text)
        return text

    def check_input(self, item: Any) -> Any:
        """Validate one input (the task's shape); subclasses with dict inputs override."""
        return self.check_text(item)

    def sanitize(self, **params) -> dict:
        if params:
            raise InvalidInputError(f"{self.task} pipeline got unknown parameters {sorted(params)}")
        return {}

    def preprocess(self, item: Any, params: dict) -> list[Feature]:
        raise NotImplementedError

    def postprocess(self, item: Any, features: list[Feature], outputs: list[dict], params: dict) -> Any:
        raise NotImplementedError

    def _label(self, index: int) -> str:
        """The label name of a class index (``LABEL_i`` when the export names none)."""
        return self.id2label.get(index, f"LABEL_{index}")

    def _wrap(self, results: list, single: bool, params: dict, items: list):
        return results[0] if single else results

    def _encode(self, text: str, pair: str | None = None, *, max_length: int, stride: int = 0,
                strategy: str = "longest_first") -> list[Encoding]:
        """Encodings of one input: the first window, then the overflowing ones.

        A text the tokenizer cannot cut as asked (e.g. a question longer than ``max_seq_len``
        with ``only_second``) fails that request alone (RequestError).
        """
        try:
            return self.tokenizer.encode_batch(
                text, pair, truncation=strategy, max_length=max_length, stride=stride,
                return_overflowing_tokens=True,
            )
        except InvalidInputError as exc:
            raise RequestError(f"tokenization failed: {exc}") from exc

    def _truncating(self, text: str, pair: str | None = None, what: str = "text") -> list[Encoding]:
        """One encoding, truncated to ``max_length`` with a warning when needed."""
        limit = self.max_length
        encodings = self._encode(text, pair, max_length=limit)
        if len(encodings) > 1:
            warnings.warn(
                f"{what} is longer than the model's {limit} positions; truncated to {limit} tokens",
                RuntimeWarning,
                stacklevel=4,
            )
        return encodings[:1]

    def _feature(self, encoding: Encoding, **extra) -> Feature:
        return Feature(
            item=-1,
            ids=encoding.ids,
            type_ids=encoding.type_ids,
            encoding=encoding,
            extra=extra,
        )

    # ---- batching and running ------------------------------------------------------------
    def batch_keys(self, features: list[Feature]) -> list:
        return [self._bucket(f.length) for f in features]

    def _bucket(self, length: int) -> int:
        """The padded length of a sequence: itself, or the next multiple of ``pad_multiple``
        (at most ``max_length``)."""
        if self.pad_multiple <= 1:
            return length
        return max(length, min(-(-length // self.pad_multiple) * self.pad_multiple, self.max_length))

    def forward(self, features: list[Feature]) -> list[dict | Exception]:
        """Run every feature in exact batches; per feature its outputs (sliced to its length)."""
        out: list[dict | Exception] = [None] * len(features)  # type: ignore[list-item]
        if not features:
            return out
        keys = self.batch_keys(features)
        exact = self.exact_padding and not self.spec.multiple_choice and self.pad_multiple <= 1
        names = list(self.runner.input_metadata)
        pad = self.tokenizer.pad_token_id or 0
        seq_axis = {name: axes.index("sequence") if "sequence" in axes else None
                    for name, axes in self.spec.outputs.items()}
        pending = list(plan_batches(keys, self.batch_size, exact=exact))
        while pending:
            batch = pending.pop(0)
            feeds = self._pad([features[i] for i in batch], pad)
            feeds = {name: feeds[name] for name in names}
            try:
                values = self.runner.run(feeds)
            except Exception as exc:  # noqa: BLE001 - isolate the request the runner rejects
                if len(batch) == 1:
                    out[batch[0]] = exc
                else:  # rerun one by one, so only the bad request fails (results are exact alone)
                    pending[:0] = [[index] for index in batch]
                continue
            bad = nonfinite_rows(values)
            for row, index in enumerate(batch):
                if bad[row]:
                    out[index] = RequestError(
                        "the model returned NaN or Inf for this input; the request failed (its "
                        "batch-mates are unaffected); check the export's precision (fp16 overflow?)"
                    )
                    continue
                length = features[index].length
                result = {}
                for name, value in values.items():
                    item = value[row]
                    axis = seq_axis.get(name)
                    if axis is not None:
                        item = np.take(item, np.arange(length), axis=axis - 1)
                    result[name] = item
                out[index] = result
        return out

    def _pad(self, features: list[Feature], pad: int) -> dict[str, np.ndarray]:
        length = self._bucket(max(f.length for f in features))
        ids = pad_sequences([f.ids for f in features], pad, length)
        types = pad_sequences([f.type_ids for f in features], 0, length)
        mask = pad_sequences([np.ones(f.length, np.int64) for f in features], 0, length)
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
