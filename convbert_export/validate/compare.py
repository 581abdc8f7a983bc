"""Numerical comparison of backend outputs against the reference (numpy only).

Per output: max absolute and relative difference and the count of elements outside
``|got - ref| <= atol + rtol * |ref|`` (numpy.allclose's rule). Per task: the agreement a
reviewer cares about (argmax of logits, fill-mask top-5, QA start/end, hidden-state cosine).
Everything accumulates over many cases, so one report covers the whole validation grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import lookup

# the |diff| histogram: 20 log-spaced bins per decade from 1e-12 to 1e4 (smaller and larger
# differences land in the end bins; exact zeros are counted apart)
HIST_LOW, HIST_PER_DECADE = -12, 20
HIST_BINS = 16 * HIST_PER_DECADE


@dataclass
class OutputStats:
    """Differences of one output, accumulated over cases."""

    name: str
    atol: float
    rtol: float
    max_abs: float = 0.0
    max_rel: float = 0.0
    violations: int = 0
    elements: int = 0
    worst_case: str = ""
    nonfinite: int = 0

    # Polygraphy-grade statistics: exact mean, a log histogram of |diff| (percentiles), where the
    # maximum is, the values themselves, the smallest tolerances that pass, error per case length.
    abs_sum: float = 0.0
    zeros: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(HIST_BINS, dtype=np.int64), repr=False)
    min_atol: float = 0.0
    min_rtol: float = 0.0
    worst: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    by_length: list = field(default_factory=list)

    def update(self, case: str, got: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None,
               length: int | None = None) -> None:
        got = np.asarray(got, dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        if mask is not None:
            got, ref = got[mask], ref[mask]
        if got.size == 0:
            return
        self.nonfinite += int(np.count_nonzero(~np.isfinite(got)))
        diff = np.abs(got - ref)
        diff = np.where(np.isfinite(diff), diff, np.inf)
        rel = diff / np.maximum(np.abs(ref), 1e-12)
        abs_max = float(diff.max())
        if abs_max > self.max_abs or not self.worst_case:
            self.worst_case = case
            at = np.unravel_index(int(np.argmax(diff)), diff.shape)
            self.worst = {"index": [int(i) for i in at], "got": float(got[at]), "ref": float(ref[at])}
        self.max_abs = max(self.max_abs, abs_max)
        self.max_rel = max(self.max_rel, float(rel.max()))
        self.violations += int(np.count_nonzero(diff > self.atol + self.rtol * np.abs(ref)))
        self.elements += int(got.size)
        self._accumulate(diff, got, ref, abs_max, length)

    def _accumulate(self, diff, got, ref, abs_max, length) -> None:
        self.abs_sum += float(diff.sum())  # inf when a value is not finite (the report says how many)
        positive = diff[diff > 0]
        self.zeros += int(diff.size - positive.size)
        bins = np.clip(np.floor((np.log10(np.minimum(positive, 1e300)) - HIST_LOW) * HIST_PER_DECADE), 0, HIST_BINS - 1)
        self.counts += np.bincount(bins.astype(np.int64), minlength=HIST_BINS)
        self.min_atol = max(self.min_atol, float(np.max(diff - self.rtol * np.abs(ref))))
        over = diff > self.atol
        if over.any():
            with np.errstate(divide="ignore", invalid="ignore"):
                self.min_rtol = max(self.min_rtol, float(np.max((diff[over] - self.atol) / np.abs(ref[over]))))
        for key, array in (("reference", ref), ("export", got)):
            total = float(array.sum())
            if not np.isfinite(total):
                array = array[np.isfinite(array)]
                total = float(array.sum())
            if array.size:
                v = self.values.setdefault(key, {"min": np.inf, "max": -np.inf, "sum": 0.0, "sumsq": 0.0, "n": 0})
                v["min"], v["max"] = min(v["min"], float(array.min())), max(v["max"], float(array.max()))
                v["sum"] += total
                v["sumsq"] += float(np.dot(array.ravel(), array.ravel()))
                v["n"] += int(array.size)
        if length is not None:
            self.by_length.append([int(length), abs_max])

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100) of |diff|, from the histogram (bin centre, ~6%)."""
        total = self.zeros + int(self.counts.sum())
        if not total:
            return float("nan")
        rank = q / 100 * (total - 1)
        if rank < self.zeros:
            return 0.0
        index = int(np.searchsorted(np.cumsum(self.counts), rank - self.zeros, side="right"))
        return float(10 ** (HIST_LOW + (index + 0.5) / HIST_PER_DECADE))

    def error_dict(self) -> dict:
        nonzero = np.flatnonzero(self.counts)
        lo, hi = (int(nonzero[0]), int(nonzero[-1]) + 1) if nonzero.size else (0, 0)
        edges = [float(10 ** (HIST_LOW + i / HIST_PER_DECADE)) for i in range(lo, hi + 1)] if hi else []
        return {
            "mean": self.abs_sum / self.elements if self.elements else float("nan"),
            "p50": self.percentile(50), "p90": self.percentile(90), "p99": self.percentile(99),
            "zeros": self.zeros, "edges": edges, "counts": [int(c) for c in self.counts[lo:hi]],
        }

    def values_dict(self) -> dict:
        out = {}
        for key, v in self.values.items():
            mean = v["sum"] / v["n"]
            out[key] = {"min": v["min"], "max": v["max"], "mean": mean,
                        "std": float(np.sqrt(max(v["sumsq"] / v["n"] - mean * mean, 0.0)))}
        return out

    @property
    def passed(self) -> bool:
        return self.violations == 0 and self.nonfinite == 0 and self.elements > 0

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "atol": self.atol,
            "rtol": self.rtol,
            "violations": self.violations,
            "elements": self.elements,
            "nonfinite": self.nonfinite,
            "worst_case": self.worst_case,
            "passed": self.passed,
            "error": self.error_dict(),
            "min_atol": self.min_atol,
            "min_rtol": self.min_rtol,
            "worst": self.worst,
            "values": self.values_dict(),
            "by_length": self.by_length,
        }


@dataclass
class Agreement:
    """A task-level agreement rate (or mean/min cosine), accumulated over cases."""

    metric: str
    agree: int = 0
    total: int = 0
    cosines: list = field(default_factory=list)
    # cases whose outputs held NaN/Inf: not counted, and then no rate is reported at all
    nonfinite: int = 0

    def __post_init__(self):
        agreement_metric(self.metric)  # an unknown metric fails before any case runs

    @property
    def kind(self) -> str:
        """``rate`` (agree / total) or ``similarity`` (the minimum over vectors): the metric's kind."""
        return agreement_metric(self.metric).kind

    @property
    def rate(self) -> float:
        if self.nonfinite:
            return float("nan")
        if self.kind == "similarity":
            return float(np.min(self.cosines)) if self.cosines else float("nan")
        return self.agree / self.total if self.total else float("nan")

    def to_dict(self) -> dict:
        metric = agreement_metric(self.metric)
        data = {"metric": self.metric, "kind": metric.kind, "label": metric.label, "value": self.rate}
        if metric.kind == "similarity":
            data["mean"] = float(np.mean(self.cosines)) if self.cosines else float("nan")
            data["vectors"] = len(self.cosines)
        else:
            data["agree"], data["total"] = self.agree, self.total
        data["nonfinite_cases"] = self.nonfinite
        return data


def cosine_rows(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Cosine similarity of matching last-axis vectors."""
    got = got.reshape(-1, got.shape[-1]).astype(np.float64)
    ref = ref.reshape(-1, ref.shape[-1]).astype(np.float64)
    denom = np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1)
    return np.sum(got * ref, axis=1) / np.maximum(denom, 1e-30)


def update_agreement(agreement: Agreement, task_metric: str, got: dict, ref: dict, token_mask: np.ndarray | None) -> None:
    """Add one case to ``agreement`` through the metric ``task_metric`` names (:data:`AGREEMENT_METRICS`).

    ``token_mask`` (batch, sequence) selects real tokens for per-token outputs. A case whose
    outputs hold NaN or Inf is counted in ``agreement.nonfinite`` instead (argmax of NaN means
    nothing).
    """
    metric = agreement_metric(task_metric)
    if any(not np.isfinite(np.asarray(v)).all() for d in (got, ref) for v in d.values()
           if np.issubdtype(np.asarray(v).dtype, np.floating)):
        agreement.nonfinite += 1
        return
    metric.add(agreement, got, ref, token_mask)


def _count(agreement: Agreement, same: np.ndarray) -> None:
    agreement.agree += int(same.sum())
    agreement.total += int(same.size)


def cosine_agreement(agreement: Agreement, got: dict, ref: dict, token_mask) -> None:
    """Hidden-state cosine of every real token's vector (``last_hidden_state``)."""
    g, r = got["last_hidden_state"], ref["last_hidden_state"]
    if token_mask is not None:
        g, r = g[token_mask], r[token_mask]
    agreement.cosines.extend(cosine_rows(g, r).tolist())


def topk_agreement(agreement: Agreement, got: dict, ref: dict, token_mask) -> None:
    """The same top-5 ids (as a set) at every real token (fill-mask ``logits``)."""
    g, r = got["logits"], ref["logits"]
    if token_mask is not None:
        g, r = g[token_mask], r[token_mask]
    k = min(5, g.shape[-1])
    top_g = np.sort(np.argpartition(-g, k - 1, axis=-1)[..., :k], axis=-1)
    top_r = np.sort(np.argpartition(-r, k - 1, axis=-1)[..., :k], axis=-1)
    _count(agreement, np.all(top_g == top_r, axis=-1))


def argmax_agreement(agreement: Agreement, got: dict, ref: dict, token_mask) -> None:
    """The same argmax of ``logits`` per row (per real token for (batch, sequence, labels) logits)."""
    g, r = got["logits"], ref["logits"]
    if g.ndim == 3 and token_mask is not None:  # token classification
        g, r = g[token_mask], r[token_mask]
    _count(agreement, g.argmax(-1) == r.argmax(-1))


def span_agreement(agreement: Agreement, got: dict, ref: dict, token_mask) -> None:
    """The same start and the same end position (over real tokens) of a question-answering span."""
    for name in ("start_logits", "end_logits"):
        g, r = got[name], ref[name]
        if token_mask is not None:
            big = np.finfo(np.float32).max
            g, r = np.where(token_mask, g, -big), np.where(token_mask, r, -big)
        _count(agreement, g.argmax(-1) == r.argmax(-1))


@dataclass(frozen=True)
class AgreementMetric:
    """One task-level agreement metric.

    Attributes:
        add: ``add(agreement, got, ref, token_mask)`` accumulates one case.
        kind: how it is summarized and judged: ``rate`` (agree / total, against
            ``min_agreement``) or ``similarity`` (the minimum over vectors, against ``min_cosine``).
        label: what reports call it.
    """

    add: Callable
    kind: str
    label: str

    def __post_init__(self):
        lookup(AGREEMENT_KINDS, self.kind, "agreement kind")


AGREEMENT_KINDS = ("rate", "similarity")

# metric name (TaskSpec.agreement) -> AgreementMetric
AGREEMENT_METRICS = {
    "cosine": AgreementMetric(cosine_agreement, "similarity", "hidden-state cosine"),
    "topk": AgreementMetric(topk_agreement, "rate", "top-5"),
    "argmax": AgreementMetric(argmax_agreement, "rate", "argmax"),
    "span": AgreementMetric(span_agreement, "rate", "start/end"),
}


def agreement_metric(name: str) -> AgreementMetric:
    """The agreement metric ``name`` (a TaskSpec's ``agreement``); a miss lists what exists."""
    return lookup(AGREEMENT_METRICS, name, "agreement metric")
