"""Throughput of prediction over 1,000 texts of mixed lengths: batch size 1 vs exact batching.

    python tools/bench_predict.py [--preset conv-bert-base] [--texts 1000] [--threads 2]
                                  [--batch-size 16] [--export-dir DIR]

Exports the preset's feature-extraction head once (padding "exact", decomposed DynamicConv)
unless --export-dir is given, then runs the SAME texts through the same ONNX Runtime session
settings twice: batch_size=1, then exact batching (sorted by length, mixed lengths in a batch).
It also checks that both runs give the same outputs (max abs diff). Spinning is disabled so one
run does not slow the next (see ARCHITECTURE "Facts").
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_texts(n: int, tokenizer_words: list[str], seed: int = 0) -> list[str]:
    """Texts of 5..120 words (about as many tokens) drawn from the vocabulary."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(tokenizer_words) for _ in range(rng.randint(3, 118))) for _ in range(n)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="conv-bert-base")
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--export-dir", type=Path)
    args = parser.parse_args(argv)

    from convbert_export.runtime.ort import OrtSettings
    from convbert_export.runtime.pipeline import Pipeline

    export_dir = args.export_dir
    if export_dir is None:
        import convbert_export
        import reference_model

        export_dir = Path(tempfile.mkdtemp()) / "export"
        model = reference_model.from_preset(args.preset, "feature-extraction", seed=0)
        start = time.perf_counter()
        convbert_export.export(model, "feature-extraction", export_dir, padding="exact", validate=False)
        print(f"exported {args.preset} in {time.perf_counter() - start:.1f}s -> {export_dir}", file=sys.stderr)

    settings = OrtSettings(intra_op_threads=args.threads, inter_op_threads=1, allow_spinning=False)
    pipe = Pipeline.from_export(export_dir, settings=settings, batch_size=1)
    vocab = pipe.tokenizer.backend.get_vocab()
    words = sorted(w for w in vocab if w.isalpha() and w.islower() and len(w) > 2)
    texts = make_texts(args.texts, words)
    lengths = [pipe.tokenizer.num_tokens(t) for t in texts]
    print(f"{len(texts)} texts, tokens min {min(lengths)} mean {np.mean(lengths):.0f} max {max(lengths)}; "
          f"{args.threads} threads, spinning off", file=sys.stderr)

    pipe("warm up", return_tensors=True)
    rows = []
    outputs = {}
    for batch_size in (1, args.batch_size):
        pipe.batch_size = batch_size
        start = time.perf_counter()
        outputs[batch_size] = pipe(texts, pooling="mean", return_tensors=True)
        elapsed = time.perf_counter() - start
        rows.append((batch_size, elapsed, len(texts) / elapsed))
        time.sleep(1.0)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(outputs[1], outputs[args.batch_size]))
    print(f"preset={args.preset} texts={len(texts)} threads={args.threads} padding=exact")
    for batch_size, elapsed, rate in rows:
        print(f"batch_size={batch_size:3d}  {elapsed:8.2f} s  {rate:8.1f} texts/s")
    print(f"speed-up x{rows[1][2] / rows[0][2]:.2f}; max abs diff batch 1 vs batched: {diff:.2e}")
    pipe.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
