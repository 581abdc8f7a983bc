"""feature-extraction: token embeddings, optionally pooled."""

from __future__ import annotations

import numpy as np

from ...errors import lookup
from .base import Pipeline


POOLINGS = ("none", "mean", "cls")


class FeatureExtractionPipeline(Pipeline):
    """Token embeddings like transformers' feature-extraction pipeline (``[1][tokens][hidden]``
    nested lists), or pooled: ``pooling="mean"`` (over real tokens) / ``"cls"`` -> ``[hidden]``.
    ``return_tensors=True`` returns numpy arrays instead of lists."""

    task = "feature-extraction"

    def sanitize(self, pooling: str = "none", return_tensors: bool = False) -> dict:
        lookup(POOLINGS, pooling, "pooling")
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
