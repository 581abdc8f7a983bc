"""Task metrics on labeled data, and a paired bootstrap for their confidence intervals.

Libraries where they exist offline: scikit-learn (accuracy, macro-F1, MCC), scipy (Pearson,
Spearman), seqeval (entity-level precision/recall/F1, the CoNLL definition). SQuAD's exact
match and F1 are not in any small offline package (Hugging Face ``evaluate`` downloads its
metric scripts from the hub at run time; torchmetrics would pull a large dependency for 20
lines), so :func:`squad_exact` and :func:`squad_f1` follow the official SQuAD v2.0 evaluation
script's definitions (``normalize_answer``, ``compute_exact``, ``compute_f1``) line for line.
All imports are lazy: the ``evaluate`` extra installs them.
"""

from __future__ import annotations

import collections
import re
import string

import numpy as np

from ..errors import MissingDependencyError


def _need(module: str, extra: str = "evaluate"):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"evaluate needs {module.split('.')[0]}; install it with pip install 'convbert-export[{extra}]'"
        ) from None


# ------------------------------------------------------------------------------- SQuAD
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def squad_exact(gold: str, pred: str) -> float:
    return float(normalize_answer(gold) == normalize_answer(pred))


def squad_f1(gold: str, pred: str) -> float:
    gold_tokens, pred_tokens = normalize_answer(gold).split(), normalize_answer(pred).split()
    if not gold_tokens or not pred_tokens:  # an impossible question: right only if both are empty
        return float(gold_tokens == pred_tokens)
    common = collections.Counter(gold_tokens) & collections.Counter(pred_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(golds: list[list[str]], pred: str) -> tuple[float, float]:
    """(exact match, F1) of one prediction: the best over the gold answers ([""] = impossible)."""
    golds = golds or [""]
    return max(squad_exact(g, pred) for g in golds), max(squad_f1(g, pred) for g in golds)


# ------------------------------------------------------------------------- classification
def classification_metrics(gold: list, pred: list, labels: list) -> dict[str, float]:
    """accuracy, macro-F1 over ``labels`` (every label the gold or predictions use), MCC."""
    import warnings

    sk = _need("sklearn.metrics")
    gold, pred = np.asarray(gold, dtype=object), np.asarray(pred, dtype=object)
    with warnings.catch_warnings():  # one class in a bootstrap resample: MCC is 0, as sklearn returns
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        return {
            "accuracy": float(sk.accuracy_score(gold, pred)),
            "macro_f1": float(sk.f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
            "mcc": float(sk.matthews_corrcoef(gold, pred)),
        }


def regression_metrics(gold: list[float], pred: list[float]) -> dict[str, float]:
    stats = _need("scipy.stats")
    gold, pred = np.asarray(gold, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if len(gold) < 2 or np.ptp(gold) == 0 or np.ptp(pred) == 0:
        return {"pearson": float("nan"), "spearman": float("nan")}
    return {
        "pearson": float(stats.pearsonr(gold, pred).statistic),
        "spearman": float(stats.spearmanr(gold, pred).statistic),
    }


def entity_metrics(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """seqeval's entity-level precision/recall/F1 (CoNLL-2000 chunking rules) and token accuracy."""
    seqeval = _need("seqeval.metrics")
    return {
        "precision": float(seqeval.precision_score(gold, pred, zero_division=0)),
        "recall": float(seqeval.recall_score(gold, pred, zero_division=0)),
        "f1": float(seqeval.f1_score(gold, pred, zero_division=0)),
        "token_accuracy": float(seqeval.accuracy_score(gold, pred)),
    }


# ------------------------------------------------------------------------------ bootstrap
def bootstrap_indices(n: int, resamples: int, seed: int = 0) -> np.ndarray:
    """(resamples, n) example indices drawn with replacement; shared by every model, so the
    reference and a variant are resampled together (a paired bootstrap of their difference)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(resamples, n))


def resample_weights(draws: np.ndarray, n: int) -> np.ndarray:
    """(resamples, n): how often each example is drawn in each resample. A metric built from
    per-example counts (``TaskEval.bootstrap_counts``) is then ``weights @ counts``, so 1000
    resamples cost one matrix product instead of 1000 calls into a metric library."""
    weights = np.zeros((draws.shape[0], n))
    np.add.at(weights, (np.repeat(np.arange(draws.shape[0]), draws.shape[1]), draws.ravel()), 1.0)
    return weights


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def classification_from_confusion(conf: np.ndarray) -> dict[str, np.ndarray]:
    """accuracy, macro-F1 and MCC from confusion matrices (..., K, K) [gold, predicted], with
    scikit-learn's definitions (F1 0 where undefined; MCC 0 when a marginal is constant)."""
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    gold, pred = conf.sum(-1), conf.sum(-2)
    n, correct = conf.sum((-2, -1)), tp.sum(-1)
    cov_tp = correct * n - (gold * pred).sum(-1)
    cov_pp, cov_tt = n * n - (pred * pred).sum(-1), n * n - (gold * gold).sum(-1)
    return {
        "accuracy": _ratio(correct, n),
        "macro_f1": _ratio(2 * tp, gold + pred).mean(-1),
        "mcc": _ratio(cov_tp, np.sqrt(cov_pp * cov_tt)),
    }


def entities_from_counts(sums: np.ndarray) -> dict[str, np.ndarray]:
    """seqeval's micro precision/recall/F1 and token accuracy from summed per-sentence counts
    (..., 5): matched entities, predicted entities, gold entities, correct tags, tags."""
    tp, pred, gold, correct, tags = np.moveaxis(sums, -1, 0)
    return {"precision": _ratio(tp, pred), "recall": _ratio(tp, gold), "f1": _ratio(2 * tp, pred + gold),
            "token_accuracy": _ratio(correct, tags)}


def sentence_counts(gold: list[str], pred: list[str]) -> list[int]:
    """One sentence's (matched, predicted, gold) entities by seqeval's chunking, and (correct, all) tags."""
    from seqeval.metrics.sequence_labeling import get_entities

    gold_entities, pred_entities = set(get_entities(gold)), set(get_entities(pred))
    return [len(gold_entities & pred_entities), len(pred_entities), len(gold_entities),
            sum(g == p for g, p in zip(gold, pred)), len(gold)]


def percentile_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates (NaN replicates ignored)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
