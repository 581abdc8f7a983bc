"""ONNX Runtime runner.

``OrtRunner(export_dir_or_model_path, provider="cpu", settings=OrtSettings(...))``

* Providers by name: ``cpu``, ``cuda``, ``tensorrt``. One that this onnxruntime build lacks
  gives a warning naming the fallback used (tensorrt -> cuda -> cpu); with ``strict=True``
  (validation, benchmarks: they must measure what was asked) it is one error line instead.
* Session options as a frozen dataclass (:class:`OrtSettings`): intra/inter-op threads, graph
  optimization level, spinning (disable it when timing, or when another process shares the
  cores: ORT's workers keep spinning after a call and slow whatever runs next).
* The DynamicConv custom-op library (``convbert_export.custom_ops``) is registered when the
  model uses the custom domain (``OrtSettings.custom_ops``: ``if-built``, the serving default,
  never compiles and warns when the library is missing; ``auto`` builds it when needed;
  ``required`` fails without it; ``off`` never registers it). Without the library ORT runs the
  model-local function carried in the graph instead (same result, slower); ``runner.library``
  says which ran. The library has CPU kernels only, so CUDA and TensorRT sessions never get it
  (each layer would copy to the host and back): they run the function body on the GPU, and a
  warning says so.
* IO binding on CUDA: inputs copied once, outputs allocated by ORT on the device and copied
  back once per call.

Imports onnxruntime lazily (in ``start``), and never torch.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError, MissingDependencyError, ModelLoadError, lookup
from ..custom_ops import DOMAIN
from .base import ModelLimits, Runner, TensorMeta, read_manifest

__all__ = ["OrtSettings", "OrtRunner", "PROVIDERS", "CUSTOM_DOMAIN"]

CUSTOM_DOMAIN = DOMAIN  # the DynamicConv op's domain, defined in custom_ops.py

PROVIDERS: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
_FALLBACK = {"tensorrt": ["cuda", "cpu"], "cuda": ["cpu"], "cpu": []}

#: Why a GPU session does not get the DynamicConv library (runner.library).
CPU_ONLY_LIBRARY_NOTE = (
    "not loaded for the {provider} provider: it has CPU kernels only (every layer would copy to the "
    "host and back); ONNX Runtime runs the model-local function on the GPU instead (same result)"
)

_OPT_LEVELS = ("disable", "basic", "extended", "all")
_CUSTOM_OPS = ("if-built", "auto", "required", "off")

_ORT_TYPES = {
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(bool)": np.bool_,
}


@dataclass(frozen=True)
class OrtSettings:
    """ONNX Runtime session settings.

    Attributes:
        intra_op_threads: threads inside one operator; 0 lets ORT choose (all cores).
        inter_op_threads: threads across independent operators; 0 lets ORT choose.
        graph_optimization: one of ``disable``, ``basic``, ``extended``, ``all`` (ORT default).
        allow_spinning: keep worker threads spinning between calls (ORT's default True is
            fastest for back-to-back calls on a dedicated machine; False is fairer on shared
            cores and for interleaved benchmarks).
        io_binding: bind inputs/outputs explicitly; ``None`` = on for CUDA, off otherwise.
        register_custom_ops: register the DynamicConv library when the model needs it
            (False is ``custom_ops="off"``).
        custom_ops: how to get that library: ``if-built`` (default: use it if built, else warn
            and run the model-local function; never compiles inside a serving process),
            ``auto`` (build it when needed; without it, the model-local function, noted in
            ``runner.library``), ``required`` (build it when needed; an error without it),
            ``off`` (never register it).
        log_severity: ORT's log level (0 verbose .. 4 fatal).
    """

    intra_op_threads: int = 0
    inter_op_threads: int = 0
    graph_optimization: str = "all"
    allow_spinning: bool = True
    io_binding: bool | None = None
    register_custom_ops: bool = True
    log_severity: int = 3
    custom_ops: str = "if-built"

    def __post_init__(self):
        lookup(_OPT_LEVELS, self.graph_optimization, "graph optimization level")
        lookup(dict.fromkeys(_CUSTOM_OPS), self.custom_ops, "custom_ops mode")
        for name in ("intra_op_threads", "inter_op_threads"):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"{name} must be >= 0 (0 = ORT's choice), got {getattr(self, name)}")


def _model_and_manifest(path: str | os.PathLike, verify: bool = True) -> tuple[Path, dict | None]:
    path = Path(path)
    if path.is_dir():
        manifest = read_manifest(path)
        if verify:
            from ..manifest import verify_directory

            verify_directory(path)
        model = path / "model.onnx"
        if not model.is_file():
            raise ModelLoadError(f"export directory {str(path)!r} has no model.onnx", "file not found")
        return model, manifest
    if not path.is_file():
        raise InvalidInputError(
            f"model not found: {str(path)!r}; expected an export directory or a .onnx file"
        )
    manifest_path = path.parent / "manifest.json"
    if not manifest_path.is_file():
        return path, None
    if verify:
        from ..manifest import verify_directory

        verify_directory(path.parent)
    return path, read_manifest(path.parent)


def resolve_providers(provider: str, available: list[str], strict: bool = False) -> tuple[str, list[str]]:
    """Map a provider name to ORT provider names, falling back (with a warning) when missing;
    ``strict``: a missing provider raises MissingDependencyError instead.

    Returns ``(name actually used, ORT providers list)``.
    """
    lookup(PROVIDERS, provider, "provider")
    if strict and PROVIDERS[provider] not in available:
        raise MissingDependencyError(
            f"ONNX Runtime provider {provider!r} ({PROVIDERS[provider]}) is not available: this onnxruntime "
            f"has {', '.join(available)}; install onnxruntime-gpu for cuda/tensorrt, or use --provider cpu"
        )
    for name in [provider, *_FALLBACK[provider]]:
        if PROVIDERS[name] in available:
            if name != provider:
                warnings.warn(
                    f"ONNX Runtime provider {provider!r} ({PROVIDERS[provider]}) is not available in "
                    f"this onnxruntime build (available: {', '.join(available)}); falling back to "
                    f"{name!r}. Install onnxruntime-gpu for cuda/tensorrt.",
                    RuntimeWarning,
                    stacklevel=3,
                )
            chain = [PROVIDERS[n] for n in [name, *_FALLBACK[name]] if PROVIDERS[n] in available]
            return name, chain
    raise MissingDependencyError(f"no usable ONNX Runtime provider among {available}")


class OrtRunner(Runner):
    """Runs an ONNX model (an export directory or a .onnx path) with ONNX Runtime.

    Args:
        model: export directory (with manifest.json) or path of a .onnx file.
        provider: ``cpu``, ``cuda`` or ``tensorrt``.
        settings: session settings.
        limits: input value ranges; default: the manifest's ``model`` section.
        strict: a provider this onnxruntime lacks is an error, not a fallback with a warning.
        verify: check the directory's files against its manifest's sha256 first (raises
            IntegrityError); ``False`` for callers that verified it already.

    Attributes (after ``start``): ``provider`` (the one used), ``session``, ``library`` (how
    the DynamicConv library was handled: ``not needed``, ``loaded (NAME)``, ``not loaded...``).
    """

    def __init__(
        self,
        model: str | os.PathLike,
        provider: str = "cpu",
        settings: OrtSettings | None = None,
        limits: ModelLimits | None = None,
        strict: bool = False,
        verify: bool = True,
    ):
        self.model_path, self.manifest = _model_and_manifest(model, verify)
        lookup(PROVIDERS, provider, "provider")
        if limits is None and self.manifest is not None:
            limits = ModelLimits.from_mapping(self.manifest.get("model"))
        super().__init__(limits=limits, name="OrtRunner")
        self.requested_provider = provider
        self.provider: str | None = None
        self.settings = settings or OrtSettings()
        self.strict = strict
        self.custom_ops_registered = False
        self.library = "not needed"
        self._session = None
        self._io_binding = False

    @classmethod
    def from_dir(cls, path, *, provider: str | None = None, settings: OrtSettings | None = None,
                 strict: bool = False, custom_ops: str | None = None, **options) -> "OrtRunner":
        """The runner of an export directory (see ``runtime/factory.py``); provider default ``cpu``."""
        if custom_ops is not None:
            settings = replace(settings or OrtSettings(), custom_ops=custom_ops)
        return cls(path, provider=provider or "cpu", settings=settings, strict=strict, **options)

    def describe(self) -> dict:
        manifest = self.manifest or {}
        used = self._session.get_providers()[0] if self._session is not None else PROVIDERS[self.requested_provider]
        return {"name": self.name, "backend": f"onnxruntime {used}", "path": str(self.model_path.parent),
                "task": manifest.get("task"), "precision": manifest.get("precision", "fp32"),
                "dynamic_conv": (manifest.get("dynamic_conv") or {}).get("mode"),
                "custom_op_library": self.library}

    # ---- lifecycle ---------------------------------------------------------------------
    def _needs_custom_ops(self) -> bool:
        if self.manifest is None:
            return True  # unknown: registering an unused library is harmless
        conv = self.manifest.get("dynamic_conv") or {}
        return conv.get("mode", "decomposed") != "decomposed" or conv.get("uses_custom_domain", False)

    def _register_custom_ops(self, options) -> None:
        mode = self.settings.custom_ops
        if mode == "off" or not self.settings.register_custom_ops:
            self.library = "not loaded (model-local function)"
            return
        if self.provider != "cpu":
            self.library = CPU_ONLY_LIBRARY_NOTE.format(provider=self.provider)
            if mode == "required":
                raise MissingDependencyError(
                    f"custom_ops='required' cannot be met on the {self.provider} provider: the DynamicConv "
                    "library has CPU kernels only; use provider 'cpu', or custom_ops 'if-built'/'auto'"
                )
            warnings.warn(f"DynamicConv custom-op library {self.library}", RuntimeWarning, stacklevel=4)
            return
        try:
            from .. import custom_ops  # noqa: PLC0415 - optional part, loaded on start

            # "if-built" never compiles inside a serving process
            path = custom_ops.register(options, build=mode != "if-built")
            self.custom_ops_registered = True
            self.library = f"loaded ({Path(path).name})"
        except Exception as exc:  # the library is optional: the graph carries a local function
            if mode == "required":
                raise
            self.library = f"not loaded: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            if mode == "auto":
                return
            warnings.warn(
                f"DynamicConv custom-op library not registered ({type(exc).__name__}: {exc}); ONNX "
                "Runtime will run the model-local function instead (same result, slower). Build the "
                "library with `convbert-export build-ops`.",
                RuntimeWarning,
                stacklevel=4,
            )

    def start_impl(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is a dependency
            raise MissingDependencyError("onnxruntime is not installed: pip install onnxruntime") from exc
        s = self.settings
        options = ort.SessionOptions()
        options.intra_op_num_threads = s.intra_op_threads
        options.inter_op_num_threads = s.inter_op_threads
        options.log_severity_level = s.log_severity
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[s.graph_optimization]
        if not s.allow_spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.provider, providers = resolve_providers(
            self.requested_provider, ort.get_available_providers(), strict=self.strict
        )
        if self._needs_custom_ops():
            self._register_custom_ops(options)
        try:
            self._session = ort.InferenceSession(str(self.model_path), sess_options=options, providers=providers)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(
                f"ONNX Runtime could not load {str(self.model_path)!r}: {exc}", reason
            ) from exc
        self.input_metadata = {
            arg.name: TensorMeta(
                arg.name,
                np.dtype(_ORT_TYPES.get(arg.type, np.float32)),
                tuple(d if isinstance(d, int) else (d or "?") for d in arg.shape),
            )
            for arg in self._session.get_inputs()
        }
        self.output_names = tuple(arg.name for arg in self._session.get_outputs())
        self._io_binding = s.io_binding if s.io_binding is not None else self.provider in ("cuda", "tensorrt")

    def close_impl(self) -> None:
        self._session = None

    @property
    def session(self):
        """The underlying ``onnxruntime.InferenceSession`` (None when not started)."""
        return self._session

    # ---- inference ---------------------------------------------------------------------
    def run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._io_binding:
            binding = self._session.io_binding()
            for name, value in feeds.items():
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
            device = "cuda" if self.provider in ("cuda", "tensorrt") else "cpu"
            for name in self.output_names:
                binding.bind_output(name, device)
            self._session.run_with_iobinding(binding)
            values = binding.copy_outputs_to_cpu()
        else:
            values = self._session.run(list(self.output_names), feeds)
        return dict(zip(self.output_names, values))
