"""The DynamicConv custom op: names shared with the exporter, and the ONNX Runtime library loader.

The op (spec in ``custom_ops/README.md``): domain ``com.convbert_export``, type ``DynamicConv``,
version 1; inputs ``value`` (B, S, H*D) and ``kernel_logits`` (B, S, H*K) before the softmax;
attributes ``kernel_size``, ``num_heads``, ``head_size`` and ``plugin_namespace``.

:func:`library_path` returns the ONNX Runtime custom-op library, building it with CMake on first
use into ``${CONVBERT_EXPORT_CACHE:-~/.cache/convbert-export}/ops/<key>``, where the key hashes
the C++ sources, the onnxruntime version and the ONNX Runtime headers' API version. When
something the build needs is missing (cmake, a C++ compiler, the ONNX Runtime headers, which
:mod:`~convbert_export.ort_headers` fetches on Debian-family systems) it raises
:class:`~convbert_export.errors.BuildError` naming what is missing and the command to build by
hand. ``CONVBERT_EXPORT_OPS_LIBRARY`` points at a library built elsewhere and skips all this.

This module imports neither torch nor onnx; onnxruntime is imported only when a function needs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import ort_headers
from .errors import BuildError
from .progress import QUIET, Progress

DOMAIN = "com.convbert_export"
OP_TYPE = "DynamicConv"
OP_VERSION = 1
#: The library's CPU float32 ops in the same domain and version (spec in ``custom_ops/README.md``):
#: DepthwiseConv(x (B,S,C), weight (C,K), [mask (B,S) or (B,S,1)]) and
#: AddLayerNorm(x, [skip], gamma, [beta], [bias]; epsilon) -> y, [x + skip + bias].
DEPTHWISE_CONV_OP_TYPE = "DepthwiseConv"
ADD_LAYER_NORM_OP_TYPE = "AddLayerNorm"
BIAS_GELU_OP_TYPE = "BiasGelu"
PLUGIN_NAMESPACE = "convbert_export"
PLUGIN_VERSION = "1"

#: The newest ONNX Runtime C API version the library requests (onnxruntime 1.21).
ORT_API_VERSION = 21
#: Environment variables read here.
LIBRARY_ENV = "CONVBERT_EXPORT_OPS_LIBRARY"
CACHE_ENV = "CONVBERT_EXPORT_CACHE"
ORT_INCLUDE_ENV = ort_headers.INCLUDE_ENV

_TARGET = "convbert_ort_ops"
_BUILD_TIMEOUT_S = 900
_SOURCE_SUFFIXES = {".h", ".hpp", ".cc", ".cpp", ".cu", ".cuh", ".cmake"}


def library_filename() -> str:
    """The file name CMake gives the ``convbert_ort_ops`` shared library on this platform."""
    if sys.platform == "win32":
        return f"{_TARGET}.dll"
    if sys.platform == "darwin":
        return f"lib{_TARGET}.dylib"
    return f"lib{_TARGET}.so"


def source_dir() -> Path:
    """The ``custom_ops/`` CMake project: package data in a wheel, the repository's copy in a checkout."""
    here = Path(__file__).resolve().parent
    candidates = [here / "custom_ops_src", here.parent / "custom_ops"]
    for candidate in candidates:
        if (candidate / "CMakeLists.txt").is_file():
            return candidate.resolve()
    raise BuildError(
        "the DynamicConv C++ sources were not found: expected CMakeLists.txt in "
        + " or ".join(str(c) for c in candidates)
        + "; reinstall convbert-export (the wheel ships them as convbert_export/custom_ops_src)"
    )


def cache_root() -> Path:
    """``$CONVBERT_EXPORT_CACHE``, else ``$XDG_CACHE_HOME/convbert-export``, else ``~/.cache/convbert-export``."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache") / "convbert-export"


def sources_digest(source: Path) -> str:
    """sha256 over the relative paths and contents of the C++/CUDA sources and CMakeLists.txt."""
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in source.rglob("*")
        if p.is_file()
        and (p.suffix in _SOURCE_SUFFIXES or p.name == "CMakeLists.txt")
        and not any(part.startswith("build") for part in p.relative_to(source).parts[:-1])
    )
    for path in files:
        digest.update(path.relative_to(source).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def onnxruntime_version() -> str:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - onnxruntime is a dependency
        from .errors import MissingDependencyError

        raise MissingDependencyError(
            "onnxruntime is not installed; install it with `pip install onnxruntime`"
        ) from exc
    return onnxruntime.__version__


def ort_headers_dir() -> Path:
    """Where fetched ONNX Runtime headers are cached: ``<cache_root()>/ort-headers``."""
    return cache_root() / "ort-headers"


@dataclass(frozen=True)
class _Headers:
    include_dir: Path | None
    problem: str | None  # why no usable include_dir was found


def fetch_ort_headers(progress: Progress = QUIET) -> Path:
    """The ONNX Runtime headers' directory, fetched into the cache on first use (see ``ort_headers``).

    The step ``convbert-export build-ops`` and the tests run before building. Raises
    :class:`~convbert_export.ort_headers.HeadersError` (a BuildError) with one line saying why
    and how to get them.
    """
    return ort_headers.ensure_headers(ort_headers_dir(), fetch=True, progress=progress)


def find_ort_headers(fetch: bool = True, progress: Progress = QUIET) -> _Headers:
    """Locate (with ``fetch``, obtain) the ONNX Runtime C/C++ headers; a problem instead of raising."""
    try:
        return _Headers(ort_headers.ensure_headers(ort_headers_dir(), fetch=fetch, progress=progress), None)
    except ort_headers.HeadersError as exc:
        return _Headers(None, str(exc))


def _find_cxx_compiler() -> str | None:
    configured = os.environ.get("CXX")
    if configured:
        return shutil.which(shlex.split(configured)[0])
    for name in ("c++", "g++", "clang++"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _configure_command(source: Path, build: Path, include_dir: Path | str) -> list[str]:
    command = [
        "cmake", "-S", str(source), "-B", str(build),
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DORT_INCLUDE_DIR={include_dir}",
        "-DCONVBERT_WITH_CUDA=OFF",
        "-DCONVBERT_WITH_TENSORRT=OFF",
    ]  # fmt: skip
    if shutil.which("ninja"):
        command[1:1] = ["-G", "Ninja"]
    return command


def _build_command(build: Path) -> list[str]:
    return ["cmake", "--build", str(build), "--target", _TARGET, "--parallel", "2"]


def manual_build_instructions(include_dir: Path | None = None) -> str:
    """The commands that build the library by hand and make this package use it."""
    build = Path(tempfile.gettempdir()) / "convbert-ort-ops-build"
    include = str(include_dir) if include_dir else "<directory with onnxruntime_cxx_api.h>"
    try:
        source: Path | str = source_dir()
    except BuildError:
        source = "<convbert-export checkout>/custom_ops"
    lines = [
        shlex.join(_configure_command(Path(source), build, include)),
        shlex.join(_build_command(build)),
        f"export {LIBRARY_ENV}={build / library_filename()}",
    ]
    return "\n".join(f"  {line}" for line in lines)


@dataclass(frozen=True)
class LibraryInfo:
    """Where the custom-op library is and what it was built for."""

    path: Path
    key: str  # cache key: hash of sources, onnxruntime version, headers API version ("" if from the env)
    onnxruntime: str
    header_api_version: int | None
    built: bool  # True when this call compiled it
    include_dir: Path | None = None  # the ONNX Runtime headers used (None with CONVBERT_EXPORT_OPS_LIBRARY)

    def as_dict(self) -> dict:
        return {
            "library": str(self.path),
            "key": self.key,
            "onnxruntime": self.onnxruntime,
            "header_api_version": self.header_api_version,
            "built": self.built,
            "include_dir": str(self.include_dir) if self.include_dir else None,
            "domain": DOMAIN,
            "op_type": OP_TYPE,
        }


def ensure_library(build: bool = True, force: bool = False, progress: Progress | None = None) -> LibraryInfo:
    """Return the custom-op library, building it (or rebuilding it with ``force``) when needed.

    Raises :class:`BuildError` when the library is missing and cannot be built (the message names
    what is missing and prints the manual build command), or when the build fails.
    """
    progress = progress or QUIET
    ort_version = onnxruntime_version()
    override = os.environ.get(LIBRARY_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise BuildError(
                f"{LIBRARY_ENV} points at {override}, which is not a file; expected the built "
                f"{library_filename()} (unset {LIBRARY_ENV} to build it automatically)"
            )
        return LibraryInfo(path.resolve(), "", ort_version, None, built=False)

    source = source_dir()
    headers = find_ort_headers(fetch=build, progress=progress)
    missing: list[str] = []
    if headers.problem:
        missing.append(headers.problem)
    api_version = ort_headers.header_api_version(headers.include_dir) if headers.include_dir else None
    if headers.include_dir and api_version is None:
        missing.append(f"ONNX Runtime headers: no ORT_API_VERSION in {headers.include_dir / 'onnxruntime_c_api.h'}")
    if not missing:
        key = hashlib.sha256(
            f"{sources_digest(source)}|onnxruntime={ort_version}|ort_api={api_version}".encode()
        ).hexdigest()[:20]
        target_dir = cache_root() / "ops" / key
        library = target_dir / library_filename()
        if library.is_file() and not force:
            return LibraryInfo(library, key, ort_version, api_version, built=False, include_dir=headers.include_dir)
        if not build:
            raise BuildError(
                f"the DynamicConv custom-op library is not built for onnxruntime {ort_version} "
                f"(expected {library}); run `convbert-export build-ops`"
            )
    if shutil.which("cmake") is None:
        missing.append("cmake: not found on PATH (install cmake >= 3.18, e.g. `pip install cmake`)")
    if _find_cxx_compiler() is None:
        missing.append("C++ compiler: none of $CXX, c++, g++, clang++ found on PATH (install g++ or clang)")
    if missing or headers.include_dir is None:
        raise BuildError(
            "cannot build the DynamicConv custom-op library for ONNX Runtime; missing:\n"
            + "\n".join(f"  - {item}" for item in missing)
            + "\nfix the above, or build it by hand:\n"
            + manual_build_instructions(headers.include_dir)
        )
    _build_into(source, headers.include_dir, target_dir, progress,
                {"key": key, "onnxruntime": ort_version, "header_api_version": api_version})  # fmt: skip
    return LibraryInfo(library, key, ort_version, api_version, built=True, include_dir=headers.include_dir)


def _run(command: list[str], log: list[str]) -> None:
    log.append("$ " + shlex.join(command))
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=_BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BuildError(
            f"building the DynamicConv custom-op library: `{shlex.join(command)}` took over "
            f"{_BUILD_TIMEOUT_S} s and was stopped"
        ) from None
    log.append(result.stdout + result.stderr)
    if result.returncode != 0:
        tail = "\n".join("\n".join(log).strip().splitlines()[-40:])
        raise BuildError(
            f"building the DynamicConv custom-op library failed: `{shlex.join(command)}` exited with "
            f"status {result.returncode}; last output:\n{tail}"
        )


def _build_into(source: Path, include_dir: Path, target_dir: Path, progress: Progress, info: dict) -> None:
    """Configure and build in a temporary directory, then move the result into ``target_dir`` atomically."""
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target_dir.parent, prefix=f".{target_dir.name}.", suffix=".partial"))
    try:
        with tempfile.TemporaryDirectory(prefix="convbert-ort-ops-") as build:
            log: list[str] = []
            configure = _configure_command(source, Path(build), include_dir)
            with progress.step(f"building the DynamicConv library for ONNX Runtime ({source})"):
                start = time.perf_counter()
                _run(configure, log)
                _run(_build_command(Path(build)), log)
                built = Path(build) / library_filename()
                if not built.is_file():
                    raise BuildError(f"the build finished but produced no {built}; see the CMake output")
                shutil.copy2(built, staging / library_filename())
        info = {**info, "source": str(source), "include_dir": str(include_dir),
                "configure": shlex.join(configure), "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
        (staging / "build.json").write_text(json.dumps(info, indent=2) + "\n")
        if target_dir.exists():  # --force, or a concurrent build finished first
            old = target_dir.with_name(f".{target_dir.name}.old-{os.getpid()}")
            try:
                os.replace(target_dir, old)
            except OSError:
                old = None
            os.replace(staging, target_dir)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.replace(staging, target_dir)
            except OSError:
                if not (target_dir / library_filename()).is_file():  # lost a race to an equal build: fine
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def library_path(build: bool = True, progress: Progress | None = None) -> Path:
    """Path of the ONNX Runtime custom-op library, built on first use (see :func:`ensure_library`)."""
    return ensure_library(build=build, progress=progress).path


def register(session_options, build: bool = True, progress: Progress | None = None) -> Path:
    """Register the DynamicConv library on an ``onnxruntime.SessionOptions``; returns its path."""
    path = library_path(build=build, progress=progress)
    session_options.register_custom_ops_library(str(path))
    return path
