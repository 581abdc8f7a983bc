"""Build a TensorRT (or TensorRT for RTX) engine directory from an export directory.

    from convbert_export.engine import EngineSettings, build_engine
    build_engine("out/onnx", "out/engine", EngineSettings(backend="tensorrt-rtx"))

Steps: read and verify the export's manifest; parse ``model.onnx`` (with full TensorRT and a
custom-op export, the DynamicConv plugin library is loaded first and the parser told to prefer
the plugin over the model-local function; TensorRT for RTX has no plugins and imports the
function body); count the plugin layers (none when a plugin was expected is an error: the parser
imported the function body; ``build.dynamic_conv`` in engine.json records what was built); add
the optimization profiles; set precision (builder flags, or for the strongly
typed TensorRT for RTX the export's own types); load the timing cache; build; write
``model.plan`` + ``engine.json`` (+ the export's tokenizer, config and manifest, so the engine
directory is self-contained) atomically; save the timing cache.
"""

from __future__ import annotations

import datetime
import hashlib
import shutil
import time
import warnings
from pathlib import Path

from ..errors import BuildError, InvalidInputError, MissingDependencyError
from ..fileio import atomic_directory, check_no_overlap, check_output_dir, sha256_file, write_bytes_atomic, write_json_atomic
from ..manifest import Manifest, load_manifest, verify_checksums
from ..progress import QUIET, Progress
from ..tasks import get_task
from .backends import backend_version, get_backend, import_backend
from .metadata import ANY_RTX, ENGINE_JSON, PLAN, EngineInfo
from .profiles import Profile, check_profiles, default_profiles, parse_profile
from .settings import PLUGIN_ENV, EngineSettings

from ..custom_ops import OP_TYPE as PLUGIN_NAME
from ..custom_ops import PLUGIN_NAMESPACE, PLUGIN_VERSION
from ..tokenization import TOKENIZER_FILES

# files copied from the export directory so a Pipeline can tokenize for the engine
COPIED_FILES = ("manifest.json", "config.json", *TOKENIZER_FILES)


def build_engine(export_dir: str | Path, output_dir: str | Path,
                 settings: EngineSettings | None = None, *, progress: Progress | None = None) -> Path:
    """Build ``output_dir`` (``model.plan`` + ``engine.json``) from ``export_dir``; return its path.

    Raises:
        MissingDependencyError: the chosen backend (or the plugin library it needs) is missing.
        InvalidInputError: a bad export directory, profile or option.
        BuildError: TensorRT failed to parse the model or to build the engine.
    """
    settings = settings or EngineSettings()
    progress = progress or QUIET
    export_dir, output_dir = Path(export_dir), Path(output_dir)
    parsed = parse_profiles(settings.profiles, export_dir)  # first, as the CLI parses its options
    backend = get_backend(settings.backend)
    started = time.perf_counter()
    trt = import_backend(backend.name)  # first: a missing backend is the one line the user sees

    check_output_dir(output_dir, settings.force)  # refuse an existing output before a long build
    manifest = load_manifest(export_dir)
    task = get_task(manifest.task)
    check_no_overlap(output_dir, export_dir, "export directory", fix="choose an --output outside it")
    onnx_path = export_dir / "model.onnx"
    max_positions = manifest.model.get("max_position_embeddings")
    profiles = parsed or default_profiles(max_positions or 512, task.multiple_choice)
    profiles = check_profiles(profiles, multiple_choice=task.multiple_choice,
                              max_position_embeddings=max_positions, task=task.name)
    with progress.step(f"checking {export_dir}"):
        problems = [p for p in verify_checksums(export_dir, manifest) if p.startswith("model.onnx")]
        if not onnx_path.is_file():
            problems.insert(0, "model.onnx: missing")
    if problems:
        raise InvalidInputError(
            f"export directory {str(export_dir)!r} does not match its manifest: "
            f"{'; '.join(problems)}; re-export the model"
        )
    precision = _precision(settings, manifest)

    version = backend_version(trt)
    logger = make_logger(trt)
    plugin_info = None
    if backend.plugins and manifest.uses_custom_op:
        plugin_info = _load_plugin(trt, settings, progress)

    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt, backend, settings, manifest))
    parser = trt.OnnxParser(network, logger)
    if plugin_info is not None and hasattr(trt.OnnxParserFlag, "ENABLE_PLUGIN_OVERRIDE"):
        parser.set_flag(trt.OnnxParserFlag.ENABLE_PLUGIN_OVERRIDE)
    with progress.step(f"parsing {onnx_path.name} with {backend.label} {version}"):
        if not parser.parse_from_file(str(onnx_path)):
            errors = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
            raise BuildError(
                f"{backend.label} could not parse {onnx_path}: {'; '.join(errors) or 'no details'}"
                + ("; " + "; ".join(logger.errors) if logger.errors else "")
            )
    _check_network(network, manifest, task)
    dynamic_conv = _dynamic_conv_layers(trt, network, backend, version, manifest, plugin_expected=plugin_info is not None)

    config = builder.create_builder_config()
    if settings.workspace_mb is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mb << 20)
    trt_profiles = []
    for profile in profiles:
        trt_profile = builder.create_optimization_profile()
        low, opt, high = profile.shapes()
        for spec in manifest.inputs:
            trt_profile.set_shape(spec.name, low, opt, high)
        config.add_optimization_profile(trt_profile)
        trt_profiles.append(trt_profile)
    if settings.fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    calibrator = None
    if settings.int8:
        calibrator = _set_int8(trt, config, settings, manifest, export_dir, profiles, trt_profiles, progress)
    cache_note = _load_timing_cache(trt, config, settings, backend, progress)

    gpu = None
    if backend.name == "tensorrt":
        gpu = _build_gpu()
    target = ({"gpu": ANY_RTX, "compute_capabilities": _rtx_targets(trt, config)} if backend.name == "tensorrt-rtx"
              else {"gpu": gpu.name, "compute_capability": gpu.compute_capability_str})

    try:
        with progress.step(f"building the {backend.label} engine ({len(profiles)} profile(s), {precision})"):
            plan = builder.build_serialized_network(network, config)
            if plan is None:
                raise BuildError(
                    f"{backend.label} failed to build the engine: "
                    f"{'; '.join(logger.errors) or 'no error message (rerun with a verbose logger)'}"
                )
    finally:
        if calibrator is not None:
            calibrator.release()
    plan_view = memoryview(plan)
    plan_sha = hashlib.sha256(plan_view).hexdigest()

    info = EngineInfo(
        backend=backend.name,
        backend_version=version,
        task=task.name,
        precision=precision,
        dynamic_conv=manifest.dynamic_conv_mode,
        target=target,
        profiles=profiles,
        inputs=tuple(spec.to_dict() for spec in manifest.inputs),
        outputs=tuple(spec.to_dict() for spec in manifest.outputs),
        plan_sha256=plan_sha,
        plan_bytes=plan_view.nbytes,
        plugin=plugin_info,
        model=dict(manifest.model),
        source={
            "export_dir": str(export_dir.resolve()),
            "manifest_sha256": sha256_file(export_dir / "manifest.json"),
            "model_onnx_sha256": manifest.files.get("model.onnx"),
            "padding": manifest.padding,
        },
        build={
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "seconds": None,
            "workspace_mb": settings.workspace_mb,
            "fp16_flag": settings.fp16,
            "int8_flag": settings.int8,
            "timing_cache": cache_note,
            "dynamic_conv": dynamic_conv,
        },
    )
    with progress.step(f"writing {output_dir}"):
        with atomic_directory(output_dir, force=settings.force) as tmp:
            with open(tmp / PLAN, "wb") as handle:
                handle.write(plan_view)
            for name in COPIED_FILES:
                if (export_dir / name).is_file():
                    shutil.copy2(export_dir / name, tmp / name)
            data = info.to_dict()
            data["build"]["seconds"] = round(time.perf_counter() - started, 2)
            write_json_atomic(tmp / ENGINE_JSON, data)
    _save_timing_cache(config, settings, progress)
    progress.info(f"engine written to {output_dir} ({plan_view.nbytes / 1e6:.1f} MB plan)")
    return output_dir


# ---- pieces -------------------------------------------------------------------------------

def parse_profiles(profiles, export_dir: str | Path) -> tuple[Profile, ...]:
    """``profiles`` with each ``--profile`` text parsed for the task of ``export_dir`` (its
    manifest says whether the profile has a choices part); Profiles pass through."""
    if not any(isinstance(p, str) for p in profiles):
        return tuple(profiles)
    multiple_choice = get_task(load_manifest(export_dir).task).multiple_choice
    return tuple(parse_profile(p, multiple_choice=multiple_choice) if isinstance(p, str) else p for p in profiles)


def _precision(settings: EngineSettings, manifest: Manifest) -> str:
    if settings.int8:
        return "int8+fp16" if settings.fp16 else "int8"
    if settings.fp16:
        return "fp16"
    return manifest.precision


def _network_flags(trt, backend, settings: EngineSettings, manifest: Manifest) -> int:
    """TensorRT for RTX networks are always strongly typed. With TensorRT an fp16 export without
    builder flags is built strongly typed so its own types decide; otherwise weakly typed, so the
    FP16/INT8 flags can choose kernels."""
    flags = 0
    strongly = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strongly is not None and not backend.strongly_typed and manifest.precision == "fp16" \
            and not (settings.fp16 or settings.int8):
        flags |= 1 << int(strongly)
    return flags


def make_logger(trt):
    """A TensorRT logger that keeps error messages (for BuildError) and prints nothing else."""

    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []
            self.warnings: list[str] = []

        def log(self, severity, msg):
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(str(msg))
            elif severity == trt.ILogger.Severity.WARNING:
                self.warnings.append(str(msg))

    return Logger()


def _parser_error(error) -> str:
    try:
        where = f" (node {error.node()} {error.node_name()!r}, op {error.node_operator()!r})"
    except Exception:  # older parsers lack some accessors
        where = ""
    return f"{error.desc()}{where}"


def _check_network(network, manifest: Manifest, task) -> None:
    names = [network.get_input(i).name for i in range(network.num_inputs)]
    expected = [spec.name for spec in manifest.inputs]
    if sorted(names) != sorted(expected):
        raise BuildError(
            f"the parsed network has inputs {names}, but the manifest lists {expected}; re-export the model"
        )
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if len(tensor.shape) != len(task.input_axes):
            raise BuildError(
                f"network input {tensor.name!r} has rank {len(tensor.shape)}, expected "
                f"{len(task.input_axes)} ({', '.join(task.input_axes)}); re-export the model"
            )


def _dynamic_conv_layers(trt, network, backend, version: str, manifest: Manifest, plugin_expected: bool) -> dict:
    """What the parsed network made of DynamicConv, for engine.json; refuses a silently lost plugin.

    ``implementation``: ``plugin`` (plugin layers), ``function-body`` (a custom-op export whose
    model-local function was imported: TensorRT for RTX, which cannot run plugins) or
    ``decomposed`` (a decomposed export). Raises BuildError when the plugin was expected and the
    parser imported the function body instead (TensorRT < 10.15 or no ENABLE_PLUGIN_OVERRIDE).
    """
    plugin_layers = sum("PLUGIN" in network.get_layer(i).type.name for i in range(network.num_layers))
    if not manifest.uses_custom_op:
        return {"implementation": "decomposed", "plugin_layers": plugin_layers}
    if plugin_expected and plugin_layers == 0:
        override = hasattr(trt.OnnxParserFlag, "ENABLE_PLUGIN_OVERRIDE")
        raise BuildError(
            f"{backend.label} {version} parsed the custom-op export without any {PLUGIN_NAME} plugin layer: "
            "its ONNX parser imported the model-local function instead of the loaded plugin "
            + ("(the plugin override parser flag is set, yet the nodes were not mapped to the plugin)"
               if override else "(this version lacks the ENABLE_PLUGIN_OVERRIDE parser flag of TensorRT >= 10.15)")
            + "; use TensorRT >= 10.15, or re-export with --dynamic-conv decomposed"
        )
    return {"implementation": "plugin" if plugin_layers else "function-body", "plugin_layers": plugin_layers}


def _load_plugin(trt, settings: EngineSettings, progress: Progress) -> dict:
    """Load the DynamicConv plugin library into TensorRT's registry; return its engine.json entry."""
    path = settings.resolved_plugin_library()
    if path is None:
        raise MissingDependencyError(
            "this export uses the DynamicConv custom op, and TensorRT needs its plugin library: "
            "build `convbert_trt_plugin` from custom_ops/ (CMake, with TensorRT headers) and pass "
            f"--plugin PATH or set {PLUGIN_ENV}; or re-export with --dynamic-conv decomposed"
        )
    if not path.is_file():
        raise InvalidInputError(f"plugin library {str(path)!r} does not exist; build it or fix the path")
    with progress.step(f"loading plugin library {path.name}"):
        registry = trt.get_plugin_registry()
        try:
            registry.load_library(str(path))
        except Exception as exc:  # TensorRT raises a plain RuntimeError/TypeError
            raise BuildError(f"TensorRT could not load the plugin library {str(path)!r}: {exc}") from None
        creator = registry.get_creator(PLUGIN_NAME, PLUGIN_VERSION, PLUGIN_NAMESPACE)
        if creator is None:
            raise BuildError(
                f"plugin library {str(path)!r} registers no {PLUGIN_NAME} version {PLUGIN_VERSION} "
                f"in namespace {PLUGIN_NAMESPACE!r}; rebuild it from custom_ops/"
            )
    return {"path": str(path.resolve()), "sha256": sha256_file(path), "name": PLUGIN_NAME,
            "version": PLUGIN_VERSION, "namespace": PLUGIN_NAMESPACE}


def _set_int8(trt, config, settings, manifest, export_dir, profiles, trt_profiles, progress):
    from .calibration import make_calibrator, read_calibration_batches
    from .cuda import load_cuda

    batches = read_calibration_batches(
        settings.calibration, export_dir, profiles[0],
        pad_token_id=int(manifest.model.get("pad_token_id") or 0),
        multiple_choice=get_task(manifest.task).multiple_choice,
    )
    progress.info(f"calibrating INT8 on {len(batches)} batch(es) of shape {profiles[0].shapes()[1]}")
    cache = settings.calibration_cache or settings.calibration.with_suffix(".calib")
    calibrator = make_calibrator(trt, batches, cache, load_cuda())
    config.set_flag(trt.BuilderFlag.INT8)
    config.int8_calibrator = calibrator
    config.set_calibration_profile(trt_profiles[0])
    return calibrator


def _load_timing_cache(trt, config, settings: EngineSettings, backend, progress: Progress) -> dict | None:
    if settings.timing_cache is None:
        return None
    path = settings.timing_cache
    data = path.read_bytes() if path.is_file() else b""
    with warnings.catch_warnings():  # TensorRT for RTX marks timing caches deprecated no-ops
        warnings.simplefilter("ignore", DeprecationWarning)
        cache = config.create_timing_cache(data)
        if not config.set_timing_cache(cache, False):
            progress.info(f"timing cache {path} does not match this {backend.label}; starting a new one")
            config.set_timing_cache(config.create_timing_cache(b""), True)
    if data:
        progress.info(f"loaded timing cache {path} ({len(data)} bytes)")
    if backend.name == "tensorrt-rtx":
        progress.info(
            "note: TensorRT for RTX ignores timing caches (it selects kernels when the engine "
            "first runs); the cache file is still kept"
        )
    return {"path": str(path.resolve()), "loaded_bytes": len(data),
            "loaded_sha256": hashlib.sha256(data).hexdigest() if data else None}


def _save_timing_cache(config, settings: EngineSettings, progress: Progress) -> None:
    if settings.timing_cache is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        cache = config.get_timing_cache()
        if cache is None:
            return
        data = bytes(memoryview(cache.serialize()))
    path = settings.timing_cache
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)
    progress.info(f"saved timing cache {path} ({len(data)} bytes)")


def _build_gpu():
    from .cuda import load_cuda

    return load_cuda().device()


def _rtx_targets(trt, config) -> list[str]:
    """The compute capabilities a TensorRT for RTX build targets; empty = every supported one."""
    count = getattr(config, "num_compute_capabilities", 0) or 0
    targets = []
    for i in range(count):
        value = config.get_compute_capability(i)
        name = getattr(value, "name", str(value))
        if name.startswith("SM") and name[2:].isdigit():
            targets.append(f"{name[2:-1]}.{name[-1]}")
    return targets
