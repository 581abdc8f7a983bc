"""PyTorch eager vs ONNX Runtime vs OpenVINO variants of one model, interleaved in one process.

    python tools/bench_openvino.py CHECKPOINT VARIANT_DIR... [--batch 1,8] [--sequence 128]
        [--threads 2] [--repeats 12] [--texts 1000] [--batch-size 16] [--json-out bench.json]

CHECKPOINT is the transformers-format checkpoint the variants were exported from (its eager
transformers model is the baseline); each VARIANT_DIR is an export directory made from it
(``convbert-export export`` / ``optimize``, e.g. ``--int8 dynamic`` or ``--openvino int8``), run
through the one runner path (``runtime.factory.create_runner``): ONNX Runtime with spinning off,
OpenVINO with ``INFERENCE_NUM_THREADS``; all with the same thread count.

Two measurements, both interleaved so every variant sees the same machine noise:

1. latency per (batch, sequence): round-robin, order rotated per repeat, 50 ms pause between timed
   calls (``convbert_export.bench.time_interleaved``); p50 ms and the speed-up over eager, plus
   each variant's output difference from eager on the same feeds (max abs, argmax agreement)
   and its validation report's verdict (``validation.json``: agreement, cosine, passed);
2. end to end: ``--texts`` mixed-length texts (3-118 words from the vocabulary) through
   transformers' text-classification pipeline (eager, batch 1: what users start from) and each
   variant's Pipeline (``--batch-size``, exact batching), in chunks of 50 texts taken in turn;
   texts/s, the share of time spent outside the model (tokenization, batching, post-processing)
   and label agreement with transformers.

transformers is needed (it is the baseline); torch's OpenMP workers are set to PASSIVE so they do
not spin against the other backends' threads on shared cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def _runner(path: Path, threads: int):
    from convbert_export.runtime.factory import backend_for, create_runner
    from convbert_export.runtime.openvino import OpenVinoSettings
    from convbert_export.runtime.ort import OrtSettings

    backend = backend_for(path)
    settings = (OpenVinoSettings(threads=threads) if backend == "openvino"
                else OrtSettings(intra_op_threads=threads, inter_op_threads=1, allow_spinning=False))
    return create_runner(path, settings=settings).start()


def variant_names(manifests: dict) -> dict:
    """Table label -> variant directory (a repeated label gets the directory's name appended)."""
    names = {}
    for path, manifest in manifests.items():
        name = _label(path, manifest)
        names[name if name not in names else f"{name} ({path.name})"] = path
    return names


def _label(path: Path, manifest) -> str:
    options = manifest.backend_options
    if manifest.backend == "openvino":
        return f"openvino {options.get('variant', manifest.precision)}"
    steps = "fused " if manifest.transformations else ""
    return f"onnxruntime {manifest.dynamic_conv_mode} {steps}{manifest.precision}"


def _gates(path: Path) -> dict:
    report = path / "validation.json"
    if not report.is_file():
        return {"validated": False}
    data = json.loads(report.read_text())
    return {"validated": True, "passed": data["passed"], "agreement": data["agreement"].get("value"),
            "agreement_metric": data["agreement"].get("metric"),
            "max_abs": max((o["max_abs"] for o in data["outputs"]), default=None)}


def make_texts(n: int, words: list[str], seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 118))) for _ in range(n)]


def latency(eager, runners: dict, manifest, args) -> list[dict]:
    import torch

    from convbert_export.bench import BenchSettings, make_feeds, time_interleaved

    settings = BenchSettings(threads=args.threads, repeats=args.repeats, warmup=2, budget_s=args.budget,
                             pause_s=0.05, floor=False)
    rows = []
    for batch in args.batch:
        for sequence in args.sequence:
            feeds = make_feeds(manifest, batch, sequence, seed=0)
            tensors = {k: torch.from_numpy(v) for k, v in feeds.items()}

            def run_eager():
                with torch.inference_mode():
                    return eager(**tensors).logits.numpy()

            reference = run_eager()
            calls = {"transformers eager fp32": run_eager}
            calls.update({name: (lambda r=r: r.run(feeds)) for name, r in runners.items()})
            samples = time_interleaved(calls, settings)
            base = float(np.median(samples["transformers eager fp32"]))
            for name, times in samples.items():
                p50 = float(np.median(times))
                row = {"variant": name, "batch": batch, "sequence": sequence, "p50_ms": round(p50, 2),
                       "repeats": len(times), "speedup_vs_eager": round(base / p50, 2)}
                if name in runners:
                    logits = runners[name].run(feeds)["logits"]
                    row["max_abs_vs_eager"] = float(np.abs(logits - reference).max())
                    row["argmax_agreement_vs_eager"] = float((logits.argmax(-1) == reference.argmax(-1)).mean())
                rows.append(row)
    return rows


def end_to_end(checkpoint: Path, variants: dict, args) -> list[dict]:
    import torch
    import transformers

    from convbert_export.runtime.pipelines import Pipeline

    first = next(iter(variants.values()))
    tokenizer = transformers.AutoTokenizer.from_pretrained(first)  # the export's own tokenizer files
    model = transformers.AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    hf = transformers.pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    pipes = {}
    for name, path in variants.items():
        pipe = Pipeline.from_export(path, batch_size=args.batch_size, settings=None, runner=_runner(path, args.threads))
        calls = {"time": 0.0}
        run = pipe.runner.run

        def timed(feeds, _run=run, _calls=calls, **kw):
            start = time.perf_counter()
            try:
                return _run(feeds, **kw)
            finally:
                _calls["time"] += time.perf_counter() - start

        pipe.runner.run = timed
        pipes[name] = (pipe, calls)
    words = sorted(w for w in pipes[next(iter(pipes))][0].tokenizer.backend.get_vocab() if w.isalpha() and len(w) > 2)
    texts = make_texts(args.texts, words)
    totals = {name: 0.0 for name in ["transformers pipeline eager batch 1", *pipes]}
    labels = {name: [] for name in totals}
    hf(texts[:2])
    for pipe, _ in pipes.values():
        pipe(texts[:2])
    for pipe, calls in pipes.values():
        calls["time"] = 0.0
    chunk = 50
    for start in range(0, len(texts), chunk):
        block = texts[start:start + chunk]
        begin = time.perf_counter()
        with torch.inference_mode():
            out = hf(block, batch_size=1, truncation=True, max_length=512)
        totals["transformers pipeline eager batch 1"] += time.perf_counter() - begin
        labels["transformers pipeline eager batch 1"] += [o["label"] for o in out]
        for name, (pipe, _) in pipes.items():
            time.sleep(0.05)
            begin = time.perf_counter()
            out = pipe(block)
            totals[name] += time.perf_counter() - begin
            labels[name] += [o["label"] for o in out]
    base_rate = len(texts) / totals["transformers pipeline eager batch 1"]
    rows = []
    for name, seconds in totals.items():
        rate = len(texts) / seconds
        row = {"variant": name, "texts": len(texts), "seconds": round(seconds, 2), "texts_per_s": round(rate, 2),
               "speedup_vs_transformers": round(rate / base_rate, 2),
               "label_agreement": float(np.mean([a == b for a, b in
                                                 zip(labels[name], labels["transformers pipeline eager batch 1"])]))}
        if name in pipes:
            row["model_share"] = round(pipes[name][1]["time"] / seconds, 3)
            row["batch_size"] = args.batch_size
        rows.append(row)
    return rows


def print_latency(rows: list[dict], gates: dict | None = None) -> None:
    """The latency rows as a Markdown table (with each variant's validation verdict when known)."""
    print("| variant | batch x seq | p50 ms | vs eager | max abs vs eager | argmax agree | validation |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        gate = (gates or {}).get(row["variant"], {})
        verdict = ("-" if not gate else "not validated" if not gate["validated"] else
                   f"{'pass' if gate['passed'] else 'FAIL'} ({gate['agreement_metric']} {gate['agreement']:.4f})")
        print(f"| {row['variant']} | {row['batch']}x{row['sequence']} | {row['p50_ms']:.1f} | {row['speedup_vs_eager']:.2f}x | "
              f"{row.get('max_abs_vs_eager', 0):.3g} | {row.get('argmax_agreement_vs_eager', 1):.3f} | {verdict} |", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("variants", type=Path, nargs="+")
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--sequence", default="128")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per grid point")
    parser.add_argument("--texts", type=int, default=1000, help="0 skips the end-to-end run")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    args.batch = [int(v) for v in args.batch.split(",")]
    args.sequence = [int(v) for v in args.sequence.split(",")]

    import torch
    import transformers

    from convbert_export.cpu import cpu_features
    from convbert_export.manifest import load_manifest

    torch.set_num_threads(args.threads)
    cpu = cpu_features()
    manifests = {path: load_manifest(path) for path in args.variants}
    names = variant_names(manifests)
    eager = transformers.AutoModelForSequenceClassification.from_pretrained(args.checkpoint).eval()
    runners = {name: _runner(path, args.threads) for name, path in names.items()}
    header = {"cpu": cpu.summary(), "threads": args.threads, "load_average": os.getloadavg(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
              "backends": {name: runners[name].describe() for name in runners},
              "gates": {name: _gates(path) for name, path in names.items()}}
    print(f"# {header['cpu']}; {args.threads} threads; load {header['load_average']}", flush=True)
    rows = latency(eager, runners, manifests[args.variants[0]], args)
    for runner in runners.values():
        runner.close()
    print_latency(rows, header["gates"])
    e2e = end_to_end(args.checkpoint, names, args) if args.texts else []
    if e2e:
        print("\n| end to end | texts/s | vs transformers | label agreement | model share of time |")
        print("|---|---|---|---|---|")
        for row in e2e:
            print(f"| {row['variant']} | {row['texts_per_s']:.1f} | {row['speedup_vs_transformers']:.2f}x | "
                  f"{row['label_agreement']:.3f} | {row.get('model_share', '-')} |")
    if args.json_out:
        from convbert_export.fileio import write_json_atomic

        write_json_atomic(args.json_out, {**header, "latency": rows, "end_to_end": e2e, "args": sys.argv[1:]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
