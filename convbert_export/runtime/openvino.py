"""OpenVINO runner (CPU).

``OpenVinoRunner(path, settings=OpenVinoSettings(...))`` runs either

* an OpenVINO export directory, as ``convbert-export optimize --openvino VARIANT`` writes it:
  ``openvino_model.xml`` / ``openvino_model.bin`` (the IR; like every file of the directory, its
  sha256 is checked against the manifest before the model is read) with the compile properties the variant needs in the
  manifest's ``backend_options`` (inference precision, dynamic activation quantization); or
* a plain ONNX export directory (``model.onnx``), read by OpenVINO's ONNX frontend. A custom-op
  export's ``com.convbert_export::DynamicConv`` nodes have no OpenVINO kernel; the graph carries
  each node's body as a model-local function, which is inlined when the model is read (same
  result as the decomposed export). A custom node without its function is refused with the fix.

OpenVINO's CPU plugin picks bf16 inference precision by default on CPUs with native bf16
(AVX512_BF16 or AMX): this runner always sets ``INFERENCE_PRECISION_HINT`` explicitly (f32 unless
the export or the settings say bf16), so an fp32 export never silently runs in bf16.

Input checks live in :class:`~convbert_export.runtime.base.Runner`. Imports openvino lazily, in
``start``; nothing else in the package imports it except the OpenVINO optimize step.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError, MissingDependencyError, check_int, lookup
from .base import ModelLimits, Runner, TensorMeta, read_manifest

__all__ = ["OpenVinoSettings", "OpenVinoRunner", "IR_XML", "IR_BIN", "INFERENCE_PRECISIONS", "import_openvino",
           "is_openvino_dir", "read_onnx"]

IR_XML = "openvino_model.xml"
IR_BIN = "openvino_model.bin"
INFERENCE_PRECISIONS = ("f32", "bf16")
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT")
INSTALL = "pip install 'convbert-export[openvino]' (openvino>=2024.0)"


def import_openvino():
    """The ``openvino`` module, or MissingDependencyError naming the install command."""
    try:
        import openvino
    except ImportError as exc:
        raise MissingDependencyError(f"OpenVINO is not installed ({exc}); {INSTALL}") from None
    return openvino


def is_openvino_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an OpenVINO export directory (it holds the IR, ``openvino_model.xml``)."""
    return (Path(path) / IR_XML).is_file()


@dataclass(frozen=True)
class OpenVinoSettings:
    """OpenVINO compile settings.

    Attributes:
        threads: ``INFERENCE_NUM_THREADS``; 0 lets OpenVINO choose (all cores).
        inference_precision: ``f32`` or ``bf16``; None: what the export records (an OpenVINO
            bf16 variant), else f32.
        dynamic_quantization_group_size: ``DYNAMIC_QUANTIZATION_GROUP_SIZE`` (activations of
            layers with int8 weights quantized per token in groups of this many channels;
            0 = off); None: what the export records, else OpenVINO's default.
        performance_hint: ``LATENCY`` (one stream, all threads on one request) or
            ``THROUGHPUT``.
    """

    threads: int = 0
    inference_precision: str | None = None
    dynamic_quantization_group_size: int | None = None
    performance_hint: str = "LATENCY"

    def __post_init__(self):
        check_int("threads", self.threads, 0, " (0 = OpenVINO's choice)")
        if self.inference_precision is not None:
            lookup(INFERENCE_PRECISIONS, self.inference_precision, "inference precision")
        group = self.dynamic_quantization_group_size
        if group is not None:
            check_int("dynamic_quantization_group_size", group, 0, " (0 = off)")
        lookup(PERFORMANCE_HINTS, self.performance_hint, "performance hint")


def _first_line(exc: BaseException) -> str:
    """The informative line of an OpenVINO error (they start with a C++ source location)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for marker in ("No conversion rule", "not supported", "Unsupported", "mismatch"):
        for line in lines:
            if marker in line:
                return line
    return lines[-1] if lines else type(exc).__name__


def read_onnx(core, path: Path, manifest: dict | None = None):
    """Read an ONNX export into an ``openvino.Model``.

    A custom-op export's DynamicConv nodes are replaced by their model-local function bodies
    (``onnx.inliner``) first; a custom node without a body, or a model too big to inline in
    memory, is refused with the fix (re-export with ``--dynamic-conv decomposed``). A graph
    OpenVINO cannot convert (an ONNX Runtime-only variant) is refused naming the operator.
    """
    data = _inlined_onnx(Path(path), manifest)
    try:
        return core.read_model(data if data is not None else str(path))
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses
        raise InvalidInputError(
            f"OpenVINO could not read {str(path)!r} ({_first_line(exc)}); ONNX Runtime variants (fused "
            "com.microsoft ops, int8 QDQ) run on ONNX Runtime only: run the fp32 export on OpenVINO, or write an "
            "OpenVINO variant with `convbert-export optimize EXPORT_DIR --openvino int8`"
        ) from None


def _inlined_onnx(path: Path, manifest: dict | None) -> bytes | None:
    """The ONNX model with its model-local functions inlined (bytes) when it has custom-domain
    nodes; None when OpenVINO can read the file as it is."""
    conv = (manifest or {}).get("dynamic_conv") or {}
    if conv.get("mode") == "decomposed" and not conv.get("uses_custom_domain", False):
        return None  # standard ONNX ops only
    import onnx  # noqa: PLC0415 - only for custom-op exports

    proto = onnx.load(str(path), load_external_data=False)
    custom = {(n.domain, n.op_type) for n in proto.graph.node if n.domain not in ("", "ai.onnx", "com.microsoft")}
    if not custom:
        return None
    functions = {(f.domain, f.name) for f in proto.functions}
    missing = sorted(f"{d}::{t}" for d, t in custom - functions)
    if missing:
        raise InvalidInputError(
            f"{str(path)!r} has custom nodes {', '.join(missing)} without a model-local function body, and OpenVINO "
            "has no kernel for them; re-export with `--dynamic-conv decomposed` to run on OpenVINO"
        )
    if path.with_name(path.name + ".data").exists():
        raise InvalidInputError(
            f"{str(path)!r} keeps its weights in external data (over 2 GB), which cannot be inlined in memory; "
            "re-export with `--dynamic-conv decomposed` to run on OpenVINO"
        )
    from onnx import inliner

    return inliner.inline_local_functions(proto).SerializeToString()


def _metadata(ports, specs: list[dict]) -> dict[str, TensorMeta]:
    """TensorMeta per port: static dimensions as ints, dynamic ones named as in the manifest."""
    axes = {spec["name"]: spec.get("axes", []) for spec in specs}
    metadata = {}
    for port in ports:
        name = port.get_any_name()
        names = axes.get(name, [])
        dims = []
        for index, dim in enumerate(port.get_partial_shape()):
            if dim.is_static:
                dims.append(dim.get_length())
            else:
                dims.append(names[index] if index < len(names) and isinstance(names[index], str) else "?")
        metadata[name] = TensorMeta(name, np.dtype(port.get_element_type().to_dtype()), tuple(dims))
    return metadata


class OpenVinoRunner(Runner):
    """Runs an export directory (OpenVINO IR or ONNX) with OpenVINO on the CPU.

    Args:
        model: an export directory (with ``openvino_model.xml`` or ``model.onnx``), or the path
            of an ``.xml`` IR or ``.onnx`` file.
        settings: compile settings.
        limits: input value ranges; default: the manifest's ``model`` section.
        verify: check the directory's files (the IR or model.onnx, config, tokenizer) against
            the manifest's sha256 first (IntegrityError); ``False`` skips it.
    """

    def __init__(self, model: str | os.PathLike, settings: OpenVinoSettings | None = None,
                 limits: ModelLimits | None = None, verify: bool = True):
        path = Path(model)
        directory = path if path.is_dir() else path.parent
        if verify and (directory / "manifest.json").is_file():
            from ..manifest import verify_directory

            verify_directory(directory)
        if path.is_dir():
            self.export_dir: Path | None = path
            self.manifest: dict | None = read_manifest(path)
            self.model_path = path / IR_XML if is_openvino_dir(path) else path / "model.onnx"
            if not self.model_path.is_file():
                raise InvalidInputError(
                    f"export directory {str(path)!r} has neither {IR_XML} nor model.onnx; re-export the model"
                )
        elif path.is_file() and path.suffix in (".xml", ".onnx"):
            self.export_dir = None
            self.model_path = path
            self.manifest = read_manifest(path.parent) if (path.parent / "manifest.json").is_file() else None
        else:
            raise InvalidInputError(
                f"model not found: {str(path)!r}; expected an export directory, an OpenVINO .xml IR or a .onnx file"
            )
        if limits is None and self.manifest is not None:
            limits = ModelLimits.from_mapping(self.manifest.get("model"))
        super().__init__(limits=limits, name="OpenVinoRunner")
        self.settings = settings or OpenVinoSettings()
        self.version: str | None = None
        self.output_metadata: dict[str, TensorMeta] = {}
        self.compiled_config: dict = {}
        self._compiled = None
        self._local = threading.local()

    @classmethod
    def from_dir(cls, path, *, provider: str | None = None, settings=None, strict: bool = False,
                 custom_ops: str | None = None, **options):
        """The runner for a directory (the runtime's registry calls this). ``provider`` may be
        ``None``, ``cpu`` or ``openvino``: OpenVINO runs on the CPU here."""
        if provider not in (None, "cpu", "openvino"):
            raise InvalidInputError(
                f"OpenVINO runs on the CPU in convbert-export; got provider={provider!r}. Leave it out or pass 'cpu'"
            )
        if settings is not None and not isinstance(settings, OpenVinoSettings):
            raise InvalidInputError(
                f"settings for OpenVINO must be OpenVinoSettings, got {type(settings).__name__}"
            )
        return cls(path, settings=settings, **options)

    def describe(self) -> dict:
        manifest = self.manifest or {}
        config = self.compiled_config or self.compile_config()
        return {"name": self.name, "backend": f"openvino {self.version or ''} CPU".replace("  ", " "),
                "path": str(self.export_dir or self.model_path), "task": manifest.get("task"),
                "precision": manifest.get("precision", "fp32"),
                "inference_precision": config["INFERENCE_PRECISION_HINT"],
                "dynamic_quantization_group_size": config.get("DYNAMIC_QUANTIZATION_GROUP_SIZE"),
                "model": self.model_path.name,
                "dynamic_conv": (manifest.get("dynamic_conv") or {}).get("mode"),
                "custom_op_library": "not needed (OpenVINO runs the function body)"}

    # ---- what the export asks for ------------------------------------------------------
    @property
    def backend_options(self) -> dict:
        """The manifest's ``backend_options`` when the export is an OpenVINO variant, else {}."""
        if self.manifest is None or self.manifest.get("backend") != "openvino":
            return {}
        return dict(self.manifest.get("backend_options") or {})

    def compile_config(self) -> dict:
        """The properties passed to ``core.compile_model`` (settings first, then the export's)."""
        s, recorded = self.settings, self.backend_options
        config = {
            "PERFORMANCE_HINT": s.performance_hint,
            "INFERENCE_PRECISION_HINT": s.inference_precision or recorded.get("inference_precision") or "f32",
        }
        if s.threads:
            config["INFERENCE_NUM_THREADS"] = s.threads
        group = s.dynamic_quantization_group_size
        if group is None:
            group = recorded.get("dynamic_quantization_group_size")
        if group is not None:
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = int(group)
        return config

    # ---- lifecycle ---------------------------------------------------------------------
    def _read_model(self, core):
        if self.model_path.suffix == ".xml":
            try:
                return core.read_model(str(self.model_path))
            except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses
                raise InvalidInputError(
                    f"OpenVINO could not read {str(self.model_path)!r} ({_first_line(exc)}); re-create the variant "
                    "with `convbert-export optimize EXPORT_DIR --openvino VARIANT`"
                ) from None
        return read_onnx(core, self.model_path, self.manifest)

    def start_impl(self) -> None:
        ov = import_openvino()
        self.version = ov.get_version()
        core = ov.Core()
        config = self.compile_config()
        if config["INFERENCE_PRECISION_HINT"] == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            warnings.warn(
                "this export asks for bf16 inference but the CPU has no native bf16 (AVX512_BF16 or AMX); "
                "OpenVINO runs it in f32 (slower than intended, results within the bf16 tolerance)",
                RuntimeWarning,
                stacklevel=3,
            )
            config["INFERENCE_PRECISION_HINT"] = "f32"
        model = self._read_model(core)
        try:
            self._compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # noqa: BLE001
            raise InvalidInputError(
                f"OpenVINO could not compile {str(self.model_path)!r} with {config} ({_first_line(exc)})"
            ) from None
        self.compiled_config = config
        manifest = self.manifest or {}
        self.input_metadata = _metadata(self._compiled.inputs, manifest.get("inputs", []))
        self.output_metadata = _metadata(self._compiled.outputs, manifest.get("outputs", []))
        self.output_names = tuple(self.output_metadata)
        self._local = threading.local()

    def close_impl(self) -> None:
        self._compiled = None
        self._local = threading.local()

    @property
    def compiled_model(self):
        """The ``openvino.CompiledModel`` (None when not started)."""
        return self._compiled

    # ---- inference ---------------------------------------------------------------------
    def run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:  # an infer request is not thread-safe: one per calling thread
            request = self._local.request = self._compiled.create_infer_request()
        inputs = {name: np.ascontiguousarray(value) for name, value in feeds.items()}
        results = request.infer(inputs, share_inputs=False, share_outputs=False)
        return {name: np.asarray(results[port]) for name, port in zip(self.output_names, self._compiled.outputs)}
