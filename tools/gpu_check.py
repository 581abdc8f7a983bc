"""Check the DynamicConv CUDA kernel on a GPU: correctness against the reference, and speed.

Compiles custom_ops/cuda/dynamic_conv.cu with torch.utils.cpp_extension.load_inline (a small
binding calls ``convbert::launch_dynamic_conv`` on torch's current stream, through the c10 stream
header only: no cuBLAS/cuSPARSE/cuSOLVER headers needed), compares it with
``reference_model.dynamic_conv.dynamic_conv_reference`` over kernel sizes 3, 9, 33, 65 (33 and 65
take the softmax's multi-pass lane loop) and 255 at the shared-memory edge (48 heads), sequence
lengths 1, 2, K-1, K, 128, 513, batch 1 and 3 and several head shapes, in float32 (1e-5 absolute)
and float16 (2e-3 + 2e-3 * |ref|), checks that oversized kernels are refused (K 257 > 255;
64 heads x K 255 over 48 KB of shared memory), and times it against the reference's decomposed
torch ops on the same GPU. Prints one table.

Needs a CUDA build of torch, nvcc (the CUDA toolkit; ``CUDA_HOME``) and ninja (``pip install ninja``).

    python tools/gpu_check.py [--iters 200]

Exit status: 0 all checks pass, 1 a mismatch or a missing refusal, 2 something needed is missing
(torch, ninja, nvcc, a CUDA GPU), named in one line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CUDA_DIR = REPO / "custom_ops" / "cuda"

KERNEL_SIZES = (3, 9, 33, 65)  # 33 and 65: more taps than a warp's lanes (the multi-pass loop)
BATCHES = (1, 3)
HEAD_SHAPES = ((1, 8), (2, 3), (6, 64))  # (num_heads, head_size); 6 x 64 is conv-bert-base's
EDGE_CASE = (255, 48, 8)  # (K, heads, head_size): 48 x 255 = 12240 weights, just within 48 KB
#: (K, heads) the launcher must refuse: K over 255; heads x K over 12288 (48 KB of float weights)
REFUSED = ((257, 1), (255, 64))
TIMING_SHAPE = (8, 128)  # (batch, sequence) used for the timing columns
TOLERANCES = {"float32": (0.0, 1e-5), "float16": (2e-3, 2e-3)}  # (rtol, atol) vs the float32 reference

_BINDING = r"""
#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>

torch::Tensor dynamic_conv(torch::Tensor value, torch::Tensor kernel_logits, int64_t kernel_size, int64_t num_heads) {
  TORCH_CHECK(value.is_cuda() && kernel_logits.is_cuda(), "dynamic_conv: tensors must be on the GPU");
  TORCH_CHECK(value.dim() == 3 && kernel_logits.dim() == 3, "dynamic_conv: expected 3-D tensors");
  TORCH_CHECK(value.scalar_type() == kernel_logits.scalar_type(), "dynamic_conv: dtypes differ");
  TORCH_CHECK(value.size(2) % num_heads == 0, "dynamic_conv: channels not divisible by num_heads");
  TORCH_CHECK(kernel_logits.size(2) == num_heads * kernel_size, "dynamic_conv: kernel_logits has the wrong width");
  value = value.contiguous();
  kernel_logits = kernel_logits.contiguous();
  auto out = torch::empty_like(value);
  convbert::DynamicConvDType dtype;
  if (value.scalar_type() == torch::kFloat) dtype = convbert::DynamicConvDType::kFloat32;
  else if (value.scalar_type() == torch::kHalf) dtype = convbert::DynamicConvDType::kFloat16;
  else TORCH_CHECK(false, "dynamic_conv: float32 or float16 only");
  cudaError_t status = convbert::launch_dynamic_conv(
      dtype, value.data_ptr(), kernel_logits.data_ptr(), out.data_ptr(), value.size(0), value.size(1),
      static_cast<int32_t>(num_heads), static_cast<int32_t>(value.size(2) / num_heads),
      static_cast<int32_t>(kernel_size), c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(status == cudaSuccess, "launch_dynamic_conv failed: ", cudaGetErrorString(status));
  return out;
}
"""
_DECLARATION = "torch::Tensor dynamic_conv(torch::Tensor value, torch::Tensor kernel_logits, int64_t kernel_size, int64_t num_heads);"


def _compile(verbose: bool):
    from torch.utils.cpp_extension import load_inline

    return load_inline(
        name="convbert_dynamic_conv_check",
        cpp_sources=[_DECLARATION],
        cuda_sources=[(CUDA_DIR / "dynamic_conv.cu").read_text(), _BINDING],
        functions=["dynamic_conv"],
        extra_include_paths=[str(CUDA_DIR)],
        extra_cuda_cflags=["-O3"],  # torch adds the C++ standard its headers need (C++20 in 2.13)
        verbose=verbose,
    )


def _inputs(torch, batch, seq, heads, head_size, kernel_size, dtype, seed):
    generator = torch.Generator(device="cuda").manual_seed(seed)
    value = torch.rand(batch, seq, heads * head_size, device="cuda", generator=generator) * 1.9 + 0.1
    sign = torch.randint(0, 2, value.shape, device="cuda", generator=generator) * 2 - 1
    logits = torch.randn(batch, seq, heads * kernel_size, device="cuda", generator=generator) * 3.0
    return (value * sign).to(dtype), logits.to(dtype)


def _time_us(torch, fn, iters: int) -> float:
    """Median per-call time in microseconds, measured with CUDA events after a warm-up."""
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end) * 1000.0 / iters)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=200, help="timed calls per sample (default 200)")
    parser.add_argument("--verbose", action="store_true", help="show the compiler output")
    args = parser.parse_args(argv)

    try:
        import torch
    except ImportError:
        print("gpu_check: torch is not installed; install torch with CUDA support", file=sys.stderr)
        return 2
    missing = missing_prerequisite(torch)
    if missing:
        print(f"gpu_check: {missing}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    from reference_model.dynamic_conv import dynamic_conv_reference

    print(f"compiling {CUDA_DIR / 'dynamic_conv.cu'} ...", file=sys.stderr, flush=True)
    module = _compile(args.verbose)
    device = torch.cuda.get_device_name()

    cases = [(k, h, d) for k in KERNEL_SIZES for h, d in HEAD_SHAPES] + [EDGE_CASE]
    rows = []
    failures = 0
    for dtype_name, dtype in (("float32", torch.float32), ("float16", torch.float16)):
        rtol, atol = TOLERANCES[dtype_name]
        for kernel_size, heads, head_size in cases:
            worst, shapes, ok = 0.0, 0, True
            for batch in BATCHES:
                for seq in sorted({1, 2, kernel_size - 1, kernel_size, 128, 513}):
                    value, logits = _inputs(torch, batch, seq, heads, head_size, kernel_size, dtype, seed=seq)
                    out = module.dynamic_conv(value, logits, kernel_size, heads).float()
                    expected = dynamic_conv_reference(value.float(), logits.float(), kernel_size, heads)
                    error = (out - expected).abs()
                    worst = max(worst, error.max().item())
                    ok &= bool((error <= atol + rtol * expected.abs()).all().item())
                    shapes += 1
            failures += not ok
            batch, seq = TIMING_SHAPE
            value, logits = _inputs(torch, batch, seq, heads, head_size, kernel_size, dtype, seed=0)
            ours = _time_us(torch, lambda: module.dynamic_conv(value, logits, kernel_size, heads), args.iters)
            theirs = _time_us(torch, lambda: dynamic_conv_reference(value, logits, kernel_size, heads), args.iters)
            tolerance = f"{atol:.0e}" + (f"+{rtol:.0e}*|ref|" if rtol else " abs")
            rows.append((dtype_name, kernel_size, f"{heads}x{head_size}", shapes, f"{worst:.2e}", tolerance,
                         "yes" if ok else "NO", f"{ours:.1f}", f"{theirs:.1f}", f"{theirs / ours:.1f}x"))  # fmt: skip

    header = ("dtype", "K", "HxD", "shapes", "max|err|", "tolerance", "ok",
              f"kernel us {TIMING_SHAPE[0]}x{TIMING_SHAPE[1]}", "torch ops us", "speedup")  # fmt: skip
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"DynamicConv CUDA kernel vs reference_model decomposed torch ops on {device} "
          f"(torch {torch.__version__}, CUDA {torch.version.cuda}); batch {BATCHES}, seq 1,2,K-1,K,128,513")  # fmt: skip
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths)))

    for kernel_size, heads in REFUSED:
        value, logits = _inputs(torch, 1, 4, heads, 8, kernel_size, torch.float32, seed=0)
        try:
            module.dynamic_conv(value, logits, kernel_size, heads)
            torch.cuda.synchronize()
            outcome, refused = "launched (expected a refusal)", False
        except RuntimeError as exc:
            outcome, refused = f"refused: {str(exc).splitlines()[0]}", "invalid argument" in str(exc)
        failures += not refused
        print(f"oversized K={kernel_size} heads={heads} (heads*K={heads * kernel_size}): {outcome}"
              f" -> {'ok' if refused else 'NO'}")  # fmt: skip
    if failures:
        print(f"gpu_check: {failures} check(s) failed (outside the tolerance, or not refused)", file=sys.stderr)
        return 1
    return 0


def missing_prerequisite(torch) -> str | None:
    """One line naming the first missing thing the check needs (ninja, nvcc, a CUDA GPU), or None."""
    import logging

    # a CUDA build of torch on a machine without the CUDA runtime logs "No CUDA runtime is found"
    # when cpp_extension is imported; the line below says what is missing, once
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension
    finally:
        logger.setLevel(level)

    if not cpp_extension.is_ninja_available():
        return "ninja not found on PATH: torch compiles the kernel with it; install it with `pip install ninja`"
    if torch.version.cuda is None:
        return (f"no CUDA GPU usable: torch {torch.__version__} is a CPU build (torch.version.cuda is None); "
                "run this with a CUDA build of torch on a machine with an NVIDIA GPU")
    cuda_home = cpp_extension.CUDA_HOME
    nvcc = Path(cuda_home, "bin", "nvcc") if cuda_home else None
    if nvcc is None or not nvcc.is_file():
        return ("nvcc not found (torch's CUDA_HOME is " + (str(cuda_home) if cuda_home else "unset")
                + "): install the CUDA toolkit and set CUDA_HOME to the directory holding bin/nvcc")
    if not torch.cuda.is_available():
        return (f"no CUDA GPU available (torch.cuda.is_available() is False, torch {torch.__version__}, "
                f"CUDA build {torch.version.cuda}); run this on a machine with an NVIDIA GPU and a CUDA build of torch")
    return None


if __name__ == "__main__":
    sys.exit(main())
