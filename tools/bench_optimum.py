"""Optimum's ONNX export and ORTQuantizer dynamic int8, side by side with our variants and eager.

    python tools/bench_optimum.py CHECKPOINT VARIANT_DIR... [--work DIR] [--batch 1,8] [--sequence 128]
        [--threads 2] [--repeats 12] [--json-out bench.json]

Needs ``optimum-onnx`` (``pip install optimum-onnx``; it pins transformers < 4.58, so install it in
a separate virtual environment layered on the project's, never into the one the project's tests
use). Without it the script says so and exits 2.

What it does, in one process:
1. ``optimum.exporters.onnx.main_export(CHECKPOINT, task="text-classification")`` -> WORK/optimum-fp32;
2. ``ORTQuantizer`` with ``AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=False)``
   (Optimum's documented dynamic int8 recipe for AVX-512 VNNI CPUs) -> WORK/optimum-int8;
3. the interleaved latency table of ``tools/bench_openvino.py``: transformers eager fp32, both
   Optimum models (ONNX Runtime, spinning off, same threads) and every VARIANT_DIR, with each
   one's max abs difference and argmax agreement against eager on the same inputs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def optimum_models(checkpoint: Path, work: Path) -> dict[str, Path]:
    from optimum.exporters.onnx import main_export
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    fp32, int8 = work / "optimum-fp32", work / "optimum-int8"
    if not (fp32 / "model.onnx").is_file():
        main_export(str(checkpoint), output=str(fp32), task="text-classification", no_post_process=False)
    if not (int8 / "model_quantized.onnx").is_file():
        quantizer = ORTQuantizer.from_pretrained(str(fp32))
        config = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=False)
        quantizer.quantize(save_dir=str(int8), quantization_config=config)
    return {"optimum export, ORT fp32": fp32 / "model.onnx",
            "optimum + ORTQuantizer avx512_vnni dynamic int8": int8 / "model_quantized.onnx"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("variants", type=Path, nargs="+")
    parser.add_argument("--work", type=Path, help="where Optimum's models go (default: a temporary directory)")
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--sequence", default="128")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--budget", type=float, default=120.0)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    args.batch = [int(v) for v in args.batch.split(",")]
    args.sequence = [int(v) for v in args.sequence.split(",")]
    try:
        import optimum.onnxruntime  # noqa: F401
    except ImportError as exc:
        print(f"optimum-onnx is not installed ({exc}); pip install optimum-onnx in a separate virtual environment",
              file=sys.stderr)
        return 2

    import torch
    import transformers

    from bench_openvino import _runner, latency, print_latency, variant_names
    from convbert_export.cpu import cpu_features
    from convbert_export.manifest import load_manifest
    from convbert_export.runtime.ort import OrtRunner, OrtSettings

    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-optimum-"))
    models = optimum_models(args.checkpoint, work)
    settings = OrtSettings(intra_op_threads=args.threads, inter_op_threads=1, allow_spinning=False)
    runners = {name: OrtRunner(path, settings=settings).start() for name, path in models.items()}
    manifests = {path: load_manifest(path) for path in args.variants}
    for name, path in variant_names(manifests).items():
        runners[name] = _runner(path, args.threads)
    eager = transformers.AutoModelForSequenceClassification.from_pretrained(args.checkpoint).eval()
    print(f"# {cpu_features().summary()}; {args.threads} threads; load {os.getloadavg()}; optimum models in {work}")
    rows = latency(eager, runners, manifests[args.variants[0]], args)
    print_latency(rows)
    if args.json_out:
        from convbert_export.fileio import write_json_atomic

        write_json_atomic(args.json_out, {"latency": rows, "args": sys.argv[1:], "optimum_models": {k: str(v) for k, v in models.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
