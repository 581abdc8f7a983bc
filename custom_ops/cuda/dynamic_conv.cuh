// DynamicConv CUDA kernel: the launcher shared by the TensorRT plugin (and any CUDA host code).
// Semantics: see include/dynamic_conv_kernel.h and README.md.
#pragma once

#include <cstdint>
#include <cuda_runtime_api.h>

namespace convbert {

enum class DynamicConvDType : int32_t { kFloat32 = 0, kFloat16 = 1 };

// Largest kernel size the CUDA kernel accepts.
constexpr int32_t kMaxCudaKernelSize = 255;
// The kernel keeps a row's num_heads * kernel_size softmax weights (float) in 48 KB of shared
// memory: num_heads * kernel_size may be at most this (e.g. 12 heads x K 1023, or 64 x 191).
constexpr int64_t kMaxCudaHeadsTimesKernel = 48 * 1024 / sizeof(float);

// out = DynamicConv(value, kernel_logits) on `stream`, all tensors contiguous on the device:
//   value, out      (batch, seq, num_heads * head_size)
//   kernel_logits   (batch, seq, num_heads * kernel_size)    logits BEFORE the softmax
// float16 tensors are __half; accumulation is float. Returns cudaErrorInvalidValue for bad
// sizes (kernel_size even or > kMaxCudaKernelSize, non-positive heads/head_size,
// num_heads * kernel_size > kMaxCudaHeadsTimesKernel), otherwise the launch status. batch * seq == 0 launches nothing.
cudaError_t launch_dynamic_conv(DynamicConvDType dtype, const void* value, const void* kernel_logits, void* out,
                                int64_t batch, int64_t seq, int32_t num_heads, int32_t head_size,
                                int32_t kernel_size, cudaStream_t stream);

}  // namespace convbert
