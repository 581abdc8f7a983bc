"""Per-task evaluation: which fields a row needs, how a pipeline result becomes a prediction,
the task's standard metrics, and how far a variant's prediction is from the reference's.

One :class:`TaskEval` subclass per task (the base and :class:`Example` are in ``taskeval.py``),
named by the task's ``TaskSpec.evaluator`` (a task without one is refused, naming those with one).
A row the task cannot use raises :class:`~.data.BadRow` with the reason.
"""

from __future__ import annotations

import numpy as np

from ..errors import lookup
from . import metrics as M
from .data import BadRow
from .taskeval import Example, TaskEval, _field, _text


class TextClassification(TaskEval):
    task = "text-classification"

    def __init__(self, pipeline):
        super().__init__(pipeline)
        self.regression = self.config.get("problem_type") == "regression" or len(self.id2label) == 1
        self.primary = "pearson" if self.regression else "accuracy"
        self.params = {"top_k": None, "function_to_apply": "none" if self.regression else "softmax"}

    def parse(self, fields, line):
        text = _text(_field(fields, ("text", "sentence", "sentence1"), self.task), "text")
        pair = fields.get("text_pair", fields.get("sentence2"))
        pair = None if pair is None else _text(pair, "text_pair")
        raw = _field(fields, ("label", "labels"), self.task)
        if self.regression:
            try:
                gold = float(raw)
            except (TypeError, ValueError):
                raise BadRow(f"label {raw!r:.40} is not a number (this is a regression head)") from None
        else:
            gold = self.label_of(raw)
        inputs = text if pair is None else {"text": text, "text_pair": pair}
        return Example(line, inputs, gold, text if pair is None else f"{text} || {pair}")

    def predict(self, result, example):
        scores = {r["label"]: float(r["score"]) for r in result}
        if self.regression:
            return {"value": next(iter(scores.values())), "scores": scores}
        return {"label": max(scores, key=scores.get), "scores": scores}

    def metrics(self, golds, preds):
        if self.regression:
            return M.regression_metrics(golds, [np.nan if p is None else p["value"] for p in preds])
        labels = sorted(set(golds) | {p["label"] for p in preds if p is not None})
        return M.classification_metrics(golds, [("<error>" if p is None else p["label"]) for p in preds], labels)

    def bootstrap_counts(self, golds, preds):
        if self.regression:
            return None
        predicted = ["<error>" if p is None else p["label"] for p in preds]
        labels = sorted(set(golds) | set(predicted))
        index = {label: i for i, label in enumerate(labels)}
        k = len(labels)
        cells = np.zeros((len(golds), k * k))
        cells[np.arange(len(golds)), [index[g] * k + index[p] for g, p in zip(golds, predicted)]] = 1.0
        return cells, lambda sums: M.classification_from_confusion(sums.reshape(*sums.shape[:-1], k, k))

    def distance(self, ref, pred):
        if ref is None or pred is None:
            return float("inf")
        return max(abs(ref["scores"][k] - pred["scores"].get(k, 0.0)) for k in ref["scores"])

    def disagree(self, ref, pred):
        if ref is None or pred is None:
            return ref is not pred
        if self.regression:
            return not np.isclose(ref["value"], pred["value"], rtol=1e-3, atol=1e-3)
        return ref["label"] != pred["label"]

    def show(self, pred):
        if pred is None:
            return "(failed)"
        if self.regression:
            return f"{pred['value']:.4g}"
        return f"{pred['label']} ({pred['scores'][pred['label']]:.3f})"


class TokenClassification(TaskEval):
    """Words (``tokens``) with one tag each (``ner_tags``); a word's prediction is its first
    piece's label (transformers' run_ner convention); words cut off by truncation predict O."""

    task = "token-classification"
    primary = "f1"
    params = {"aggregation_strategy": "none", "ignore_labels": []}

    def parse(self, fields, line):
        words = _field(fields, ("tokens", "words"), self.task)
        tags = _field(fields, ("ner_tags", "tags", "labels"), self.task)
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() and w == w.strip() for w in words):
            raise BadRow("tokens must be a non-empty list of words (strings without spaces at either end)")
        if not isinstance(tags, list) or len(tags) != len(words):
            raise BadRow(f"ner_tags must be a list with one tag per word ({len(words)} words), got {tags!r:.60}")
        gold = [self.label_of(t, "tag") for t in tags]
        text = " ".join(words)
        starts, position = [], 0
        for word in words:
            starts.append(position)
            position += len(word) + 1
        return Example(line, text, gold, text, extra=starts)

    def predict(self, result, example):
        by_start = {}
        for token in result:
            by_start.setdefault(token["start"], token["entity"])
        return [by_start.get(start, "O") for start in example.extra]

    def metrics(self, golds, preds):
        return M.entity_metrics(golds, [["O"] * len(g) if p is None else p for g, p in zip(golds, preds)])

    def bootstrap_counts(self, golds, preds):
        counts = [M.sentence_counts(g, ["O"] * len(g) if p is None else p) for g, p in zip(golds, preds)]
        return np.array(counts, dtype=np.float64), M.entities_from_counts

    def distance(self, ref, pred):
        if ref is None or pred is None:
            return float("inf")
        return float(np.mean([a != b for a, b in zip(ref, pred)]))

    def disagree(self, ref, pred):
        return ref != pred

    def show(self, pred):
        return "(failed)" if pred is None else " ".join(pred)


class QuestionAnswering(TaskEval):
    task = "question-answering"
    primary = "f1"

    def __init__(self, pipeline):
        super().__init__(pipeline)
        self.params = {"handle_impossible_answer": False}

    def prepare(self, examples):
        self.impossible = any(e.gold == [""] for e in examples)
        self.params = {"handle_impossible_answer": self.impossible}

    def parse(self, fields, line):
        question = _text(_field(fields, ("question",), self.task), "question")
        context = _text(_field(fields, ("context",), self.task), "context")
        answers = _field(fields, ("answers", "answer"), self.task)
        if isinstance(answers, str):
            answers = {"text": [answers]}
        elif isinstance(answers, list):
            answers = {"text": answers}
        if not isinstance(answers, dict) or not isinstance(answers.get("text", []), list):
            raise BadRow("answers must be SQuAD's {'text': [...], 'answer_start': [...]} or a list of strings")
        texts, starts = answers.get("text", []), answers.get("answer_start")
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text:
                raise BadRow(f"answer {i} must be a non-empty string, got {text!r:.40}")
            if starts is not None and i < len(starts):
                start = starts[i]
                if not isinstance(start, int) or context[start:start + len(text)] != text:
                    raise BadRow(f"answer {text!r:.40} is not in the context at answer_start {start!r}")
            elif text not in context:
                raise BadRow(f"answer {text!r:.40} is not in the context")
        return Example(line, {"question": question, "context": context}, list(texts) or [""], f"{question} || {context}")

    def predict(self, result, example):
        return result["answer"]

    def per_example(self, golds, preds):
        return np.array([M.squad_scores(g, p or "") for g, p in zip(golds, preds)]).reshape(-1, 2)

    def metrics(self, golds, preds):
        scores = self.per_example(golds, preds)
        out = {"exact_match": float(scores[:, 0].mean()), "f1": float(scores[:, 1].mean())}
        impossible = np.array([g == [""] for g in golds])
        if getattr(self, "impossible", False):  # the data set has them (a resample may not)
            out["has_answer_f1"] = float(scores[~impossible, 1].mean()) if (~impossible).any() else float("nan")
            out["no_answer_f1"] = float(scores[impossible, 1].mean()) if impossible.any() else float("nan")
        return out

    def bootstrap_counts(self, golds, preds):
        scores = self.per_example(golds, preds)
        impossible = np.array([g == [""] for g in golds], dtype=np.float64)
        cols = np.column_stack([scores, np.ones(len(golds)), impossible, scores[:, 1] * impossible,
                                1 - impossible, scores[:, 1] * (1 - impossible)])

        def finish(sums):
            em, f1, n, imp, f1_imp, poss, f1_poss = np.moveaxis(sums, -1, 0)
            out = {"exact_match": em / n, "f1": f1 / n}
            if getattr(self, "impossible", False):
                with np.errstate(divide="ignore", invalid="ignore"):
                    out["has_answer_f1"] = np.where(poss > 0, f1_poss / np.where(poss > 0, poss, 1), np.nan)
                    out["no_answer_f1"] = np.where(imp > 0, f1_imp / np.where(imp > 0, imp, 1), np.nan)
            return out

        return cols, finish

    def distance(self, ref, pred):
        if ref is None or pred is None:
            return float("inf")
        return 1.0 - M.squad_f1(ref, pred)

    def disagree(self, ref, pred):
        return ref != pred

    def show(self, pred):
        return "(failed)" if pred is None else repr(pred)


class FillMask(TaskEval):
    """A text with one mask token and the masked word as ``label`` (one vocabulary token)."""

    task = "fill-mask"
    primary = "top1_accuracy"
    params = {"top_k": 5}

    def parse(self, fields, line):
        text = _text(_field(fields, ("text",), self.task), "text")
        mask = self.tokenizer.mask_token
        text = text.replace("<mask>", mask)
        if text.count(mask) != 1:
            raise BadRow(f"the text needs exactly one {mask} token, found {text.count(mask)}")
        word = _field(fields, ("label", "answer", "target"), self.task)
        if not isinstance(word, str) or not word.strip():
            raise BadRow(f"label must be the masked word, got {word!r:.40}")
        backend = self.tokenizer.backend
        index = backend.token_to_id(word.strip())
        if index is None:
            index = backend.token_to_id(word.strip().lower())
        if index is None:
            raise BadRow(f"label {word!r:.40} is not one vocabulary token; the mask stands for one token")
        return Example(line, text, int(index), f"{text} -> {word}")

    def predict(self, result, example):
        return [int(r["token"]) for r in result]

    def metrics(self, golds, preds):
        preds = [p or [] for p in preds]
        return {
            "top1_accuracy": float(np.mean([bool(p) and p[0] == g for g, p in zip(golds, preds)])),
            "top5_accuracy": float(np.mean([g in p[:5] for g, p in zip(golds, preds)])),
        }

    def bootstrap_counts(self, golds, preds):
        preds = [p or [] for p in preds]
        cols = np.array([[bool(p) and p[0] == g, g in p[:5], 1] for g, p in zip(golds, preds)], dtype=np.float64)
        return cols, lambda sums: {"top1_accuracy": sums[..., 0] / sums[..., 2], "top5_accuracy": sums[..., 1] / sums[..., 2]}

    def distance(self, ref, pred):
        if ref is None or pred is None:
            return float("inf")
        return 1.0 - len(set(ref[:5]) & set(pred[:5])) / 5 + (0.5 if ref[0] != pred[0] else 0.0)

    def disagree(self, ref, pred):
        return (ref or [None])[0] != (pred or [None])[0]

    def show(self, pred):
        return "(failed)" if pred is None else " ".join(self.tokenizer.convert_ids_to_tokens(i) for i in pred)


class MultipleChoice(TaskEval):
    task = "multiple-choice"
    primary = "accuracy"

    def parse(self, fields, line):
        prompt = _text(_field(fields, ("prompt", "question", "sent1"), self.task), "prompt")
        choices = _field(fields, ("choices", "endings"), self.task)
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
            raise BadRow("choices must be a list of at least two non-empty strings")
        label = _field(fields, ("label", "answer"), self.task)
        if isinstance(label, str) and label in choices:
            gold = choices.index(label)
        elif isinstance(label, (int, str)) and not isinstance(label, bool) and str(label).strip().isdigit() and int(label) < len(choices):
            gold = int(label)
        else:
            raise BadRow(f"label {label!r:.40} is neither a choice's index (0..{len(choices) - 1}) nor one of the choices")
        return Example(line, {"prompt": prompt, "choices": choices}, gold, f"{prompt} [{' | '.join(choices)}]")

    def predict(self, result, example):
        return {"index": int(result["index"]), "scores": list(result["scores"])}

    def metrics(self, golds, preds):
        return {"accuracy": float(np.mean([p is not None and p["index"] == g for g, p in zip(golds, preds)]))}

    def bootstrap_counts(self, golds, preds):
        cols = np.array([[p is not None and p["index"] == g, 1] for g, p in zip(golds, preds)], dtype=np.float64)
        return cols, lambda sums: {"accuracy": sums[..., 0] / sums[..., 1]}

    def distance(self, ref, pred):
        if ref is None or pred is None:
            return float("inf")
        return float(np.max(np.abs(np.subtract(ref["scores"], pred["scores"]))))

    def disagree(self, ref, pred):
        return (ref or {}).get("index") != (pred or {}).get("index")

    def show(self, pred):
        return "(failed)" if pred is None else f"choice {pred['index']} ({max(pred['scores']):.3f})"


class FeatureExtraction(TaskEval):
    """No labels: each variant's mean-pooled embedding against the reference's (cosine)."""

    task = "feature-extraction"
    primary = "mean_cosine"
    params = {"pooling": "mean", "return_tensors": True}
    needs_reference_as_gold = True

    def parse(self, fields, line):
        text = _text(_field(fields, ("text",), self.task), "text")
        return Example(line, text, None, text)

    def predict(self, result, example):
        return np.asarray(result, dtype=np.float64)

    def metrics(self, golds, preds):
        cos = [self._cos(g, p) for g, p in zip(golds, preds)]
        return {"mean_cosine": float(np.mean(cos)), "min_cosine": float(np.min(cos))}

    @staticmethod
    def _cos(a, b) -> float:
        if a is None or b is None:
            return 0.0
        return float(np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))

    def distance(self, ref, pred):
        return 1.0 - self._cos(ref, pred)

    def disagree(self, ref, pred):
        return self.distance(ref, pred) > 1e-3

    def show(self, pred):
        return "(failed)" if pred is None else f"[{', '.join(f'{v:.3f}' for v in pred[:4])}, ...]"


def evaluator_class(task: str) -> type[TaskEval]:
    """The evaluation class the task's TaskSpec names (``TaskSpec.evaluator``); a task without
    one is refused in one line naming the tasks that have one."""
    from ..tasks import TASKS, get_task

    spec = get_task(task)
    if not spec.evaluator:
        lookup({name: s for name, s in TASKS.items() if s.evaluator}, task, "evaluation task")
    return spec.evaluator_class()


def evaluator_for(task: str, pipeline) -> TaskEval:
    """The task's evaluation of ``pipeline``'s results (see :func:`evaluator_class`)."""
    return evaluator_class(task)(pipeline)
