"""Numerical comparison of backend outputs against the reference (numpy only).

Per output: max absolute and relative difference and the count of elements outside
``|got - ref| <= atol + rtol * |ref|`` (numpy.allclose's rule). Per task: the agreement a
reviewer cares about (argmax of logits, fill-mask top-5, QA start/end, hidden-state cosine).
Everything accumulates over many cases, so one report covers the whole validation grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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

    def update(self, case: str, got: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> None:
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
        self.max_abs = max(self.max_abs, abs_max)
        self.max_rel = max(self.max_rel, float(rel.max()))
        self.violations += int(np.count_nonzero(diff > self.atol + self.rtol * np.abs(ref)))
        self.elements += int(got.size)

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

    @property
    def rate(self) -> float:
        if self.nonfinite:
            return float("nan")
        if self.metric == "cosine":
            return float(np.min(self.cosines)) if self.cosines else float("nan")
        return self.agree / self.total if self.total else float("nan")

    def to_dict(self) -> dict:
        data = {"metric": self.metric, "value": self.rate}
        if self.metric == "cosine":
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
    """Add one case to ``agreement``.

    ``token_mask`` (batch, sequence) selects real tokens for per-token outputs. A case whose
    outputs hold NaN or Inf is counted in ``agreement.nonfinite`` instead (argmax of NaN means
    nothing).
    """
    if any(not np.isfinite(np.asarray(v)).all() for d in (got, ref) for v in d.values()
           if np.issubdtype(np.asarray(v).dtype, np.floating)):
        agreement.nonfinite += 1
        return
    if task_metric == "cosine":
        g, r = got["last_hidden_state"], ref["last_hidden_state"]
        if token_mask is not None:
            g, r = g[token_mask], r[token_mask]
        agreement.cosines.extend(cosine_rows(g, r).tolist())
    elif task_metric == "topk":
        g, r = got["logits"], ref["logits"]
        if token_mask is not None:
            g, r = g[token_mask], r[token_mask]
        k = min(5, g.shape[-1])
        top_g = np.sort(np.argpartition(-g, k - 1, axis=-1)[..., :k], axis=-1)
        top_r = np.sort(np.argpartition(-r, k - 1, axis=-1)[..., :k], axis=-1)
        same = np.all(top_g == top_r, axis=-1)
        agreement.agree += int(same.sum())
        agreement.total += int(same.size)
    elif task_metric == "argmax":
        g, r = got["logits"], ref["logits"]
        if g.ndim == 3 and token_mask is not None:  # token classification
            g, r = g[token_mask], r[token_mask]
        same = g.argmax(-1) == r.argmax(-1)
        agreement.agree += int(same.sum())
        agreement.total += int(same.size)
    elif task_metric == "span":
        for name in ("start_logits", "end_logits"):
            g, r = got[name], ref[name]
            if token_mask is not None:
                big = np.finfo(np.float32).max
                g, r = np.where(token_mask, g, -big), np.where(token_mask, r, -big)
            same = g.argmax(-1) == r.argmax(-1)
            agreement.agree += int(same.sum())
            agreement.total += int(same.size)
    else:
        raise ValueError(f"unknown agreement metric {task_metric!r}")
