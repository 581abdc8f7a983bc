"""The benchmark itself: settings, a runner per directory from the factory, round-robin timing,
results (see the package docstring for the method)."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError, lookup
from ..progress import QUIET, Progress

from .floor import GemmFloor, model_flops, model_gemms  # noqa: F401 - re-exported


@dataclass(frozen=True)
class BenchSettings:
    """What to time.

    Attributes:
        batches, sequences: the grid (sequence is capped at max_position_embeddings).
        threads: intra-op threads of every backend (ORT sessions and torch).
        repeats: timed calls per backend per grid point (fewer when ``budget_s`` runs out,
            never fewer than ``min_repeats``).
        warmup: untimed calls per backend per grid point.
        budget_s: time budget per grid point, all backends together.
        pause_s: sleep between timed calls, so idle worker threads stop spinning.
        torch_reference: also time the PyTorch reference (fp32 eager).
        floor: measure the fp32 GEMM rate and floor.
        seed: seed of the random token ids.
        provider: ONNX Runtime provider for export directories (cpu by default, cuda,
            tensorrt); an engine directory runs on TensorRT. A missing provider or GPU is one
            error line, never a silent fallback.
    """

    batches: tuple[int, ...] = (1, 8, 32)
    sequences: tuple[int, ...] = (32, 128, 512)
    threads: int = 2
    repeats: int = 20
    min_repeats: int = 3
    warmup: int = 2
    budget_s: float = 60.0
    pause_s: float = 0.01
    torch_reference: bool = False
    floor: bool = True
    seed: int = 0
    provider: str | None = None

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        if not self.batches or any(b < 1 for b in self.batches):
            raise InvalidInputError(f"batch sizes must be >= 1, got {list(self.batches)}")
        if not self.sequences or any(s < 1 for s in self.sequences):
            raise InvalidInputError(f"sequence lengths must be >= 1, got {list(self.sequences)}")
        if self.threads < 1:
            raise InvalidInputError(f"threads must be >= 1, got {self.threads}")
        if self.repeats < 1 or self.min_repeats < 1:
            raise InvalidInputError(f"repeats must be >= 1, got {self.repeats}")
        if self.provider is not None:
            from ..runtime.factory import provider_choices

            lookup(dict.fromkeys(provider_choices()), self.provider, "provider")


@dataclass
class Timing:
    backend: str
    batch: int
    sequence: int
    times_ms: list[float] = field(default_factory=list)

    def to_dict(self, reference_p50: float | None = None) -> dict:
        t = np.asarray(self.times_ms)
        p50 = float(np.percentile(t, 50))
        data = {
            "backend": self.backend,
            "batch": self.batch,
            "sequence": self.sequence,
            "repeats": int(t.size),
            "p50_ms": round(p50, 3),
            "p90_ms": round(float(np.percentile(t, 90)), 3),
            "p99_ms": round(float(np.percentile(t, 99)), 3),
            "mean_ms": round(float(t.mean()), 3),
            "min_ms": round(float(t.min()), 3),
            "throughput_seq_per_s": round(1000.0 * self.batch / p50, 2),
            "throughput_tokens_per_s": round(1000.0 * self.batch * self.sequence / p50, 1),
        }
        data["speedup_vs_reference"] = round(reference_p50 / p50, 3) if reference_p50 else None
        return data


# ---------------------------------------------------------------------------------- backends


def _backend_settings(backend: str, settings: "BenchSettings"):
    """Every backend with the same thread count: ONNX Runtime with spinning off, OpenVINO with
    ``INFERENCE_NUM_THREADS`` (and its export's own precision settings); others their defaults."""
    if backend == "onnxruntime":
        from ..runtime.ort import OrtSettings

        return OrtSettings(intra_op_threads=settings.threads, inter_op_threads=1, allow_spinning=False, custom_ops="auto")
    if backend == "openvino":
        from ..runtime.openvino import OpenVinoSettings

        return OpenVinoSettings(threads=settings.threads)
    return None


def open_backend(path: Path, name: str, settings: "BenchSettings"):
    """The started runner of one export or engine directory (the one runner path,
    ``runtime/factory.py``), and its description for the results."""
    from ..manifest import load_manifest
    from ..runtime.factory import backend_for, create_runner

    backend = backend_for(path, settings.provider)
    runner = create_runner(path, provider=settings.provider, strict=True,
                           settings=_backend_settings(backend, settings))
    runner.start()
    manifest = load_manifest(path)
    info = {**runner.describe(), "name": name, "kind": backend, "path": str(path),
            "transformations": [t.get("step", str(t)) if isinstance(t, dict) else str(t)
                                for t in manifest.transformations]}
    return runner, manifest, info


def open_reference(manifest, settings: "BenchSettings"):
    """The started PyTorch reference runner (fp32 eager) for an export, and its description."""
    import torch

    from ..runtime.torch_ref import TorchRunner

    torch.set_num_threads(settings.threads)
    runner = TorchRunner.for_export(manifest).start()
    info = {"name": REFERENCE_NAME, "kind": "torch", "task": manifest.task, "precision": "fp32",
            "source": manifest.source, "torch": torch.__version__, "threads": torch.get_num_threads()}
    return runner, info


REFERENCE_NAME = "pytorch-eager-fp32"


def make_feeds(manifest, batch: int, sequence: int, seed: int) -> dict:
    """Random ids (no padding), token types split in halves; (batch, 2, sequence) for multiple
    choice (the task's :meth:`~convbert_export.inputs.TaskInputs.benchmark`)."""
    from ..inputs import ModelDims
    from ..tasks import get_task

    return get_task(manifest.task).model_inputs().benchmark(ModelDims.of(manifest.model), batch, sequence, seed)


# ------------------------------------------------------------------------------------ running


@dataclass
class BenchResult:
    settings: BenchSettings
    backends: list[dict]
    results: list[dict]
    floor: list[dict]
    notes: list[str]
    machine: dict
    elapsed_s: float

    def to_dict(self) -> dict:
        return {"settings": asdict(self.settings), "machine": self.machine, "notes": self.notes,
                "backends": self.backends, "results": self.results, "floor": self.floor,
                "elapsed_s": round(self.elapsed_s, 1)}

    def table(self) -> str:
        """A text table: one row per backend and grid point."""
        floors = {(f["batch"], f["sequence"]): f for f in self.floor}
        headers = ["batch", "seq", "backend", "runtime", "precision", "p50 ms", "p90 ms", "p99 ms", "seq/s", "vs ref", "vs floor"]
        rows = []
        for r in self.results:
            floor = floors.get((r["batch"], r["sequence"]))
            rows.append([
                str(r["batch"]), str(r["sequence"]), r["backend"], r.get("runtime", ""), r.get("precision") or "",
                f"{r['p50_ms']:.2f}", f"{r['p90_ms']:.2f}",
                f"{r['p99_ms']:.2f}", f"{r['throughput_seq_per_s']:.1f}",
                f"{r['speedup_vs_reference']:.2f}x" if r["speedup_vs_reference"] else "-",
                f"{r['p50_ms'] / floor['fp32_floor_ms']:.2f}" if floor else "-",
            ])
        for f in self.floor:
            rows.append([str(f["batch"]), str(f["sequence"]), f"(fp32 GEMM floor, {f['gemm_gflops_per_s']:.0f} GFLOP/s, "
                         f"{f['gflop']:.1f} GFLOP)", "onnxruntime", "fp32", f"{f['fp32_floor_ms']:.2f}", "", "", "", "",
                         "1.00"])
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
        cpu = self.machine.get("cpu") or {}
        features = ", ".join(f"{k} {'yes' if cpu.get('features', {}).get(k) else 'no'}" for k in ("AVX-512", "VNNI", "BF16", "AMX"))
        lines = [f"CPU: {cpu.get('model', 'unknown')}, {cpu.get('cores', '?')} cores; {features}; "
                 f"{self.settings.threads} threads; load average {self.machine.get('load_average', '?')}"] if cpu else []
        lines += ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
        return "\n".join(lines)


def time_interleaved(calls: dict, settings: BenchSettings) -> dict[str, list[float]]:
    """Time each zero-argument callable round-robin (order rotated per repeat); ms per call.

    Every callable is warmed up first; a ``settings.pause_s`` sleep precedes each timed call;
    repeating stops after ``settings.repeats`` rounds or once ``settings.budget_s`` is spent
    (never before ``settings.min_repeats`` rounds).
    """
    names = list(calls)
    for name in names:
        for _ in range(settings.warmup):
            calls[name]()
            time.sleep(settings.pause_s)
    samples: dict[str, list[float]] = {name: [] for name in names}
    started = time.perf_counter()
    for repeat in range(settings.repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            time.sleep(settings.pause_s)
            start = time.perf_counter()
            calls[name]()
            samples[name].append(1000.0 * (time.perf_counter() - start))
        if repeat + 1 >= settings.min_repeats and time.perf_counter() - started > settings.budget_s:
            break
    return samples


def _unique_names(paths: list[Path]) -> list[str]:
    names = []
    for path in paths:
        name = path.name or str(path)
        if name in names:
            name = f"{path.parent.name}/{name}"
        while name in names:
            name += "'"
        names.append(name)
    return names


def benchmark(export_dirs, settings: BenchSettings | None = None, *, progress: Progress | None = None) -> BenchResult:
    """Time every export directory (and the reference) over the grid, interleaved."""
    settings = settings or BenchSettings()
    settings.check()
    progress = progress or QUIET
    paths = [Path(p) for p in export_dirs]
    if not paths:
        raise InvalidInputError("benchmark needs at least one export directory")
    # torch's OpenMP workers sleep instead of spinning between ops: on a shared 2-core machine
    # spinning workers that lose their core stall eager torch (measured: 3000 ms instead of 200)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    started = time.perf_counter()
    runners: dict = {}  # result name -> started Runner, in result order
    infos: list[dict] = []
    try:
        with progress.step(f"starting {len(paths)} runner(s)"):
            manifests = []
            for path, name in zip(paths, _unique_names(paths)):
                runner, manifest, info = open_backend(path, name, settings)
                runners[name] = runner
                manifests.append(manifest)
                infos.append(info)
        manifest = manifests[0]
        provider = settings.provider or "cpu"
        notes = [
            f"ONNX Runtime sessions: provider {provider}, session.intra_op.allow_spinning=0, "
            f"intra_op_num_threads={settings.threads}, inter_op_num_threads=1",
            f"backends interleaved round-robin per repeat (order rotated), {settings.pause_s * 1000:.0f} ms pause "
            "between timed calls",
            "inputs: random ids, no padding (attention_mask all ones)",
        ]
        if any(info["kind"] == "openvino" for info in infos):
            notes.append(f"OpenVINO: CPU, INFERENCE_NUM_THREADS={settings.threads}, PERFORMANCE_HINT=LATENCY, inference "
                         "precision and dynamic quantization as each export records")
        tasks = {m.task for m in manifests}
        if len(tasks) > 1:
            notes.append(f"warning: the exports have different tasks ({', '.join(sorted(tasks))}); the reference runs "
                         f"{manifest.task}")
        if settings.torch_reference:
            with progress.step("loading the PyTorch reference"):
                runner, info = open_reference(manifest, settings)
            runners = {REFERENCE_NAME: runner, **runners}
            infos.insert(0, info)
            notes.append(f"PyTorch reference: reference_model fp32 eager, torch.set_num_threads({settings.threads}), "
                         f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
        if settings.floor:
            notes.append("fp32 floor: the model's GEMMs (analytic shapes) run alone as ONNX Runtime MatMuls, timed "
                         "interleaved with the backends; floor = model FLOPs / that GEMM rate")
        config = _config(paths[0])
        max_len = int(manifest.model["max_position_embeddings"])
        grid = [(b, s) for b in settings.batches for s in sorted({min(s, max_len) for s in settings.sequences})]
        results: list[dict] = []
        floors: list[dict] = []
        for batch, sequence in progress.iterate(grid, "benchmarking"):
            feeds = make_feeds(manifest, batch, sequence, settings.seed)
            calls = {}
            for name, runner in runners.items():
                own = runner.check_feeds({k: feeds[k] for k in runner.input_metadata})  # once, not timed
                calls[name] = lambda runner=runner, own=own: runner.run(own, check=False)
            floor = GemmFloor(config, batch, sequence, settings.threads) if settings.floor and config is not None else None
            if floor is not None:
                calls[floor.name] = floor
            samples = time_interleaved(calls, settings)
            if floor is not None:
                floors.append(floor.summary(float(np.percentile(samples.pop(floor.name), 50))))
            timings = {name: Timing(name, batch, sequence, times) for name, times in samples.items()}
            reference_p50 = None
            if settings.torch_reference:
                reference_p50 = float(np.percentile(timings[REFERENCE_NAME].times_ms, 50))
            kinds = {info["name"]: info for info in infos}
            results += [{**timings[name].to_dict(reference_p50), "runtime": kinds[name]["kind"],
                         "precision": kinds[name].get("precision")} for name in runners]
    finally:
        for runner in runners.values():
            runner.close()
    if settings.floor and config is None:
        notes.append("no fp32 floor: config.json missing from the first export")
    return BenchResult(settings, infos, results, floors, notes, _machine(settings), time.perf_counter() - started)


def _config(directory: Path) -> dict | None:
    path = Path(directory) / "config.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _machine(settings: BenchSettings) -> dict:
    import onnxruntime

    from ..cpu import cpu_features

    data = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "onnxruntime": onnxruntime.__version__, "threads": settings.threads,
            "cpu": cpu_features().to_dict()}
    try:
        data["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        pass
    return data


def write_json(result: BenchResult, path: str | Path) -> None:
    from ..fileio import write_json_atomic

    write_json_atomic(path, result.to_dict())


def write_html(result: BenchResult, path: str | Path) -> None:
    """The HTML report (latency against batch size, one plot per sequence length), written atomically."""
    from ..fileio import write_text_atomic
    from ..report import html_report

    write_text_atomic(path, html_report(result.to_dict()))


def write_reports(result: BenchResult, json_out: str | Path | None = None, html_out: str | Path | None = None) -> None:
    """Write the requested reports of a benchmark run (each one only when its path is given)."""
    if json_out:
        write_json(result, json_out)
    if html_out:
        write_html(result, html_out)


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """``"1,8,32"`` -> (1, 8, 32), with a clear error."""
    try:
        values = tuple(int(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise InvalidInputError(f"{what}: expected comma-separated integers like 1,8,32, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise InvalidInputError(f"{what}: expected positive integers like 1,8,32, got {text!r}")
    return values


__all__ = ["BenchSettings", "BenchResult", "benchmark", "time_interleaved", "model_flops", "model_gemms", "GemmFloor", "write_json",
           "write_html", "write_reports", "parse_int_list"]
