"""CUDA device memory and streams for the TensorRT runner and INT8 calibration.

Neither TensorRT pip package brings a CUDA Python API, so two are supported, chosen when a
runner starts:

1. ``cuda-python`` (``pip install cuda-python``; module ``cuda.bindings.runtime``, or
   ``cuda.cudart`` in older releases) - preferred: small, no torch, the API NVIDIA's TensorRT
   samples use;
2. ``torch`` with CUDA - a fallback for environments that already have it (the serving code
   then imports torch, lazily, only for memory and streams).

Neither is imported by this module at import time. ``load_cuda()`` raises
MissingDependencyError when neither is installed or no GPU is visible.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from ..errors import ConvBertExportError, MissingDependencyError

INSTALL_HINT = "pip install cuda-python"


@dataclass(frozen=True)
class GpuInfo:
    """The GPU a runner or a build uses."""

    index: int
    name: str
    compute_capability: tuple[int, int]

    @property
    def compute_capability_str(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"


class CudaError(ConvBertExportError):
    """A CUDA call failed at run time."""


class DeviceBuffer:
    """A grow-only device allocation reused across calls (one per tensor per context)."""

    def __init__(self, api: "CudaApi"):
        self._api = api
        self.ptr = 0
        self.nbytes = 0
        self._handle = None

    def reserve(self, nbytes: int) -> int:
        """Make the buffer at least ``nbytes`` large (re-allocating only to grow); return its pointer."""
        nbytes = max(int(nbytes), 1)
        if nbytes > self.nbytes:
            self.free()
            # round up to 1 MiB steps above 1 MiB so slowly growing shapes re-allocate rarely
            size = nbytes if nbytes < (1 << 20) else ((nbytes + (1 << 20) - 1) >> 20) << 20
            self.ptr, self._handle = self._api.malloc(size)
            self.nbytes = size
        return self.ptr

    def free(self) -> None:
        if self.ptr:
            self._api.free(self.ptr, self._handle)
        self.ptr, self.nbytes, self._handle = 0, 0, None


class CudaApi:
    """The few CUDA runtime calls the runner needs; see the two implementations below."""

    name = "abstract"

    def device(self, index: int = 0) -> GpuInfo:  # pragma: no cover - interface
        raise NotImplementedError

    def malloc(self, nbytes: int) -> tuple[int, object]:  # pragma: no cover
        raise NotImplementedError

    def free(self, ptr: int, handle: object) -> None:  # pragma: no cover
        raise NotImplementedError

    def stream(self) -> tuple[int, object]:  # pragma: no cover
        raise NotImplementedError

    def destroy_stream(self, stream: object) -> None:  # pragma: no cover
        raise NotImplementedError

    def upload(self, ptr: int, array: np.ndarray, stream: object) -> None:  # pragma: no cover
        raise NotImplementedError

    def download(self, array: np.ndarray, ptr: int, stream: object) -> None:  # pragma: no cover
        raise NotImplementedError

    def synchronize(self, stream: object) -> None:  # pragma: no cover
        raise NotImplementedError

    def buffer(self) -> DeviceBuffer:
        return DeviceBuffer(self)


class CudaPythonApi(CudaApi):
    """``cuda-python``'s runtime bindings."""

    name = "cuda-python"

    def __init__(self, rt, device: int = 0):
        self.rt = rt
        count = self._call(rt.cudaGetDeviceCount(), "cudaGetDeviceCount", gpu=True)
        if count <= device:
            raise MissingDependencyError(
                f"CUDA device {device} is not available: {count} GPU(s) visible; running a "
                "TensorRT engine needs an NVIDIA GPU"
            )
        self._call(rt.cudaSetDevice(device), "cudaSetDevice")
        self.index = device

    def _call(self, result, what: str, gpu: bool = False):
        err, *rest = result if isinstance(result, tuple) else (result,)
        if err != self.rt.cudaError_t.cudaSuccess:
            text = self.rt.cudaGetErrorString(err)[1]
            text = text.decode() if isinstance(text, bytes) else str(text)
            if gpu:
                raise MissingDependencyError(
                    f"no usable CUDA GPU ({what} failed: {text}); running a TensorRT engine needs "
                    "an NVIDIA GPU and driver"
                )
            raise CudaError(f"{what} failed: {text}")
        return rest[0] if len(rest) == 1 else (tuple(rest) or None)

    def device(self, index: int | None = None) -> GpuInfo:
        index = self.index if index is None else index
        props = self._call(self.rt.cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return GpuInfo(index, name.rstrip("\x00"), (int(props.major), int(props.minor)))

    def malloc(self, nbytes):
        return int(self._call(self.rt.cudaMalloc(nbytes), "cudaMalloc")), None

    def free(self, ptr, handle):
        self._call(self.rt.cudaFree(ptr), "cudaFree")

    def stream(self):
        stream = self._call(self.rt.cudaStreamCreate(), "cudaStreamCreate")
        return int(stream), stream

    def destroy_stream(self, stream):
        self._call(self.rt.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def upload(self, ptr, array, stream):
        array = np.ascontiguousarray(array)
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call(self.rt.cudaMemcpyAsync(ptr, array.ctypes.data, array.nbytes, kind, stream), "cudaMemcpyAsync")

    def download(self, array, ptr, stream):
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call(self.rt.cudaMemcpyAsync(array.ctypes.data, ptr, array.nbytes, kind, stream), "cudaMemcpyAsync")

    def synchronize(self, stream):
        self._call(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")


class TorchCudaApi(CudaApi):
    """torch's CUDA allocator and streams (fallback when cuda-python is missing)."""

    name = "torch"

    def __init__(self, torch, device: int = 0):
        self.torch = torch
        if not torch.cuda.is_available() or torch.cuda.device_count() <= device:
            raise MissingDependencyError(
                f"no usable CUDA GPU: torch sees {torch.cuda.device_count()} device(s), need "
                f"device {device}; running a TensorRT engine needs an NVIDIA GPU and driver"
            )
        self.index = device
        torch.cuda.set_device(device)

    def device(self, index: int | None = None) -> GpuInfo:
        index = self.index if index is None else index
        return GpuInfo(index, self.torch.cuda.get_device_name(index),
                       tuple(self.torch.cuda.get_device_capability(index)))

    def malloc(self, nbytes):
        tensor = self.torch.empty(nbytes, dtype=self.torch.uint8, device=f"cuda:{self.index}")
        return int(tensor.data_ptr()), tensor

    def free(self, ptr, handle):
        del handle  # the tensor's last reference goes with the buffer

    def stream(self):
        stream = self.torch.cuda.Stream(device=self.index)
        return int(stream.cuda_stream), stream

    def destroy_stream(self, stream):
        pass

    def _view(self, ptr, nbytes):
        # a byte view of device memory we allocated: find it through the CUDA array interface
        class _Mem:
            __cuda_array_interface__ = {"shape": (nbytes,), "typestr": "|u1", "data": (ptr, False), "version": 3}
        return self.torch.as_tensor(_Mem(), device=f"cuda:{self.index}")

    def upload(self, ptr, array, stream):
        array = np.ascontiguousarray(array)
        host = self.torch.from_numpy(array.reshape(-1).view(np.uint8))
        with self.torch.cuda.stream(stream):
            self._view(ptr, array.nbytes).copy_(host, non_blocking=False)

    def download(self, array, ptr, stream):
        host = self.torch.from_numpy(array.reshape(-1).view(np.uint8))
        with self.torch.cuda.stream(stream):
            host.copy_(self._view(ptr, array.nbytes), non_blocking=False)

    def synchronize(self, stream):
        stream.synchronize()


def load_cuda(device: int = 0) -> CudaApi:
    """cuda-python if installed, else torch with CUDA; MissingDependencyError without either or a GPU."""
    for module in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            rt = importlib.import_module(module)
        except ImportError:
            continue
        return CudaPythonApi(rt, device)
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        torch = None
    if torch is not None and getattr(torch.version, "cuda", None):
        return TorchCudaApi(torch, device)
    raise MissingDependencyError(
        "TensorRT engines (running them, and builds with full TensorRT or INT8 calibration) need "
        "a CUDA Python API: install it with "
        f"`{INSTALL_HINT}` (or a CUDA build of torch)"
    )
