"""question-answering: extractive answers over windows of a long context."""

from __future__ import annotations

import numpy as np

from ...errors import InvalidInputError
from ...tokenization import Encoding
from .base import Pipeline, _is_int, _keys


class QuestionAnsweringPipeline(Pipeline):
    """Extractive QA with transformers' (4.x) question-answering semantics.

    Input ``{"question", "context"}``. Parameters: ``top_k`` (1), ``doc_stride``
    (min(max_seq_len // 2, 128)), ``max_answer_len`` (15), ``max_seq_len``
    (min(model max length, 384)), ``handle_impossible_answer`` (False), ``align_to_words``
    (True). A long context is split into overlapping windows, each run alone (exact batching);
    span scores are p(start) * p(end) within a window; answers from every window are ranked
    together; with ``align_to_words`` (transformers 4.x's fast-tokenizer path) 2*top_k+10
    candidates per window are taken and those with the same answer text (case-insensitive) are
    merged, their scores summed. Returns ``{"score", "start", "end", "answer"}`` (a list when
    top_k > 1).
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
        # as transformers 4.x (fast tokenizer): aligning to words may map several token spans to
        # one answer, so take 2*top_k+10 candidates per window, then merge candidates whose text
        # is equal (case-insensitive), summing their scores, across windows
        pre_top_k = params["top_k"] * 2 + 10 if params["align"] else params["top_k"]
        for feature, out in zip(features, outputs):
            starts, ends, scores, min_null = _select_starts_ends(
                out["start_logits"][None].astype(np.float32), out["end_logits"][None].astype(np.float32),
                feature.extra["p_mask"], min_null, pre_top_k, params["impossible"], params["max_answer_len"],
            )
            enc = feature.encoding
            for s, e, score in zip(starts, ends, scores):
                start, end = self._indices(enc, int(s), int(e), params["align"])
                text = context[start:end]
                same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
                if same is not None:
                    same["score"] += float(score)
                else:
                    answers.append({"score": float(score), "start": start, "end": end, "answer": text})
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
