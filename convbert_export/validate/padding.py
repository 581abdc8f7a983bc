"""The padding effect: how much right padding changes a text's outputs, for the candidate and
for transformers' leaking semantics (the reference without the exact-padding masks)."""

from __future__ import annotations

import numpy as np

from ..inputs import ModelDims
from ..manifest import Manifest
from ..runtime.base import Runner
from ..tasks import get_task


def padding_effect(candidate: Runner, manifest: Manifest, reference) -> dict:
    """One seeded text of 20 tokens (or fewer) runs alone and padded to 3x its length (capped at
    max_position_embeddings); the max abs difference on its real positions is reported for
    the candidate and for the reference (a started TorchRunner) with transformers' semantics.
    """
    spec = get_task(manifest.task)
    max_len = int(manifest.model["max_position_embeddings"])
    length = min(20, max_len)
    padded = min(3 * length, max_len)
    if padded == length:
        return {"note": "max_position_embeddings too small to measure"}
    def diff(a: dict, b: dict) -> float:
        worst = 0.0
        for name in spec.output_names:
            x, y = np.asarray(a[name]), np.asarray(b[name])
            if x.ndim >= 2 and x.shape[1] == length and not spec.multiple_choice:  # per-token output
                y = y[:, :length]
            if x.shape != y.shape:
                continue
            worst = max(worst, float(np.max(np.abs(x - y))))
        return worst

    alone, padded_feeds = spec.model_inputs().padded_pair(ModelDims.of(manifest.model), length, padded, seed=1234)
    got_alone, got_padded = candidate.run(alone, check=False), candidate.run(padded_feeds, check=False)
    if any(not np.isfinite(v).all() for d in (got_alone, got_padded) for v in d.values()
           if np.issubdtype(np.asarray(v).dtype, np.floating)):
        return {"note": "not measured: the export's outputs hold NaN or Inf"}
    got = diff(got_alone, got_padded)
    with reference.padding_semantics(exact=False):
        leak = diff(reference.run(alone, check=False), reference.run(padded_feeds, check=False))
    return {
        "text_tokens": length,
        "padded_to": padded,
        "export_max_abs_diff": got,
        "transformers_semantics_max_abs_diff": leak,
        "note": (
            "multiple-choice pools the last position, a padding position under right padding"
            if spec.multiple_choice and manifest.padding != "exact"
            else ""
        ),
    }
