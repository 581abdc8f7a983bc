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

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..batching import pad_sequences, plan_batches
from ..errors import InvalidInputError, RequestError, UnknownNameError
from ..tasks import TaskSpec, get_task
from ..tokenization import Encoding, Tokenizer
from .base import Runner, nonfinite_rows, read_manifest

__all__ = [
    "Pipeline",
    "TextClassificationPipeline",
    "TokenClassificationPipeline",
    "QuestionAnsweringPipeline",
    "FillMaskPipeline",
    "FeatureExtractionPipeline",
    "MultipleChoicePipeline",
    "PIPELINES",
]

DEFAULT_MAX_INPUT_CHARS = 1_000_000


def _read_json(path: Path):
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _keys(item: dict) -> list[str]:
    """A dict's keys for an error message (sorted as text: keys need not be comparable)."""
    return sorted(repr(key) if not isinstance(key, str) else key for key in item)


def is_engine_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a TensorRT engine directory (it holds ``engine.json``), as written by
    ``convbert-export build-engine``; otherwise it is taken for an export directory."""
    return (Path(path) / "engine.json").is_file()


def _max_length(tokenizer: Tokenizer, max_positions: int | None, runner: Runner) -> int:
    """The longest sequence (in tokens) a pipeline sends to its runner: the tokenizer's
    ``model_max_length``, capped by the model's positions and, for a runner with TensorRT
    optimization profiles, by the longest sequence any profile accepts."""
    limit = tokenizer.model_max_length
    if max_positions:
        limit = min(limit, int(max_positions))
    profiles = getattr(runner, "profiles", None)
    if profiles:
        limit = min(limit, max(profile.sequence.max for profile in profiles))
    return limit


# ---------------------------------------------------------------------------------------------
# features: one model row (or one multiple-choice block) of one input
# ---------------------------------------------------------------------------------------------
@dataclass
class Feature:
    """One row the model runs: token ids and type ids (2-D blocks for multiple choice)."""

    item: int
    ids: np.ndarray
    type_ids: np.ndarray
    encoding: Encoding | None = None
    extra: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.ids.shape[-1])


def _is_int(value: Any) -> bool:
    """An int parameter (bool excluded: ``top_k=True`` is a mistake, not 1)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


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
        if not _is_int(batch_size) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.export_dir = Path(export_dir)
        self.manifest = read_manifest(self.export_dir)
        self.config = _read_json(self.export_dir / "config.json") or {}
        self.spec: TaskSpec = get_task(self.manifest["task"])
        model = self.manifest.get("model") or {}
        max_positions = model.get("max_position_embeddings") or self.config.get("max_position_embeddings")
        self.tokenizer = Tokenizer.from_pretrained(self.export_dir)
        self.runner = runner
        self.max_length = _max_length(self.tokenizer, max_positions, runner)
        self.batch_size = batch_size
        self.max_input_chars = max_input_chars
        self.exact_padding = self.manifest.get("padding") == "exact"
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
            **kwargs: ``max_input_chars``.

        Raises:
            InvalidInputError: not an export or engine directory, or a provider/settings
                that the directory cannot use.
            UnknownNameError: the task has no pipeline.
            MissingDependencyError: (engine directory) TensorRT, a CUDA Python API or a GPU
                is missing; raised when the runner starts, before any work.
        """
        engine = is_engine_dir(export_dir)
        manifest = read_manifest(export_dir)
        task = manifest.get("task")
        if task not in PIPELINES:
            raise UnknownNameError(f"no pipeline for task {task!r}; expected one of: {', '.join(PIPELINES)}")
        if runner is None and engine:
            if provider not in (None, "tensorrt"):
                raise InvalidInputError(
                    f"{str(export_dir)!r} is a TensorRT engine directory (it has engine.json), which runs "
                    f"only on TensorRT; got provider={provider!r}. Leave provider out (or pass "
                    "'tensorrt'), or run the export directory it was built from with ONNX Runtime"
                )
            if settings is not None:
                raise InvalidInputError(
                    f"settings ({type(settings).__name__}) configure ONNX Runtime, but {str(export_dir)!r} "
                    "is a TensorRT engine directory; leave settings out, or pass runner=TrtRunner(...) "
                    "for TensorRT options"
                )
            from .trt import TrtRunner

            runner = TrtRunner(export_dir)
            if runner.info.task != task:
                raise InvalidInputError(
                    f"{str(export_dir)!r}: engine.json says task {runner.info.task!r} but manifest.json says "
                    f"{task!r}; the engine directory is inconsistent, rebuild it with `convbert-export build-engine`"
                )
        elif runner is None:
            from .ort import OrtRunner

            runner = OrtRunner(export_dir, provider=provider or "cpu", settings=settings)
        target = PIPELINES[task] if cls is Pipeline else cls
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
        for index, item in enumerate(items):
            try:
                item_features = self.preprocess(self.check_input(item), params)
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
                    items[index], [features[i] for i in feature_ids], outs, params
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
            text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
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
        return [f.length for f in features]

    def forward(self, features: list[Feature]) -> list[dict | Exception]:
        """Run every feature in exact batches; per feature its outputs (sliced to its length)."""
        out: list[dict | Exception] = [None] * len(features)  # type: ignore[list-item]
        if not features:
            return out
        keys = self.batch_keys(features)
        exact = self.exact_padding and not self.spec.multiple_choice
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
        ids = pad_sequences([f.ids for f in features], pad)
        types = pad_sequences([f.type_ids for f in features], 0)
        mask = pad_sequences([np.ones(f.length, np.int64) for f in features], 0)
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


# ---------------------------------------------------------------------------------------------
# text-classification
# ---------------------------------------------------------------------------------------------
class TextClassificationPipeline(Pipeline):
    """``{"label", "score"}`` like transformers' text-classification pipeline.

    Inputs: a text, or ``{"text", "text_pair"}``. Parameters: ``top_k`` (int or None = all,
    sorted), ``function_to_apply`` (``softmax``, ``sigmoid``, ``none``; default from the
    config: regression -> none, multi-label or one label -> sigmoid, else softmax). As in
    transformers, a single text without ``top_k`` returns ``[{"label", "score"}]``.
    """

    task = "text-classification"
    _FUNCTIONS = ("softmax", "sigmoid", "none")

    def check_input(self, item):
        if isinstance(item, dict):
            unknown = set(item) - {"text", "text_pair"}
            if "text" not in item or unknown:
                raise InvalidInputError(
                    f"a text pair must be {{'text', 'text_pair'}}, got keys {_keys(item)}"
                )
            pair = item.get("text_pair")
            return (self.check_text(item["text"]), None if pair is None else self.check_text(pair, "text_pair"))
        return (self.check_text(item), None)

    def sanitize(self, top_k: Any = "", function_to_apply: str | None = None) -> dict:
        params: dict = {"legacy": top_k == ""}
        if top_k != "":
            if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
                raise InvalidInputError(f"top_k must be a positive int or None, got {top_k!r}")
            params["top_k"] = top_k
        if function_to_apply is not None:
            name = str(function_to_apply).lower()
            if name not in self._FUNCTIONS:
                raise UnknownNameError(
                    f"unknown function_to_apply {function_to_apply!r}; expected one of: {', '.join(self._FUNCTIONS)}"
                )
            params["function"] = name
        return params

    def preprocess(self, item, params):
        text, pair = item
        return [self._feature(enc) for enc in self._truncating(text, pair)]

    def _default_function(self) -> str:
        problem = self.config.get("problem_type")
        num_labels = len(self.id2label) or self.config.get("num_labels", 2)
        if problem == "regression":
            return "none"
        if problem == "multi_label_classification" or num_labels == 1:
            return "sigmoid"
        return "softmax"

    def postprocess(self, item, features, outputs, params):
        logits = outputs[0]["logits"].astype(np.float32)
        function = params.get("function") or self._default_function()
        scores = {"softmax": _softmax, "sigmoid": _sigmoid, "none": lambda x: x}[function](logits)
        if params["legacy"]:
            best = int(scores.argmax())
            return {"label": self._label(best), "score": float(scores[best])}
        ranked = sorted(
            ({"label": self._label(i), "score": float(s)} for i, s in enumerate(scores)),
            key=lambda d: d["score"],
            reverse=True,
        )
        top_k = params.get("top_k")
        return ranked if top_k is None else ranked[:top_k]

    def _label(self, index: int) -> str:
        return self.id2label.get(index, f"LABEL_{index}")

    def _wrap(self, results, single, params, items):
        if single and "top_k" not in params and isinstance(items[0], str):
            return [results[0]]  # transformers' legacy shape for one plain text
        return results[0] if single else results



# ---------------------------------------------------------------------------------------------
# token-classification
# ---------------------------------------------------------------------------------------------
AGGREGATIONS = ("none", "simple", "first", "average", "max")


class TokenClassificationPipeline(Pipeline):
    """Entities like transformers' token-classification (NER) pipeline.

    Parameters: ``aggregation_strategy`` (none/simple/first/average/max), ``ignore_labels``
    (default ``["O"]``), ``stride`` (windows over long texts; overlapping entities merged as
    transformers does). Each entity has character ``start``/``end`` into the input text.
    """

    task = "token-classification"

    def sanitize(self, aggregation_strategy: str = "none", ignore_labels=None, stride: int | None = None) -> dict:
        strategy = str(getattr(aggregation_strategy, "value", aggregation_strategy)).lower()
        if strategy not in AGGREGATIONS:
            raise UnknownNameError(
                f"unknown aggregation_strategy {aggregation_strategy!r}; expected one of: {', '.join(AGGREGATIONS)}"
            )
        if stride is not None:
            if not isinstance(stride, int) or stride < 0 or stride >= self.max_length:
                raise InvalidInputError(
                    f"stride must be an int in [0, {self.max_length}), got {stride!r}"
                )
            if strategy == "none":
                raise InvalidInputError(
                    "stride needs an aggregation_strategy other than 'none' (windows are merged by "
                    "entity); pass aggregation_strategy='simple' (or first/average/max)"
                )
        if ignore_labels is None:
            ignore = ["O"]
        elif isinstance(ignore_labels, str):  # one label, not its characters
            ignore = [ignore_labels]
        else:
            ignore = list(ignore_labels)
        return {"strategy": strategy, "ignore": ignore, "stride": stride}

    def preprocess(self, text, params):
        if params["stride"] is None:
            encodings = self._truncating(text)
        else:
            encodings = self._encode(text, max_length=self.max_length, stride=params["stride"])
        return [self._feature(enc) for enc in encodings]

    def postprocess(self, text, features, outputs, params):
        strategy = params["strategy"]
        entities: list[dict] = []
        for feature, out in zip(features, outputs):
            scores = _softmax(out["logits"].astype(np.float32))
            pre = self._pre_entities(text, feature, scores)
            grouped = self._aggregate(pre, strategy)
            entities.extend(
                e for e in grouped
                if e.get("entity") not in params["ignore"] and e.get("entity_group") not in params["ignore"]
            )
        if len(features) > 1:
            entities = _merge_overlapping(entities)
        for entity in entities:
            entity["score"] = float(entity["score"])
        return entities

    def _pre_entities(self, text, feature, scores):
        enc = feature.encoding
        subword_prefix = getattr(self.tokenizer.backend.model, "continuing_subword_prefix", None)
        pre = []
        for idx, token_scores in enumerate(scores):
            if enc.special_tokens_mask[idx]:
                continue
            token_id = int(feature.ids[idx])
            word = self.tokenizer.convert_ids_to_tokens(token_id)
            start, end = (int(v) for v in enc.offsets[idx])
            word_ref = text[start:end]
            if subword_prefix:
                is_subword = len(word) != len(word_ref)
            else:
                is_subword = start > 0 and " " not in text[start - 1 : start + 1]
            if token_id == self.tokenizer.unk_token_id:
                word = word_ref
                is_subword = False
            pre.append({"word": word, "scores": token_scores, "start": start, "end": end,
                        "index": idx, "is_subword": is_subword})
        return pre

    def _aggregate(self, pre, strategy):
        if strategy in ("none", "simple"):
            entities = []
            for p in pre:
                best = int(p["scores"].argmax())
                entities.append({"entity": self._label(best), "score": p["scores"][best], "index": p["index"],
                                 "word": p["word"], "start": p["start"], "end": p["end"]})
        else:
            entities = self._aggregate_words(pre, strategy)
        if strategy == "none":
            return entities
        return self._group_entities(entities)

    def _label(self, index: int) -> str:
        return self.id2label.get(index, f"LABEL_{index}")

    def _aggregate_word(self, group, strategy):
        word = self.tokenizer.convert_tokens_to_string([e["word"] for e in group])
        if strategy == "first":
            scores = group[0]["scores"]
        elif strategy == "max":
            scores = max(group, key=lambda e: e["scores"].max())["scores"]
        else:  # average
            scores = np.nanmean(np.stack([e["scores"] for e in group]), axis=0)
        best = int(scores.argmax())
        return {"entity": self._label(best), "score": scores[best], "word": word,
                "start": group[0]["start"], "end": group[-1]["end"]}

    def _aggregate_words(self, pre, strategy):
        words, group = [], None
        for entity in pre:
            if group is None:
                group = [entity]
            elif entity["is_subword"]:
                group.append(entity)
            else:
                words.append(self._aggregate_word(group, strategy))
                group = [entity]
        if group is not None:
            words.append(self._aggregate_word(group, strategy))
        return words

    @staticmethod
    def _tag(name: str) -> tuple[str, str]:
        if name.startswith("B-"):
            return "B", name[2:]
        if name.startswith("I-"):
            return "I", name[2:]
        return "I", name

    def _group(self, entities):
        return {
            "entity_group": entities[0]["entity"].split("-", 1)[-1],
            "score": float(np.mean(np.nanmean([e["score"] for e in entities]))),
            "word": self.tokenizer.convert_tokens_to_string([e["word"] for e in entities]),
            "start": entities[0]["start"],
            "end": entities[-1]["end"],
        }

    def _group_entities(self, entities):
        groups, current = [], []
        for entity in entities:
            if not current:
                current.append(entity)
                continue
            bi, tag = self._tag(entity["entity"])
            _, last_tag = self._tag(current[-1]["entity"])
            if tag == last_tag and bi != "B":
                current.append(entity)
            else:
                groups.append(self._group(current))
                current = [entity]
        if current:
            groups.append(self._group(current))
        return groups


def _merge_overlapping(entities: list[dict]) -> list[dict]:
    """transformers' aggregate_overlapping_entities: keep the longer (then higher-scoring) one."""
    if not entities:
        return entities
    entities = sorted(entities, key=lambda e: e["start"])
    merged, previous = [], entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
            if length > previous_length or (length == previous_length and entity["score"] > previous["score"]):
                previous = entity
        else:
            merged.append(previous)
            previous = entity
    merged.append(previous)
    return merged


# ---------------------------------------------------------------------------------------------
# question-answering
# ---------------------------------------------------------------------------------------------
class QuestionAnsweringPipeline(Pipeline):
    """Extractive QA with transformers' (4.x) question-answering semantics.

    Input ``{"question", "context"}``. Parameters: ``top_k`` (1), ``doc_stride``
    (min(max_seq_len // 2, 128)), ``max_answer_len`` (15), ``max_seq_len``
    (min(model max length, 384)), ``handle_impossible_answer`` (False), ``align_to_words``
    (True). A long context is split into overlapping windows, each run alone (exact batching);
    span scores are p(start) * p(end) within a window; answers from every window are ranked
    together. Returns ``{"score", "start", "end", "answer"}`` (a list when top_k > 1).
    """

    task = "question-answering"

    def check_input(self, item):
        if not isinstance(item, dict) or "question" not in item or "context" not in item:
            got = _keys(item) if isinstance(item, dict) else type(item).__name__
            raise InvalidInputError(f"question-answering expects {{'question', 'context'}}, got {got}")
        return {"question": self.check_text(item["question"], "question"),
                "context": self.check_text(item["context"], "context")}

    def sanitize(self, top_k: int = 1, doc_stride: int | None = None, max_answer_len: int = 15,
                 max_seq_len: int | None = None, handle_impossible_answer: bool = False,
                 align_to_words: bool = True, max_question_len: int | None = None) -> dict:
        max_seq_len = min(self.max_length, 384) if max_seq_len is None else max_seq_len
        # [CLS] question [SEP] context [SEP]: at least one question and one context token
        if not _is_int(max_seq_len) or max_seq_len < 5:
            raise InvalidInputError(f"max_seq_len must be an int >= 5, got {max_seq_len!r}")
        if max_seq_len > self.max_length:
            raise InvalidInputError(
                f"max_seq_len {max_seq_len} exceeds the model's {self.max_length} positions"
            )
        doc_stride = min(max_seq_len // 2, 128) if doc_stride is None else doc_stride
        if not _is_int(doc_stride) or not 0 <= doc_stride < max_seq_len:
            raise InvalidInputError(
                f"doc_stride must be an int in [0, max_seq_len={max_seq_len}), got {doc_stride!r}; "
                "it is the overlap between windows, so it must be smaller than a window"
            )
        if not _is_int(top_k) or top_k < 1:
            raise InvalidInputError(f"top_k must be an int >= 1, got {top_k!r}")
        if not _is_int(max_answer_len) or max_answer_len < 1:
            raise InvalidInputError(f"max_answer_len must be an int >= 1, got {max_answer_len!r}")
        return {"top_k": top_k, "doc_stride": doc_stride, "max_answer_len": max_answer_len,
                "max_seq_len": max_seq_len, "impossible": bool(handle_impossible_answer),
                "align": bool(align_to_words)}

    def preprocess(self, item, params):
        encodings = self._encode(
            item["question"], item["context"], max_length=params["max_seq_len"],
            stride=params["doc_stride"], strategy="only_second",
        )
        features = []
        for enc in encodings:
            p_mask = (enc.sequence_ids != 1).astype(np.int64)
            p_mask[enc.ids == self.tokenizer.cls_token_id] = 0
            features.append(self._feature(enc, p_mask=p_mask))
        return features

    def postprocess(self, item, features, outputs, params):
        context = item["context"]
        min_null = 1_000_000.0
        answers = []
        for feature, out in zip(features, outputs):
            starts, ends, scores, min_null = _select_starts_ends(
                out["start_logits"][None].astype(np.float32), out["end_logits"][None].astype(np.float32),
                feature.extra["p_mask"], min_null, params["top_k"], params["impossible"], params["max_answer_len"],
            )
            enc = feature.encoding
            for s, e, score in zip(starts, ends, scores):
                start, end = self._indices(enc, int(s), int(e), params["align"])
                answers.append({"score": float(score), "start": start, "end": end, "answer": context[start:end]})
        if params["impossible"]:
            answers.append({"score": float(min_null), "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda a: a["score"], reverse=True)[: params["top_k"]]
        return answers[0] if len(answers) == 1 else answers

    @staticmethod
    def _indices(enc: Encoding, s: int, e: int, align: bool) -> tuple[int, int]:
        if align:
            words = enc.word_ids  # -1 for special tokens
            if words[s] >= 0 and words[e] >= 0:
                try:
                    start = enc.word_to_chars(int(words[s]), sequence_index=1)[0]
                    end = enc.word_to_chars(int(words[e]), sequence_index=1)[1]
                    return start, end
                except InvalidInputError:  # fall back to token offsets like transformers
                    pass
        return int(enc.offsets[s][0]), int(enc.offsets[e][1])


def _decode_spans(start, end, topk, max_answer_len, undesired):
    outer = np.matmul(np.expand_dims(start, -1), np.expand_dims(end, 1))
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    flat = candidates.flatten()
    if topk == 1:
        order = [np.argmax(flat)]
    elif len(flat) <= topk:  # argpartition needs kth < len
        order = np.argsort(-flat)
    else:
        part = np.argpartition(-flat, topk)[0:topk]
        order = part[np.argsort(-flat[part])]
    starts, ends = np.unravel_index(order, candidates.shape)[1:]
    wanted = np.isin(starts, undesired.nonzero()) & np.isin(ends, undesired.nonzero())
    starts, ends = starts[wanted], ends[wanted]
    return starts, ends, candidates[0, starts, ends]


def _select_starts_ends(start, end, p_mask, min_null, top_k, impossible, max_answer_len):
    undesired = np.abs(np.asarray(p_mask) - 1)
    undesired_mask = undesired == 0.0
    start = np.where(undesired_mask, -10000.0, start)
    end = np.where(undesired_mask, -10000.0, end)
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    if impossible:
        min_null = min(min_null, float(start[0, 0] * end[0, 0]))
    start[0, 0] = end[0, 0] = 0.0
    starts, ends, scores = _decode_spans(start, end, top_k, max_answer_len, undesired)
    return starts, ends, scores, min_null


# ---------------------------------------------------------------------------------------------
# fill-mask
# ---------------------------------------------------------------------------------------------
class FillMaskPipeline(Pipeline):
    """Masked-token prediction like transformers' fill-mask pipeline.

    Parameters: ``top_k`` (5), ``targets`` (a token or list: scores restricted to them; a target
    that is not one vocabulary token uses its first piece, with a warning). A text needs at least
    one mask token; with several, one list per mask.
    """

    task = "fill-mask"

    def sanitize(self, top_k: int = 5, targets=None) -> dict:
        if not isinstance(top_k, int) or top_k < 1:
            raise InvalidInputError(f"top_k must be >= 1, got {top_k!r}")
        vocab_size = (self.manifest.get("model") or {}).get("vocab_size")
        if vocab_size and self.tokenizer.mask_token_id >= vocab_size:
            raise InvalidInputError(
                f"the mask token {self.tokenizer.mask_token!r} is not in the model's vocabulary (id "
                f"{self.tokenizer.mask_token_id}, expected < {vocab_size}); fill-mask cannot run with "
                "this tokenizer"
            )
        return {"top_k": top_k, "targets": None if targets is None else self._target_ids(targets)}

    def _target_ids(self, targets) -> np.ndarray:
        if isinstance(targets, str):
            targets = [targets]
        ids = []
        for target in targets:
            index = self.tokenizer.backend.token_to_id(target) if isinstance(target, str) else None
            if index is None:
                pieces = self.tokenizer.encode_batch(target, add_special_tokens=False)[0].ids
                if not len(pieces):
                    warnings.warn(f"target {target!r} is not in the vocabulary; ignored", RuntimeWarning, stacklevel=4)
                    continue
                index = int(pieces[0])
                warnings.warn(
                    f"target {target!r} is not one vocabulary token; using "
                    f"{self.tokenizer.convert_ids_to_tokens(index)!r}", RuntimeWarning, stacklevel=4,
                )
            ids.append(index)
        ids = list(set(ids))
        if not ids:
            raise InvalidInputError("targets: at least one target must be in the vocabulary")
        return np.array(ids)

    def preprocess(self, text, params):
        features = [self._feature(enc) for enc in self._truncating(text)]
        if not (features[0].ids == self.tokenizer.mask_token_id).any():
            raise InvalidInputError(
                f"no mask token ({self.tokenizer.mask_token}) in the input; put one where the word is missing"
            )
        return features

    def postprocess(self, text, features, outputs, params):
        ids = features[0].ids
        logits = outputs[0]["logits"].astype(np.float32)
        masked = np.flatnonzero(ids == self.tokenizer.mask_token_id)
        probs = _softmax(logits[masked])
        target_ids = params["targets"]
        top_k = params["top_k"]
        if target_ids is not None:
            probs = probs[..., target_ids]
            top_k = min(top_k, len(target_ids))
        single = len(masked) == 1
        rows = []
        for i, row_probs in enumerate(probs):
            order = np.argsort(-row_probs, kind="stable")[:top_k]
            row = []
            for p in order:
                token = int(target_ids[p]) if target_ids is not None else int(p)
                tokens = ids.copy()
                tokens[masked[i]] = token
                tokens = tokens[tokens != self.tokenizer.pad_token_id]
                row.append({
                    "score": float(row_probs[p]),
                    "token": token,
                    "token_str": self.tokenizer.decode([token], skip_special_tokens=False),
                    "sequence": self.tokenizer.decode(tokens, skip_special_tokens=single),
                })
            rows.append(row)
        return rows[0] if single else rows

    def _wrap(self, results, single, params, items):
        if single or len(results) == 1:
            return results[0]
        return results


# ---------------------------------------------------------------------------------------------
# feature-extraction
# ---------------------------------------------------------------------------------------------
POOLINGS = ("none", "mean", "cls")


class FeatureExtractionPipeline(Pipeline):
    """Token embeddings like transformers' feature-extraction pipeline (``[1][tokens][hidden]``
    nested lists), or pooled: ``pooling="mean"`` (over real tokens) / ``"cls"`` -> ``[hidden]``.
    ``return_tensors=True`` returns numpy arrays instead of lists."""

    task = "feature-extraction"

    def sanitize(self, pooling: str = "none", return_tensors: bool = False) -> dict:
        if pooling not in POOLINGS:
            raise UnknownNameError(f"unknown pooling {pooling!r}; expected one of: {', '.join(POOLINGS)}")
        return {"pooling": pooling, "tensors": bool(return_tensors)}

    def preprocess(self, text, params):
        return [self._feature(enc) for enc in self._truncating(text)]

    def postprocess(self, text, features, outputs, params):
        hidden = outputs[0]["last_hidden_state"].astype(np.float32)  # (S, H)
        if params["pooling"] == "mean":
            value = hidden.mean(axis=0)
        elif params["pooling"] == "cls":
            value = hidden[0]
        else:
            value = hidden[None]
        return value if params["tensors"] else value.tolist()


# ---------------------------------------------------------------------------------------------
# multiple-choice
# ---------------------------------------------------------------------------------------------
class MultipleChoicePipeline(Pipeline):
    """``{"prompt", "choices"}`` -> ``{"choice", "index", "scores"}`` (softmax over choices).

    No transformers pipeline exists for this task. Each (prompt, choice) pair is encoded and
    all choices of one question are padded to the longest choice, as transformers' examples do;
    the head pools the LAST position (transformers' summary_type "last"), which is a padding
    position for shorter choices. A question is therefore run as its own block: it batches only
    with questions of the same (number of choices, padded length), so its answer never depends
    on its batch-mates.
    """

    task = "multiple-choice"

    def check_input(self, item):
        if not isinstance(item, dict) or "prompt" not in item or "choices" not in item:
            got = _keys(item) if isinstance(item, dict) else type(item).__name__
            raise InvalidInputError(f"multiple-choice expects {{'prompt', 'choices'}}, got {got}")
        choices = item["choices"]
        if not isinstance(choices, (list, tuple)) or len(choices) < 1:
            raise InvalidInputError("choices must be a non-empty list of strings")
        return {"prompt": self.check_text(item["prompt"], "prompt"),
                "choices": [self.check_text(c, f"choices[{i}]") for i, c in enumerate(choices)]}

    def preprocess(self, item, params):
        encodings = [self._truncating(item["prompt"], choice, "prompt + choice")[0] for choice in item["choices"]]
        length = max(len(e.ids) for e in encodings)
        pad = self.tokenizer.pad_token_id or 0
        ids = pad_sequences([e.ids for e in encodings], pad, length)
        types = pad_sequences([e.type_ids for e in encodings], 0, length)
        mask = pad_sequences([e.attention_mask for e in encodings], 0, length)
        return [Feature(item=-1, ids=ids, type_ids=types, extra={"mask": mask})]

    def batch_keys(self, features):
        return [(f.ids.shape[0], f.ids.shape[1]) for f in features]

    def _pad(self, features, pad):
        return {
            "input_ids": np.stack([f.ids for f in features]),
            "attention_mask": np.stack([f.extra["mask"] for f in features]),
            "token_type_ids": np.stack([f.type_ids for f in features]),
        }

    def postprocess(self, item, features, outputs, params):
        logits = outputs[0]["logits"].astype(np.float32)
        scores = _softmax(logits)
        best = int(scores.argmax())
        return {"choice": item["choices"][best], "index": best, "scores": [float(s) for s in scores]}


PIPELINES: dict[str, type[Pipeline]] = {
    cls.task: cls
    for cls in (
        TextClassificationPipeline,
        TokenClassificationPipeline,
        QuestionAnsweringPipeline,
        FillMaskPipeline,
        FeatureExtractionPipeline,
        MultipleChoicePipeline,
    )
}
