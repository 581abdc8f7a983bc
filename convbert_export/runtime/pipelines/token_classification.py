"""token-classification: entities with character offsets (NER, POS)."""

from __future__ import annotations

import numpy as np

from ...errors import InvalidInputError, lookup
from .base import Pipeline, _softmax


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
            lookup(AGGREGATIONS, aggregation_strategy, "aggregation_strategy")
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
