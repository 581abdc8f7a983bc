"""TensorRT runner: serves an engine directory built by ``convbert-export build-engine``.

``TrtRunner(engine_dir)`` implements the Runner protocol (``runtime/base.py``), so pipelines and
the micro-batcher work on it unchanged. It works with both TensorRT products: the backend named
in ``engine.json`` (``tensorrt`` or ``tensorrt-rtx``) is imported when the runner starts.

Before a plan is deserialized (a serialized engine is executable code), ``start()`` checks, in
this order, and refuses with a message saying to rebuild:

1. ``engine.json`` exists and is well-formed;
2. ``model.plan`` has the size and sha256 recorded there (a modified or foreign plan never
   reaches TensorRT);
3. the installed backend is the one and the exact version that built it;
4. the GPU matches the build target (compute capability; TensorRT for RTX: Turing or newer);
5. for custom-op engines built with TensorRT, the plugin library has the recorded sha256.

Execution:

* one execution context per concurrent caller, each with its own CUDA stream and its own device
  buffers, which are reused across calls and only re-allocated to grow;
* an optimization profile is bound to one context at a time (TensorRT's rule for dynamic
  shapes), so N callers run concurrently when the engine has N profiles covering their shapes;
  build repeated profiles (``--profile`` several times) for more parallelism;
* a request whose shape lies in no profile is split along batch when only the batch is too
  large (or padded with copies of its last row when it is below a profile's minimum batch;
  rows are independent, so both are exact), and rejected with a message naming every
  profile's ranges when a sequence or num_choices is outside them.

CUDA memory and streams come from ``cuda-python`` when installed, else from torch (see
``convbert_export.engine.cuda``). Nothing here imports TensorRT, CUDA or torch at import time.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.backends import backend_version, get_backend, import_backend
from ..engine.metadata import (
    EngineInfo,
    check_backend,
    check_gpu,
    read_engine_info,
    read_verified_plan,
)
from ..engine.profiles import Chunk, plan_chunks
from ..errors import BuildError, InvalidInputError
from ..fileio import sha256_file, write_bytes_atomic
from .base import ModelLimits, Runner, TensorMeta

__all__ = ["TrtRunner"]

PLUGIN_ENV = "CONVBERT_TRT_PLUGIN"


@dataclass
class _Slot:
    """One execution context with its stream and device buffers (used by one caller at a time)."""

    context: object
    stream_handle: int
    stream: object
    buffers: dict = field(default_factory=dict)
    profile: int | None = None


class TrtRunner(Runner):
    """Runs an engine directory (``model.plan`` + ``engine.json``) with TensorRT or TensorRT for RTX.

    Args:
        engine_dir: the directory ``build-engine`` wrote.
        device: CUDA device index.
        max_contexts: at most this many execution contexts (concurrent callers); default: one
            per optimization profile.
        plugin_library: the DynamicConv plugin library for custom-op engines built with
            TensorRT; default ``$CONVBERT_TRT_PLUGIN``, else the path recorded at build time.
        runtime_cache: TensorRT for RTX only: a file for the kernels it compiles at run time,
            loaded on start and saved on close, so later starts skip the compilation.
        limits: input value ranges; default: engine.json's ``model`` section.
        verify: check the directory's manifest, config and tokenizer files against the
            manifest (and the manifest against engine.json) first; the plan's sha256 is
            always checked before it is deserialized.
    """

    def __init__(self, engine_dir: str | os.PathLike, *, device: int = 0, max_contexts: int | None = None,
                 plugin_library: str | os.PathLike | None = None,
                 runtime_cache: str | os.PathLike | None = None, limits: ModelLimits | None = None,
                 verify: bool = True):
        self.engine_dir = Path(engine_dir)
        self.info: EngineInfo = read_engine_info(self.engine_dir)
        if verify:
            from .factory import verify_dir

            verify_dir(self.engine_dir)
        super().__init__(limits=limits or ModelLimits.from_mapping(self.info.model), name="TrtRunner")
        self.device = device
        self.max_contexts = max_contexts if max_contexts is not None else len(self.info.profiles)
        if self.max_contexts < 1:
            raise InvalidInputError(f"max_contexts must be >= 1, got {self.max_contexts}")
        self.plugin_library = Path(plugin_library) if plugin_library else None
        self.runtime_cache = Path(runtime_cache) if runtime_cache else None
        if self.runtime_cache is not None and self.info.backend != "tensorrt-rtx":
            raise InvalidInputError(
                f"runtime_cache is a TensorRT for RTX feature; this engine was built with {self.info.backend}"
            )
        self.profiles = self.info.profiles
        self.input_metadata = {
            spec["name"]: TensorMeta(spec["name"], np.dtype(spec["dtype"]), tuple(spec["axes"]))
            for spec in self.info.inputs
        }
        self.output_names = tuple(spec["name"] for spec in self.info.outputs)
        self.gpu = None
        self.cuda = None
        self._trt = None
        self._runtime = None
        self._engine = None
        self._runtime_config = None
        self._runtime_cache_obj = None
        self._slots: list[_Slot] = []
        self._free: list[_Slot] = []
        self._busy_profiles: set[int] = set()
        self._cond = threading.Condition()

    @classmethod
    def from_dir(cls, path, *, provider: str | None = None, settings=None, strict: bool = False,
                 custom_ops: str | None = None, **options) -> "TrtRunner":
        """The runner of an engine directory (see ``runtime/factory.py``); refuses an ONNX Runtime
        provider or settings, and an engine directory whose engine.json and manifest disagree."""
        from .base import read_manifest

        if provider not in (None, "tensorrt"):
            raise InvalidInputError(
                f"{str(path)!r} is a TensorRT engine directory (it has engine.json), which runs "
                f"only on TensorRT; got provider={provider!r}. Leave provider out (or pass "
                "'tensorrt'), or run the export directory it was built from with ONNX Runtime"
            )
        if settings is not None:
            raise InvalidInputError(
                f"settings ({type(settings).__name__}) configure ONNX Runtime, but {str(path)!r} "
                "is a TensorRT engine directory; leave settings out, or pass runner=TrtRunner(...) "
                "for TensorRT options"
            )
        task = read_manifest(path).get("task")
        runner = cls(path, **options)
        if runner.info.task != task:
            raise InvalidInputError(
                f"{str(path)!r}: engine.json says task {runner.info.task!r} but manifest.json says "
                f"{task!r}; the engine directory is inconsistent, rebuild it with `convbert-export build-engine`"
            )
        return runner

    def describe(self) -> dict:
        info = self.info
        gpu = f" on {self.gpu.name}" if self.gpu is not None else ""
        return {"name": self.name, "backend": f"{info.backend} {info.backend_version}{gpu}",
                "path": str(self.engine_dir), "task": info.task, "precision": info.precision}

    # ---- lifecycle ---------------------------------------------------------------------
    def start_impl(self) -> None:
        info = self.info
        plan = read_verified_plan(self.engine_dir, info)  # hash first: nothing foreign goes further
        trt = import_backend(info.backend, alternative=False)  # a plan runs only on the backend that built it
        check_backend(info, info.backend, backend_version(trt))
        from ..engine.cuda import load_cuda

        cuda = load_cuda(self.device)
        gpu = cuda.device()
        check_gpu(info, gpu.name, gpu.compute_capability)
        if info.plugin:
            self._load_plugin(trt, info.plugin)
        from ..engine.builder import make_logger

        logger = make_logger(trt)
        runtime = trt.Runtime(logger)
        engine = runtime.deserialize_cuda_engine(plan)
        if engine is None:
            raise BuildError(
                f"{get_backend(info.backend).label} could not deserialize {self.engine_dir / 'model.plan'}: "
                f"{'; '.join(logger.errors) or 'no details'}; rebuild the engine"
            )
        self._check_io(engine, trt)
        if self.runtime_cache is not None:
            self._runtime_config = engine.create_runtime_config()
            self._runtime_cache_obj = self._runtime_config.create_runtime_cache()
            if self.runtime_cache.is_file():
                self._runtime_cache_obj.deserialize(self.runtime_cache.read_bytes())
            self._runtime_config.set_runtime_cache(self._runtime_cache_obj)
        self._trt, self._runtime, self._engine, self.cuda, self.gpu = trt, runtime, engine, cuda, gpu
        self._logger = logger

    def close_impl(self) -> None:
        with self._cond:
            slots, self._slots, self._free = self._slots, [], []
            self._busy_profiles.clear()
        for slot in slots:
            for buffer in slot.buffers.values():
                buffer.free()
            self.cuda.destroy_stream(slot.stream)
            slot.context = None
        if self._runtime_cache_obj is not None and self.runtime_cache is not None:
            data = bytes(memoryview(self._runtime_cache_obj.serialize()))
            write_bytes_atomic(self.runtime_cache, data)
        self._runtime_cache_obj = self._runtime_config = None
        self._engine = self._runtime = None

    def _load_plugin(self, trt, plugin: dict) -> None:
        env = os.environ.get(PLUGIN_ENV)
        path = self.plugin_library or (Path(env) if env else Path(plugin["path"]))
        if not path.is_file():
            raise InvalidInputError(
                f"this engine uses the DynamicConv plugin, expected the library at {str(path)!r}; "
                f"pass plugin_library= or set {PLUGIN_ENV}"
            )
        digest = sha256_file(path)
        if digest != plugin.get("sha256"):
            raise InvalidInputError(
                f"plugin library {str(path)!r} has sha256 {digest[:16]}..., but the engine was built "
                f"with {str(plugin.get('sha256'))[:16]}...; rebuild the engine with this library"
            )
        trt.get_plugin_registry().load_library(str(path))

    def _check_io(self, engine, trt) -> None:
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if sorted(inputs) != sorted(self.input_metadata) or sorted(outputs) != sorted(self.output_names):
            raise InvalidInputError(
                f"the plan's tensors (inputs {inputs}, outputs {outputs}) differ from engine.json "
                f"(inputs {list(self.input_metadata)}, outputs {list(self.output_names)}); rebuild the engine"
            )
        if engine.num_optimization_profiles != len(self.profiles):
            raise InvalidInputError(
                f"the plan has {engine.num_optimization_profiles} optimization profiles, engine.json "
                f"lists {len(self.profiles)}; rebuild the engine"
            )

    # ---- contexts ----------------------------------------------------------------------
    def _acquire(self, profile: int) -> tuple[_Slot, int]:
        """A free context and a free profile equal to ``profile`` (waits while all are busy)."""
        equivalent = [i for i, p in enumerate(self.profiles) if p == self.profiles[profile]]
        with self._cond:
            while True:
                free_profiles = [i for i in equivalent if i not in self._busy_profiles]
                slot_ready = self._free or len(self._slots) < self.max_contexts
                if free_profiles and slot_ready:
                    break
                self._cond.wait()
            chosen = free_profiles[0]
            # prefer a context already set to that profile (no profile switch)
            match = [s for s in self._free if s.profile == chosen]
            if match:
                slot = match[0]
                self._free.remove(slot)
            elif self._free:
                slot = self._free.pop()
            else:
                slot = self._new_slot()
                self._slots.append(slot)
            self._busy_profiles.add(chosen)
        return slot, chosen

    def _release(self, slot: _Slot, profile: int) -> None:
        with self._cond:
            self._busy_profiles.discard(profile)
            self._free.append(slot)
            self._cond.notify_all()

    def _new_slot(self) -> _Slot:
        if self._runtime_config is not None:
            context = self._engine.create_execution_context(self._runtime_config)
        else:
            context = self._engine.create_execution_context()
        if context is None:
            raise BuildError(f"TensorRT could not create an execution context: {'; '.join(self._logger.errors)}")
        handle, stream = self.cuda.stream()
        return _Slot(context=context, stream_handle=handle, stream=stream)

    # ---- inference ---------------------------------------------------------------------
    def run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        shape = next(iter(feeds.values())).shape
        chunks = plan_chunks(shape, self.profiles)
        parts = [self._run_chunk(feeds, chunk) for chunk in chunks]
        if len(parts) == 1:
            return parts[0]
        return {name: np.concatenate([p[name] for p in parts], axis=0) for name in self.output_names}

    def _run_chunk(self, feeds: dict[str, np.ndarray], chunk: Chunk) -> dict[str, np.ndarray]:
        trt, engine, cuda = self._trt, self._engine, self.cuda
        rows = chunk.stop - chunk.start
        inputs = {}
        for name, value in feeds.items():
            part = value[chunk.start:chunk.stop]
            if chunk.batch > rows:  # below the profile's minimum batch: repeat the last row
                part = np.concatenate([part, np.repeat(part[-1:], chunk.batch - rows, axis=0)])
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            inputs[name] = np.ascontiguousarray(part, dtype=dtype)
        slot, profile = self._acquire(chunk.profile)
        try:
            context = slot.context
            if slot.profile != profile:
                if not context.set_optimization_profile_async(profile, slot.stream_handle):
                    raise BuildError(f"TensorRT refused optimization profile {profile}")
                slot.profile = profile
            for name, array in inputs.items():
                if not context.set_input_shape(name, array.shape):
                    raise InvalidInputError(
                        f"TensorRT rejected input {name!r} of shape {array.shape} for profile "
                        f"{profile} ({self.profiles[profile]})"
                    )
                ptr = self._buffer(slot, name).reserve(array.nbytes)
                cuda.upload(ptr, array, slot.stream)
                context.set_tensor_address(name, ptr)
            outputs = {}
            for name in self.output_names:
                out_shape = tuple(context.get_tensor_shape(name))
                if any(d < 0 for d in out_shape):
                    raise BuildError(f"TensorRT could not infer the shape of output {name!r}: {out_shape}")
                host = np.empty(out_shape, dtype=np.dtype(trt.nptype(engine.get_tensor_dtype(name))))
                ptr = self._buffer(slot, name).reserve(host.nbytes)
                context.set_tensor_address(name, ptr)
                outputs[name] = (host, ptr)
            if not context.execute_async_v3(slot.stream_handle):
                raise BuildError(f"TensorRT execution failed: {'; '.join(self._logger.errors[-3:]) or 'no details'}")
            for host, ptr in outputs.values():
                cuda.download(host, ptr, slot.stream)
            cuda.synchronize(slot.stream)
        finally:
            self._release(slot, profile)
        return {name: host[:rows] if chunk.batch > rows else host for name, (host, _) in outputs.items()}

    def _buffer(self, slot: _Slot, name: str):
        buffer = slot.buffers.get(name)
        if buffer is None:
            buffer = slot.buffers[name] = self.cuda.buffer()
        return buffer
