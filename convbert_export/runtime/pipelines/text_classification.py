"""text-classification: ``{"label", "score"}`` per text or text pair."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import InvalidInputError, lookup
from .base import Pipeline, _keys, _sigmoid, _softmax


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
                lookup(self._FUNCTIONS, function_to_apply, "function_to_apply")
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

    def _wrap(self, results, single, params, items):
        if single and "top_k" not in params and isinstance(items[0], str):
            return [results[0]]  # transformers' legacy shape for one plain text
        return results[0] if single else results
