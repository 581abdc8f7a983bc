"""fill-mask: the most likely tokens for each mask."""

from __future__ import annotations

import warnings

import numpy as np

from ...errors import InvalidInputError
from .base import Pipeline, _softmax


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
            if self.tokenizer.mask_token and self.tokenizer.mask_token in text:
                raise InvalidInputError(
                    f"the mask token ({self.tokenizer.mask_token}) was cut off: the text is longer than "
                    f"the model's {self.max_length} tokens and truncation removed it; shorten the text "
                    "around the mask"
                )
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
