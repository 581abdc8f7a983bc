// DynamicConv CUDA kernel (float32 and float16, float accumulation).
//
// One thread block per (batch, position) row: the block first turns the row's H*K logits into
// softmax weights in shared memory (one warp per head), then each thread produces output
// channels c = h*D + d as sum_j w[h, j] * value[row + j - (K-1)/2, c]. Reads of `value` are
// coalesced across c; neighbouring rows are re-read by neighbouring blocks through L2.
#include "dynamic_conv.cuh"

#include <cuda_fp16.h>

namespace convbert {
namespace {

constexpr int kThreads = 256;  // per block, a multiple of the warp size

template <typename T>
__device__ __forceinline__ float to_float(T v);
template <>
__device__ __forceinline__ float to_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }

template <typename T>
__global__ void __launch_bounds__(kThreads) dynamic_conv_kernel(const T* __restrict__ value,
                                                                 const T* __restrict__ kernel_logits,
                                                                 T* __restrict__ out, int64_t seq, int num_heads,
                                                                 int head_size, int kernel_size) {
  extern __shared__ float weights[];  // (num_heads, kernel_size)
  const int64_t row = blockIdx.x;     // flattened (b, s)
  const int64_t s = row % seq;
  const int64_t row0 = row - s;       // flattened (b, 0)
  const int half_width = (kernel_size - 1) / 2;
  const int channels = num_heads * head_size;

  // Softmax over each head's K logits: one warp per head, lanes stride over K.
  const int lane = threadIdx.x % warpSize;
  const int warp = threadIdx.x / warpSize;
  const int warps = blockDim.x / warpSize;
  const T* logits = kernel_logits + row * num_heads * kernel_size;
  for (int h = warp; h < num_heads; h += warps) {
    float m = -INFINITY;
    for (int j = lane; j < kernel_size; j += warpSize) m = fmaxf(m, to_float(logits[h * kernel_size + j]));
    for (int offset = warpSize / 2; offset > 0; offset /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, offset));
    float total = 0.f;
    for (int j = lane; j < kernel_size; j += warpSize) {
      const float e = expf(to_float(logits[h * kernel_size + j]) - m);
      weights[h * kernel_size + j] = e;
      total += e;
    }
    for (int offset = warpSize / 2; offset > 0; offset /= 2) total += __shfl_xor_sync(0xffffffffu, total, offset);
    const float inv = 1.f / total;
    for (int j = lane; j < kernel_size; j += warpSize) weights[h * kernel_size + j] *= inv;
  }
  __syncthreads();

  // Taps whose source position lies inside 0..seq-1.
  const int64_t first = half_width - s, last = seq - s + half_width;
  const int j_begin = first > 0 ? static_cast<int>(first) : 0;
  const int j_end = last < kernel_size ? static_cast<int>(last) : kernel_size;
  for (int c = threadIdx.x; c < channels; c += blockDim.x) {
    const float* w = weights + (c / head_size) * kernel_size;
    const T* src = value + (row0 + s - half_width + j_begin) * channels + c;  // first in-range tap
    float acc = 0.f;
    for (int j = j_begin; j < j_end; ++j, src += channels) acc += w[j] * to_float(*src);
    out[row * channels + c] = from_float<T>(acc);
  }
}

template <typename T>
cudaError_t launch(const void* value, const void* kernel_logits, void* out, int64_t batch, int64_t seq,
                   int num_heads, int head_size, int kernel_size, cudaStream_t stream) {
  const int64_t rows = batch * seq;
  const int channels = num_heads * head_size;
  // Enough threads for the channels (rounded up to whole warps), at most kThreads.
  int threads = ((channels + 31) / 32) * 32;
  threads = threads < 32 ? 32 : (threads > kThreads ? kThreads : threads);
  const size_t shared = sizeof(float) * static_cast<size_t>(num_heads) * kernel_size;
  if (shared > sizeof(float) * kMaxCudaHeadsTimesKernel) return cudaErrorInvalidValue;
  dynamic_conv_kernel<T><<<static_cast<unsigned int>(rows), threads, shared, stream>>>(
      static_cast<const T*>(value), static_cast<const T*>(kernel_logits), static_cast<T*>(out), seq, num_heads,
      head_size, kernel_size);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_dynamic_conv(DynamicConvDType dtype, const void* value, const void* kernel_logits, void* out,
                                int64_t batch, int64_t seq, int32_t num_heads, int32_t head_size,
                                int32_t kernel_size, cudaStream_t stream) {
  if (kernel_size < 1 || kernel_size % 2 == 0 || kernel_size > kMaxCudaKernelSize || num_heads < 1 ||
      head_size < 1 || int64_t{num_heads} * kernel_size > kMaxCudaHeadsTimesKernel || batch < 0 || seq < 0 ||
      batch * seq > 0x7fffffffLL) {
    return cudaErrorInvalidValue;
  }
  if (batch * seq == 0) return cudaSuccess;
  switch (dtype) {
    case DynamicConvDType::kFloat32:
      return launch<float>(value, kernel_logits, out, batch, seq, num_heads, head_size, kernel_size, stream);
    case DynamicConvDType::kFloat16:
      return launch<__half>(value, kernel_logits, out, batch, seq, num_heads, head_size, kernel_size, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace convbert
