"""multiple-choice: the best of several candidate continuations."""

from __future__ import annotations

import numpy as np

from ...batching import pad_sequences
from ...errors import InvalidInputError
from .base import Feature, Pipeline, _keys, _softmax


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
