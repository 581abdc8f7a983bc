"""Validate an export directory against the PyTorch reference.

Runs the reference and ONNX Runtime (CPU) on (a) a seeded grid of random inputs (batch x
sequence, right padding, both token types) and (b) real texts through the export's own
tokenizer; compares every output (names, then shapes, then values), accumulates task-level
agreement, measures the padding effect, and writes ``validation.json`` / ``validation.md``.
All failures are collected first; then the result is pass or fail.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConvBertExportError, InvalidInputError, ValidationFailedError
from ..fileio import write_json_atomic, write_text_atomic
from ..manifest import Manifest, load_manifest, verify_checksums
from ..progress import QUIET, Progress
from ..tasks import get_task
from .compare import Agreement, OutputStats, update_agreement


@dataclass(frozen=True)
class ValidationSettings:
    """What to run and how strict to be.

    Attributes:
        atol, rtol: tolerances (None: by the export's precision, see PRECISION_DEFAULTS; the
            task's 1e-5 for plain fp32).
        batches, sequences: the random grid; ``0`` in sequences means max_position_embeddings.
        num_choices: choices per example for multiple choice.
        texts: also run the packaged validation texts through the tokenizer.
        min_agreement: fail when task agreement is below this fraction (None: the precision's
            default: 0.99 for fp16 and int8, report only for fp32).
        min_cosine: fail when hidden-state cosine is below this (None: 0.999 for fp16 and
            int8, report only for fp32).
        use_library: for custom-op exports, register the DynamicConv library ("auto": if it
            builds; True: required; False: run the model-local function instead).
        seed: seed of the random inputs.
        load_inputs: an npz of model inputs (``--save-inputs`` writes one) to run instead of
            the grid and the texts (see ``validate/replay.py``).
        save_inputs, save_outputs: write the worst case's inputs / outputs there (npz).
        provider: the ONNX Runtime provider to validate on (cpu, cuda, tensorrt), or ``openvino``
            (OpenVINO on the CPU; OpenVINO export directories always validate there); an
            unavailable one is an error, never a silent fallback (the report says where it ran).
    """

    atol: float | None = None
    rtol: float | None = None
    batches: tuple[int, ...] = (1, 2, 5)
    sequences: tuple[int, ...] = (1, 7, 128, 0)
    num_choices: tuple[int, ...] = (2, 4)
    texts: bool = True
    min_agreement: float | None = None
    min_cosine: float | None = None
    use_library: bool | str = "auto"
    seed: int = 0
    provider: str = "cpu"
    load_inputs: str | None = None
    save_inputs: str | None = None
    save_outputs: str | None = None

    def check(self) -> None:
        """Refuse settings that would make the comparison meaningless (a NaN tolerance passes everything)."""
        import math

        for name in ("atol", "rtol"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InvalidInputError(f"{name} must be a finite number >= 0, got {value:g}; pass e.g. --{name} 1e-4")
        for name in ("min_agreement", "min_cosine"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"{name} must be within [0, 1], got {value:g}")


# Defaults by the export's precision: (atol, rtol, min_agreement, min_cosine). fp32 exports are
# held to the task's tolerances (1e-5); fused fp32 graphs reorder float sums (1e-4); fp16 and
# int8 are judged by task agreement and hidden-state cosine, with their value differences
# reported (int8's atol is effectively off).
PRECISION_DEFAULTS: dict[str, tuple[float, float, float | None, float | None]] = {
    "fp32-fused": (1e-4, 1e-4, None, None),
    "fp16": (2e-2, 2e-2, 0.99, 0.999),
    "int8-dynamic": (1e9, 0.0, 0.99, 0.999),
    "int8-static": (1e9, 0.0, 0.99, 0.999),
    # OpenVINO variants (convbert_export.export.openvino): judged like int8 and fp16
    "bf16": (1e9, 0.0, 0.99, 0.999),
    "int8-per-token": (1e9, 0.0, 0.99, 0.999),
    "int8-per-token-bf16": (1e9, 0.0, 0.99, 0.999),
}


def default_checks(manifest: Manifest) -> tuple[float, float, float | None, float | None]:
    """Tolerances and thresholds for an export, from its precision and transformations."""
    spec = get_task(manifest.task)
    key = manifest.precision
    if key == "fp32" and manifest.transformations:
        key = "fp32-fused"
    return PRECISION_DEFAULTS.get(key, (spec.atol, spec.rtol, None, None))


@dataclass
class ValidationReport:
    export_dir: str
    task: str
    dynamic_conv: str
    padding: str
    precision: str
    provider: str
    outputs: dict[str, OutputStats]
    agreement: Agreement
    failures: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    padding_effect: dict = field(default_factory=dict)
    library: str = ""
    elapsed_s: float = 0.0
    environment: dict = field(default_factory=dict)
    replay: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "task": self.task,
            "export_dir": self.export_dir,
            "dynamic_conv": self.dynamic_conv,
            "padding": self.padding,
            "precision": self.precision,
            "provider": self.provider,
            "custom_op_library": self.library,
            "outputs": [stats.to_dict() for stats in self.outputs.values()],
            "agreement": self.agreement.to_dict(),
            "padding_effect": self.padding_effect,
            "failures": self.failures,
            "cases": self.cases,
            "elapsed_s": round(self.elapsed_s, 3),
            "environment": self.environment,
            "replay": self.replay,
        }

    def summary(self) -> str:
        """One line per failure, for the error message."""
        return "; ".join(self.failures)


# ----------------------------------------------------------------------------------- inputs


def random_cases(manifest: Manifest, settings: ValidationSettings):
    """Yield (name, feeds) over the seeded grid."""
    spec = get_task(manifest.task)
    model = manifest.model
    max_len = int(model["max_position_embeddings"])
    vocab, types = int(model["vocab_size"]), int(model.get("type_vocab_size", 2))
    rng = np.random.default_rng(settings.seed)
    sequences = sorted({max_len if s == 0 else min(s, max_len) for s in settings.sequences})
    choices = settings.num_choices if spec.multiple_choice else (None,)
    for batch in settings.batches:
        for seq in sequences:
            for nc in choices:
                rows = batch * (nc or 1)
                ids = rng.integers(0, vocab, size=(rows, seq), dtype=np.int64)
                lengths = rng.integers(1, seq + 1, size=rows)
                lengths[0] = seq  # at least one row unpadded
                mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
                token_types = np.zeros((rows, seq), dtype=np.int64)
                if types > 1:
                    split = np.maximum(lengths // 2, 1)
                    token_types = ((np.arange(seq)[None, :] >= split[:, None]) & (mask == 1)).astype(np.int64)
                ids = np.where(mask == 1, ids, int(model.get("pad_token_id") or 0))
                shape = (batch, nc, seq) if nc else (batch, seq)
                name = f"random b={batch}" + (f" c={nc}" if nc else "") + f" s={seq}"
                yield name, {
                    "input_ids": ids.reshape(shape),
                    "attention_mask": mask.reshape(shape),
                    "token_type_ids": token_types.reshape(shape),
                }


def text_cases(manifest: Manifest, export_dir: Path, batch_size: int = 8):
    """Yield (name, feeds) of the packaged validation texts, tokenized for the task."""
    from ..tokenization import Tokenizer, validation_texts

    tokenizer = Tokenizer.from_pretrained(export_dir)
    max_len = min(int(manifest.model["max_position_embeddings"]), tokenizer.model_max_length or 10**9)
    items = validation_texts()
    task = manifest.task
    kw = dict(truncation=True, max_length=max_len, padding="longest")
    if task == "multiple-choice":
        examples = [it for it in items if "choices" in it]
        if not examples:
            return
        width = max(len(it["choices"]) for it in examples)
        for start in range(0, len(examples), batch_size):
            group = examples[start : start + batch_size]
            prompts = [it["prompt"] for it in group for _ in range(width)]
            choices = [
                (it["choices"][i] if i < len(it["choices"]) else it["choices"][-1]) for it in group for i in range(width)
            ]
            enc = tokenizer(prompts, choices, **kw)
            shape = (len(group), width, enc["input_ids"].shape[-1])
            yield f"texts mc[{start}:{start + len(group)}]", {k: enc[k].reshape(shape) for k in _INPUTS}
        return
    if task == "question-answering":
        pairs = [(it["question"], it["context"]) for it in items if "question" in it]
        kw["truncation"] = "only_second"
    elif task == "text-classification":
        pairs = [(it["text"], it.get("text_pair")) for it in items if "text" in it]
    else:
        pairs = [(it["text"], None) for it in items if "text" in it]
    for start in range(0, len(pairs), batch_size):
        group = pairs[start : start + batch_size]
        firsts = [a for a, _ in group]
        seconds = [b for _, b in group]
        if all(b is None for b in seconds):
            enc = tokenizer(firsts, **kw)
        elif all(b is not None for b in seconds):
            enc = tokenizer(firsts, seconds, **kw)
        else:  # mixed singles and pairs: encode separately, pad together
            yield from _mixed(tokenizer, group, kw, start)
            continue
        yield f"texts [{start}:{start + len(group)}]", {k: enc[k] for k in _INPUTS}


_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def tokenizer_mismatch(manifest: Manifest, export_dir: Path) -> str | None:
    """A reason the export's tokenizer cannot feed its model, or None."""
    from ..tokenization import Tokenizer

    try:
        tokenizer = Tokenizer.from_pretrained(export_dir)
    except Exception as exc:
        return f"tokenizer: cannot load the export's tokenizer files ({exc})"
    vocab = int(manifest.model["vocab_size"])
    if tokenizer.vocab_size > vocab:
        return (
            f"tokenizer: its vocabulary has {tokenizer.vocab_size} ids but the model embeds {vocab}; "
            "export with the checkpoint's own tokenizer files (vocab.txt or tokenizer.json beside config.json)"
        )
    return None


def _mixed(tokenizer, group, kw, start):
    singles = [(i, a) for i, (a, b) in enumerate(group) if b is None]
    pairs = [(i, a, b) for i, (a, b) in enumerate(group) if b is not None]
    if singles:
        enc = tokenizer([a for _, a in singles], **kw)
        yield f"texts [{start}] singles", {k: enc[k] for k in _INPUTS}
    if pairs:
        enc = tokenizer([a for _, a, _ in pairs], [b for _, _, b in pairs], **kw)
        yield f"texts [{start}] pairs", {k: enc[k] for k in _INPUTS}


# -------------------------------------------------------------------------------- backends


def check_head(model, spec) -> None:
    """Refuse a loaded head of another task (its outputs would not be the task's)."""
    found = type(model).__name__
    if found != spec.architecture:
        raise InvalidInputError(
            f"the model is a {found}, but {spec.name} needs {spec.architecture}; load the {spec.name} head "
            f"(reference_model.load(checkpoint, task={spec.name!r})) or pass the model's own task"
        )


def reference_for(manifest: Manifest, model=None):
    """The reference head for an export: ``model`` (module or checkpoint dir) or the manifest's source."""
    import reference_model

    if model is None:
        source = manifest.source
        if source.get("preset"):
            model = reference_model.from_preset(source["preset"], manifest.task, seed=int(source.get("seed", 0)))
        elif source.get("checkpoint"):
            path = Path(source["checkpoint"])
            if not path.is_dir():
                raise InvalidInputError(
                    f"the export's source checkpoint {str(path)!r} no longer exists; "
                    "pass the checkpoint with --model DIR (model=...)"
                )
            model = reference_model.load(path, task=manifest.task)
        else:
            raise InvalidInputError("the manifest names no source model; pass the checkpoint with --model DIR (model=...)")
    elif isinstance(model, (str, Path)):
        model = reference_model.load(model, task=manifest.task)
    check_head(model, get_task(manifest.task))
    model.eval()
    model.set_exact_padding(manifest.padding == "exact")
    return model


def run_reference(model, feeds: dict) -> dict[str, np.ndarray]:
    import torch

    with torch.inference_mode():
        out = model(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()})
    return {k: v.detach().float().numpy() for k, v in out.items()}


def ort_session(export_dir: Path, manifest: Manifest, use_library: bool | str = "auto", threads: int | None = None,
                provider: str = "cpu"):
    """An ONNX Runtime session for the export; returns (session, library description)."""
    import onnxruntime as ort

    from ..errors import UnknownNameError
    from ..runtime.ort import PROVIDERS

    if provider not in PROVIDERS:
        raise UnknownNameError(f"unknown provider {provider!r}; expected one of: {', '.join(PROVIDERS)}")
    available = ort.get_available_providers()
    if PROVIDERS[provider] not in available:
        raise InvalidInputError(
            f"cannot validate on {provider!r}: this onnxruntime has {', '.join(available)}; install "
            "onnxruntime-gpu for cuda/tensorrt, or validate with --provider cpu"
        )

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    library = "not needed"
    if manifest.uses_custom_op:
        library = "not loaded (model-local function)"
        if use_library:
            from .. import custom_ops

            try:
                path = custom_ops.library_path()
                options.register_custom_ops_library(str(path))
                library = f"loaded ({Path(path).name})"
            except Exception as exc:
                if use_library is True:
                    raise
                library = f"not loaded: {str(exc).splitlines()[0]}"
    session = ort.InferenceSession(str(export_dir / "model.onnx"), options, providers=[PROVIDERS[provider]])
    return session, library


class RunnerSession:
    """A started Runner seen through the few ``onnxruntime.InferenceSession`` calls validation
    makes (``get_inputs``, ``get_outputs``, ``run``), for backends other than ONNX Runtime."""

    _TYPES = {"float32": "tensor(float)", "float16": "tensor(float16)", "int64": "tensor(int64)",
              "int32": "tensor(int32)", "float64": "tensor(double)"}

    def __init__(self, runner, description: str):
        self.runner = runner.start()
        self.description = description

    @classmethod
    def openvino(cls, export_dir: Path) -> "RunnerSession":
        from ..runtime.openvino import OpenVinoRunner

        runner = OpenVinoRunner(export_dir, verify=False).start()  # validation reports checksum problems itself
        return cls(runner, f"openvino {runner.version} CPU {runner.compiled_config}")

    def _args(self, metadata) -> list:
        from types import SimpleNamespace

        return [SimpleNamespace(name=m.name, type=self._TYPES.get(m.dtype.name, m.dtype.name), shape=list(m.axes))
                for m in metadata.values()]

    def get_inputs(self) -> list:
        return self._args(self.runner.input_metadata)

    def get_outputs(self) -> list:
        return self._args(self.runner.output_metadata)

    def run(self, names, feeds) -> list:
        outputs = self.runner.run(feeds, check=False)
        return [outputs[name] for name in (names or self.runner.output_names)]


# ------------------------------------------------------------------------------ validation


def validate(
    export_dir: str | Path,
    model=None,
    settings: ValidationSettings | None = None,
    *,
    progress: Progress | None = None,
    raise_on_failure: bool = True,
    write: bool = True,
    display_path: str | Path | None = None,
) -> ValidationReport:
    """Validate ``export_dir`` against the PyTorch reference and write the reports.

    Args:
        export_dir: an export directory (manifest.json, model.onnx, ...).
        model: the reference: a reference_model head, a checkpoint directory, or None to rebuild
            it from the manifest's source (a preset and seed, or the checkpoint path).
        settings: grid and tolerances; see :class:`ValidationSettings`.
        raise_on_failure: raise :class:`ValidationFailedError` (carrying the report) on failure.
        write: write validation.json and validation.md into ``export_dir``.
        display_path: the path the report names (the final path while exporting into a
            temporary directory).
    """
    settings = settings or ValidationSettings()
    settings.check()
    progress = progress or QUIET
    export_dir = Path(export_dir)
    started = time.perf_counter()
    manifest = load_manifest(export_dir)
    spec = get_task(manifest.task)
    default_atol, default_rtol, default_agreement, default_cosine = default_checks(manifest)
    atol = default_atol if settings.atol is None else settings.atol
    rtol = default_rtol if settings.rtol is None else settings.rtol
    min_agreement = default_agreement if settings.min_agreement is None else settings.min_agreement
    min_cosine = default_cosine if settings.min_cosine is None else settings.min_cosine
    failures = [f"checksum: {problem}" for problem in verify_checksums(export_dir, manifest)]

    with progress.step(f"[{manifest.task}] loading the reference"):
        reference = reference_for(manifest, model)
    try:
        if manifest.backend == "openvino" or settings.provider == "openvino":
            session, library = RunnerSession.openvino(export_dir), "not needed (OpenVINO runs the function body)"
        else:
            session, library = ort_session(export_dir, manifest, settings.use_library, provider=settings.provider)
    except ConvBertExportError:
        raise
    except Exception as exc:  # onnxruntime raises its own types for a missing or corrupt model
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        checks = "; ".join(failures) or "the files match the manifest"
        raise InvalidInputError(
            f"cannot load {export_dir / 'model.onnx'} in onnxruntime ({reason}); {checks}; re-export the model"
        ) from None
    failures += graph_mismatches(export_dir, manifest, session)
    got_names = [o.name for o in session.get_outputs()]
    if got_names != list(spec.output_names):
        failures.append(f"output names: expected {list(spec.output_names)}, got {got_names}")

    stats = {name: OutputStats(name, atol, rtol) for name in spec.output_names}
    agreement = Agreement(spec.agreement)
    if settings.load_inputs:
        from .replay import load_inputs

        feeds = load_inputs(settings.load_inputs, [i.name for i in manifest.inputs], spec.multiple_choice)
        cases = [(f"replay {Path(settings.load_inputs).name}", feeds)]
    else:
        cases = list(random_cases(manifest, settings))
    if settings.texts and not settings.load_inputs:
        problem = tokenizer_mismatch(manifest, export_dir)
        if problem:
            failures.append(problem)
        else:
            cases += list(text_cases(manifest, export_dir))
    shape_failures: dict[str, str] = {}
    for name, feeds in progress.iterate(cases, f"[{manifest.task}] validating {len(cases)} cases"):
        ref = run_reference(reference, feeds)
        got = dict(zip(got_names, session.run(None, feeds)))
        mask = feeds["attention_mask"].reshape(-1, feeds["attention_mask"].shape[-1]).astype(bool)
        for out_name in spec.output_names:
            if out_name not in got:
                continue
            if got[out_name].shape != ref[out_name].shape:
                shape_failures.setdefault(
                    out_name, f"{out_name} shape in case {name!r}: expected {ref[out_name].shape}, got {got[out_name].shape}"
                )
                continue
            stats[out_name].update(name, got[out_name], ref[out_name], length=feeds["input_ids"].shape[-1])
        if not shape_failures:
            token_mask = None if spec.multiple_choice else mask
            update_agreement(agreement, spec.agreement, got, ref, token_mask)
    failures += list(shape_failures.values())
    replay = _save_worst(settings, stats, cases, reference, session, got_names)
    for s in stats.values():
        if not s.elements and s.name in got_names and s.name not in shape_failures:
            failures.append(f"{s.name}: never compared (no validation case ran); check the validation grid")
        elif s.elements and not s.passed:
            failures.append(
                f"{s.name}: max abs diff {s.max_abs:.3g} (max rel {s.max_rel:.3g}) exceeds atol {s.atol:g} / rtol {s.rtol:g} "
                f"in {s.violations} of {s.elements} values" + (f", {s.nonfinite} non-finite" if s.nonfinite else "")
                + f"; worst case {s.worst_case!r}"
            )
    rate = agreement.rate
    if agreement.nonfinite:
        failures.append(f"{spec.agreement} agreement not computed: NaN/Inf outputs in {agreement.nonfinite} "
                        "case(s) (non-finite weights or an overflow)")
    elif spec.agreement == "cosine":
        if min_cosine is not None and not rate >= min_cosine:
            failures.append(f"hidden-state cosine {rate:.6f} is below the threshold {min_cosine}")
    elif min_agreement is not None and not rate >= min_agreement:
        failures.append(f"{spec.agreement} agreement {rate:.2%} is below the threshold {min_agreement:.2%}")

    effect = padding_effect(session, got_names, manifest, reference)
    # the exact-padding promise, checked like the outputs: a padded text gives what it gives
    # alone (fp32 exports whose outputs do not depend on batch-mates)
    padded_diff = effect.get("export_max_abs_diff")
    if manifest.padding == "exact" and manifest.precision == "fp32" and manifest.batch_invariant \
            and padded_diff is not None and not padded_diff <= atol:
        failures.append(
            f"padding effect {padded_diff:.3g} exceeds atol {atol:g}: a padded text does not give what it "
            "gives alone, though the export promises exact padding"
        )
    report = ValidationReport(
        export_dir=str(export_dir),
        task=manifest.task,
        dynamic_conv=manifest.dynamic_conv_mode,
        padding=manifest.padding,
        precision=manifest.precision,
        provider=getattr(session, "description", None) or f"onnxruntime {session.get_providers()[0]}",
        outputs=stats,
        agreement=agreement,
        failures=failures,
        cases=[name for name, _ in cases],
        library=library,
        padding_effect=effect,
        environment=_environment(),
        replay=replay,
    )
    report.elapsed_s = time.perf_counter() - started
    if display_path is not None:
        report.export_dir = str(display_path)
    if write:
        write_reports(report, export_dir)
    if raise_on_failure and not report.passed:
        raise ValidationFailedError(f"validation of {export_dir} failed: {report.summary()}", report)
    return report


def _save_worst(settings: ValidationSettings, stats: dict, cases: list, reference, session, names) -> str:
    """Write the worst case for replay (--save-inputs/--save-outputs); what was written, or ""."""
    if not (settings.save_inputs or settings.save_outputs):
        return ""
    from .replay import save_case, worst_case

    name = worst_case(stats)
    if name is None:
        return ""
    feeds = dict(cases)[name]
    got = dict(zip(names, session.run(None, feeds))) if settings.save_outputs else None
    ref = run_reference(reference, feeds) if settings.save_outputs else None
    save_case(feeds, settings.save_inputs, settings.save_outputs, got, ref)
    files = " and ".join(str(p) for p in (settings.save_inputs, settings.save_outputs) if p)
    return f"worst case {name!r} saved to {files}; re-run it with validate --load-inputs"


_ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
               "tensor(int32)": "int32", "tensor(double)": "float64", "tensor(bfloat16)": "bfloat16"}


def graph_mismatches(export_dir: Path, manifest: Manifest, session) -> list[str]:
    """Where the manifest's input/output specs or opset differ from the graph (pipelines and
    engine profiles trust the manifest)."""
    import onnx

    problems = []
    for kind, specs, values in (("input", manifest.inputs, session.get_inputs()),
                                ("output", manifest.outputs, session.get_outputs())):
        graph = {v.name: v for v in values}
        if [s.name for s in specs] != list(graph):
            problems.append(f"manifest {kind}s {[s.name for s in specs]}, graph {list(graph)}")
            continue
        for spec in specs:
            value = graph[spec.name]
            dtype = _ORT_DTYPES.get(value.type, value.type)
            if spec.dtype != dtype:
                problems.append(f"manifest {kind} {spec.name}: dtype {spec.dtype}, graph {dtype}")
            axes = [d if isinstance(d, (int, str)) else "?" for d in value.shape]
            if list(spec.axes) != axes:
                problems.append(f"manifest {kind} {spec.name}: axes {list(spec.axes)}, graph {axes}")
    if not (export_dir / "model.onnx").is_file():  # an OpenVINO IR directory: no ONNX opset
        return problems
    proto = onnx.load(str(export_dir / "model.onnx"), load_external_data=False)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset != manifest.opset:
        problems.append(f"manifest opset {manifest.opset}, graph {opset}")
    return problems


def write_reports(report: ValidationReport, directory: str | Path) -> None:
    """Write validation.json, validation.md and validation.html into ``directory`` (atomically)."""
    from ..report import validation_markdown

    write_json_atomic(Path(directory) / "validation.json", report.to_dict())
    write_text_atomic(Path(directory) / "validation.md", validation_markdown(report))
    from ..report import html_report

    write_text_atomic(Path(directory) / "validation.html", html_report(report.to_dict()))


def padding_effect(session, names, manifest: Manifest, reference) -> dict:
    """How much right padding changes a text's outputs, for this export and for transformers.

    One seeded text of 20 tokens (or fewer) runs alone and padded to 3x its length (capped at
    max_position_embeddings); the max abs difference on its real positions is reported for
    the ONNX model and for the reference with transformers' leaking semantics.
    """
    spec = get_task(manifest.task)
    max_len = int(manifest.model["max_position_embeddings"])
    length = min(20, max_len)
    padded = min(3 * length, max_len)
    if padded == length:
        return {"note": "max_position_embeddings too small to measure"}
    rng = np.random.default_rng(1234)
    ids = rng.integers(0, int(manifest.model["vocab_size"]), size=length, dtype=np.int64)
    pad_id = int(manifest.model.get("pad_token_id") or 0)

    def feeds_for(total: int) -> dict:
        row_ids = np.full(total, pad_id, dtype=np.int64)
        row_ids[:length] = ids
        mask = (np.arange(total) < length).astype(np.int64)
        shape = (1, 1, total) if spec.multiple_choice else (1, total)
        return {
            "input_ids": row_ids.reshape(shape),
            "attention_mask": mask.reshape(shape),
            "token_type_ids": np.zeros(shape, dtype=np.int64),
        }

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

    alone, padded_feeds = feeds_for(length), feeds_for(padded)
    onnx_alone = dict(zip(names, session.run(None, alone)))
    onnx_padded = dict(zip(names, session.run(None, padded_feeds)))
    if any(not np.isfinite(v).all() for d in (onnx_alone, onnx_padded) for v in d.values()
           if np.issubdtype(np.asarray(v).dtype, np.floating)):
        return {"note": "not measured: the export's outputs hold NaN or Inf"}
    exact = reference.exact_padding
    try:
        reference.set_exact_padding(False)
        leak = diff(run_reference(reference, alone), run_reference(reference, padded_feeds))
    finally:
        reference.set_exact_padding(exact)
    return {
        "text_tokens": length,
        "padded_to": padded,
        "export_max_abs_diff": diff(onnx_alone, onnx_padded),
        "transformers_semantics_max_abs_diff": leak,
        "note": (
            "multiple-choice pools the last position, a padding position under right padding"
            if spec.multiple_choice and manifest.padding != "exact"
            else ""
        ),
    }


def _environment() -> dict:
    import onnxruntime

    from .. import __version__

    return {
        "convbert_export": __version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
