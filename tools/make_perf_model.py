"""A text-classification checkpoint whose labels are not near ties, for benchmarks with accuracy gates.

    python tools/make_perf_model.py OUTPUT_DIR [--preset conv-bert-base] [--seed 0] [--texts 512]

The encoder is the preset's seeded random weights. A random classifier head reads a direction in
which the pooled features barely vary, so most inputs sit next to the decision boundary and any
rounding (int8, bf16) flips labels, whatever the head's scale (argmax is scale-invariant). Here
the head's out_proj is set to the first principal component u of the fp32 pooled features
phi(x) = act(dense(h_CLS)) over ``--texts`` seeded random texts (3-118 vocabulary words; not the
packaged validation texts), centered: logits = +-(alpha/2) u.(phi - mean), logit-gap std 4.
That is the direction of largest variation, as a trained head's would be. Writes config.json,
model.safetensors and the demo tokenizer files (the vocabulary the texts came from).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--preset", default="conv-bert-base")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    import reference_model
    from convbert_export.tokenization import Tokenizer, demo_vocab_dir

    torch.set_num_threads(args.threads)
    model = reference_model.from_preset(args.preset, "text-classification", seed=args.seed)
    model.set_exact_padding(True)
    tokenizer = Tokenizer.from_pretrained(demo_vocab_dir())
    words = sorted(w for w in tokenizer.backend.get_vocab() if w.isalpha() and len(w) > 2)
    rng = random.Random(123)
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 118))) for _ in range(args.texts)]
    limit = min(512, int(model.config.max_position_embeddings))
    features = []
    with torch.inference_mode():
        for start in range(0, len(texts), 16):
            enc = tokenizer(texts[start:start + 16], truncation=True, max_length=limit, padding="longest")
            hidden = model.convbert.encode(*(torch.from_numpy(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids")))
            head = model.classifier
            features.append(head.act(head.dense(hidden[:, 0])).numpy())
    phi = np.concatenate(features).astype(np.float64)
    mean = phi.mean(0)
    _, singular, vt = np.linalg.svd(phi - mean, full_matrices=False)
    u = vt[0]
    projection = (phi - mean) @ u
    alpha = 4.0 / projection.std()
    with torch.no_grad():
        model.classifier.out_proj.weight.copy_(torch.from_numpy(np.stack([-u, u]) * alpha / 2).float())
        model.classifier.out_proj.bias.copy_(torch.from_numpy(np.array([1.0, -1.0]) * alpha / 2 * (mean @ u)).float())
    gap = np.abs(alpha * projection)
    print(f"PC1 explains {singular[0] ** 2 / (singular ** 2).sum():.1%} of the variance; label balance "
          f"{(projection > 0).mean():.2f}; |logit gap| p1 {np.percentile(gap, 1):.3f} median {np.median(gap):.3f}")
    model.save_pretrained(args.output)
    tokenizer.save_pretrained(args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
