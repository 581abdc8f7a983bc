"""TensorRT section of the GPU check: build each task's engine, validate it against the PyTorch
reference with fp16 tolerances, and time it.

Needs an NVIDIA GPU, TensorRT (``pip install tensorrt``) or TensorRT for RTX
(``pip install tensorrt-rtx``), and cuda-python (``pip install cuda-python``) or a CUDA torch.

    python tools/gpu_check_trt.py                       # every task, demo preset, auto backend
    python tools/gpu_check_trt.py --backend tensorrt --fp16 --modes decomposed custom-op \
        --preset conv-bert-base --json out/trt_check.json

With full TensorRT, custom-op exports need the DynamicConv plugin (``--plugin`` or
$CONVBERT_TRT_PLUGIN): asking for the custom-op mode without it fails at once (exit 1), it is
never skipped. The ``dynamic_conv`` column says what each engine holds (engine.json's
``build.dynamic_conv``: plugin layers, the function body with TensorRT for RTX, or decomposed
ops); a TensorRT custom-op engine without plugin layers fails. Exit status: 0 when every checked
engine is within tolerance, 1 otherwise, 2 when no GPU/TensorRT is present.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# fp16 tolerances for every engine: TensorRT may use FP16 (flag) or TF32 (default) kernels
FP16_ATOL = 2e-2
FP16_RTOL = 2e-2


def _inputs(config, task, batch: int, seq: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random token ids with right padding on every other row (exercises the exact padding)."""
    from convbert_export.tasks import get_task

    rng = np.random.default_rng(seed)
    shape = (batch, 4, seq) if get_task(task).multiple_choice else (batch, seq)
    ids = rng.integers(5, config.vocab_size, size=shape, dtype=np.int64)
    mask = np.ones(shape, dtype=np.int64)
    for row in range(1, batch, 2):
        mask[row, ..., seq // 2:] = 0
    ids[mask == 0] = config.pad_token_id
    types = np.zeros(shape, dtype=np.int64)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _reference(model, feeds) -> dict[str, np.ndarray]:
    import torch

    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    return {k: v.float().numpy() for k, v in out.items()}


def _time(runner, feeds, iterations: int) -> float:
    for _ in range(3):
        runner.run(feeds)
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        runner.run(feeds)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def check(args) -> int:
    import convbert_export
    import reference_model
    from convbert_export.engine import EngineSettings, build_engine
    from convbert_export.engine.cuda import load_cuda
    from convbert_export.errors import ConvBertExportError, MissingDependencyError
    from convbert_export.runtime.trt import TrtRunner
    from convbert_export.tasks import TASKS

    from convbert_export.engine.settings import PLUGIN_ENV

    backend = args.backend or ("tensorrt" if importlib.util.find_spec("tensorrt") else "tensorrt-rtx")
    plugin = args.plugin or os.environ.get(PLUGIN_ENV)
    if backend == "tensorrt" and "custom-op" in args.modes and not plugin:
        print(f"gpu_check_trt: FAIL: the custom-op mode with TensorRT needs the DynamicConv plugin: pass --plugin "
              f"PATH or set {PLUGIN_ENV} (build convbert_trt_plugin from custom_ops/ with TENSORRT_INCLUDE_DIR), "
              "or leave custom-op out of --modes", file=sys.stderr)  # fmt: skip
        return 1
    try:
        gpu = load_cuda().device()
        __import__({"tensorrt": "tensorrt", "tensorrt-rtx": "tensorrt_rtx"}[backend])
    except (MissingDependencyError, ImportError) as exc:
        print(f"TensorRT check skipped: {exc}", file=sys.stderr)
        return 2
    fp16 = args.fp16 and backend == "tensorrt"
    atol, rtol = FP16_ATOL, FP16_RTOL
    print(f"# TensorRT check: {backend} on {gpu.name} (sm {gpu.compute_capability_str}), preset {args.preset}, "
          f"{'fp16 flag' if fp16 else 'fp32'}; tolerances atol {atol} rtol {rtol}")
    rows, failed = [], 0
    work = Path(tempfile.mkdtemp(prefix="trt_check_"))
    for task in args.tasks or list(TASKS):
        for mode in args.modes:
            row = {"task": task, "mode": mode, "backend": backend, "gpu": gpu.name}
            rows.append(row)
            try:
                model = reference_model.from_preset(args.preset, task)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    export = convbert_export.export(model, task, work / f"{task}-{mode}", dynamic_conv=mode,
                                                    validate=False).path
                if getattr(model, "set_exact_padding", None):
                    model.set_exact_padding(json.loads((export / "manifest.json").read_text())["padding"] == "exact")
                settings = EngineSettings(backend=backend, fp16=fp16, force=True,
                                          plugin_library=plugin if backend == "tensorrt" else None)
                start = time.perf_counter()
                engine = build_engine(export, work / f"{task}-{mode}.engine", settings)
                row["build_s"] = round(time.perf_counter() - start, 2)
                built = json.loads((engine / "engine.json").read_text())["build"].get("dynamic_conv") or {}
                row["dynamic_conv"] = built.get("implementation", "?")
                if backend == "tensorrt" and mode == "custom-op" and row["dynamic_conv"] != "plugin":
                    row.setdefault("failures", []).append(f"no plugin layer in the engine ({row['dynamic_conv']})")
                with TrtRunner(engine) as runner:
                    worst = 0.0
                    for batch, seq in ((1, 16), (4, 64), (8, 128)):
                        seq = min(seq, model.config.max_position_embeddings)
                        feeds = _inputs(model.config, task, batch, seq, seed=batch)
                        expected, got = _reference(model, feeds), runner.run(feeds)
                        for name, ref in expected.items():
                            diff = np.abs(got[name].astype(np.float32) - ref)
                            excess = float((diff - (atol + rtol * np.abs(ref))).max())
                            worst = max(worst, float(diff.max()))
                            if excess > 0:
                                row.setdefault("failures", []).append(
                                    f"{name} at {feeds['input_ids'].shape}: max abs diff {diff.max():.3g}")
                    row["max_abs_diff"] = worst
                    for batch, seq in ((1, 128), (8, 128)):
                        seq = min(seq, model.config.max_position_embeddings)
                        feeds = _inputs(model.config, task, batch, seq)
                        feeds["attention_mask"][:] = 1
                        row[f"ms_{batch}x{seq}"] = round(_time(runner, feeds, args.iterations), 3)
                row["status"] = "FAIL" if row.get("failures") else "ok"
            except ConvBertExportError as exc:  # a missing plugin or dependency fails too: never skipped
                row["status"], row["note"] = "FAIL", str(exc)
            failed += row["status"] == "FAIL"
            timings = " ".join(f"{k}={v}" for k, v in row.items() if k.startswith("ms_"))
            print(f"{task:22} {mode:10} {row.get('dynamic_conv', '-'):13} {row['status']:7} max|diff|={row.get('max_abs_diff', float('nan')):.3g} "
                  f"build={row.get('build_s', '-')}s {timings} {row.get('note', '')} "
                  f"{'; '.join(row.get('failures', []))}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["tensorrt", "tensorrt-rtx"], help="default: tensorrt if installed")
    parser.add_argument("--preset", default="demo", help="reference_model preset (default: demo)")
    parser.add_argument("--tasks", nargs="*", help="default: every task")
    parser.add_argument("--modes", nargs="*", default=["decomposed", "custom-op"], choices=["decomposed", "custom-op"])
    parser.add_argument("--fp16", action=argparse.BooleanOptionalAction, default=True,
                        help="TensorRT FP16 builder flag (default on; TensorRT for RTX builds fp32 exports as fp32)")
    parser.add_argument("--plugin", help="DynamicConv plugin library (TensorRT, custom-op exports)")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--json", help="write the rows as JSON here")
    return check(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
