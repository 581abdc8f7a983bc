// DynamicConv: ConvBERT's span-based dynamic convolution as one op (CPU reference kernel).
//
//   value          (B, S, H*D)   float32 | float16
//   kernel_logits  (B, S, H*K)   same dtype, BEFORE the softmax
//   out            (B, S, H*D)   same dtype
//
//   w[b,s,h,:]      = softmax(kernel_logits[b, s, h*K:(h+1)*K])            (float, max-subtracted)
//   out[b,s,h*D+d]  = sum_{j<K} w[b,s,h,j] * value[b, s + j - (K-1)/2, h*D+d]
//
// with value taken as 0 outside 0..S-1. K is odd. Accumulation is in float for every dtype.
// This header is the single statement of the semantics on the C++ side; the ONNX Runtime
// library calls it, the CUDA kernel (cuda/dynamic_conv.cu) implements the same formula.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace convbert {

// Largest kernel size the kernels accept (the per-head weights live on the stack).
constexpr int64_t kMaxKernelSize = 255;

// Shapes of one DynamicConv call.
struct DynamicConvShape {
  int64_t batch = 0;        // B
  int64_t seq = 0;          // S
  int64_t num_heads = 0;    // H
  int64_t head_size = 0;    // D
  int64_t kernel_size = 0;  // K (odd)

  int64_t rows() const { return batch * seq; }
  int64_t channels() const { return num_heads * head_size; }
};

// Checks the attributes; returns an empty string when they are valid, else the reason.
inline std::string check_attributes(int64_t kernel_size, int64_t num_heads, int64_t head_size) {
  if (kernel_size < 1 || kernel_size % 2 == 0 || kernel_size > kMaxKernelSize) {
    return "DynamicConv: kernel_size must be odd and in 1.." + std::to_string(kMaxKernelSize) +
           ", got " + std::to_string(kernel_size);
  }
  if (num_heads < 1) return "DynamicConv: num_heads must be >= 1, got " + std::to_string(num_heads);
  if (head_size < 1) return "DynamicConv: head_size must be >= 1, got " + std::to_string(head_size);
  return {};
}

// IEEE half <-> float, for the CPU float16 path (storage type uint16_t).
inline float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1fu) {  // inf / nan
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // zero
    bits = sign;
  } else {  // subnormal: renormalize
    exponent = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

inline uint16_t float_to_half_bits(float f) {  // round to nearest even
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf / nan
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (abs < 0x38800000u) {  // subnormal or zero in half
    if (abs < 0x33000000u) return sign;  // below half the smallest subnormal
    const uint32_t shift = 113u - (abs >> 23);  // 14..24
    const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    uint32_t half = mantissa >> (shift + 13);
    const uint32_t rest = mantissa & ((1u << (shift + 13)) - 1u);
    const uint32_t halfway = 1u << (shift + 12);
    if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = ((abs >> 13) - (112u << 10));
  const uint32_t rest = abs & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;  // may carry into the exponent
  return static_cast<uint16_t>(sign | half);
}

// Element access: float is used as is; uint16_t holds IEEE half bits.
template <typename T>
struct Element;

template <>
struct Element<float> {
  static float load(float v) { return v; }
  static float store(float v) { return v; }
};

template <>
struct Element<uint16_t> {
  static float load(uint16_t v) { return half_bits_to_float(v); }
  static uint16_t store(float v) { return float_to_half_bits(v); }
};

// Softmax of `k` logits into `weights` (float, max-subtracted).
template <typename T>
inline void softmax_weights(const T* logits, int64_t k, float* weights) {
  float max_logit = Element<T>::load(logits[0]);
  for (int64_t j = 1; j < k; ++j) max_logit = std::max(max_logit, Element<T>::load(logits[j]));
  float total = 0.0f;
  for (int64_t j = 0; j < k; ++j) {
    weights[j] = std::exp(Element<T>::load(logits[j]) - max_logit);
    total += weights[j];
  }
  const float inv = 1.0f / total;
  for (int64_t j = 0; j < k; ++j) weights[j] *= inv;
}

// Computes output rows [row_begin, row_end) of the flattened (B*S) row index.
// All pointers are contiguous row-major tensors of the shapes documented above.
template <typename T>
void dynamic_conv_rows(const T* value, const T* kernel_logits, T* out, const DynamicConvShape& shape,
                       int64_t row_begin, int64_t row_end) {
  constexpr int64_t kChunk = 64;  // accumulators per pass over D: stay in registers / L1
  const int64_t S = shape.seq, H = shape.num_heads, D = shape.head_size, K = shape.kernel_size;
  const int64_t C = H * D;
  const int64_t half_width = (K - 1) / 2;
  float weights[kMaxKernelSize];
  float acc[kChunk];

  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t s = row % S;
    const int64_t batch_row0 = row - s;  // flattened index of (b, 0)
    // Taps whose source position lies inside 0..S-1.
    const int64_t j_begin = std::max<int64_t>(0, half_width - s);
    const int64_t j_end = std::min<int64_t>(K, S - s + half_width);
    for (int64_t h = 0; h < H; ++h) {
      softmax_weights(kernel_logits + row * H * K + h * K, K, weights);
      for (int64_t d0 = 0; d0 < D; d0 += kChunk) {
        const int64_t n = std::min(kChunk, D - d0);
        for (int64_t d = 0; d < n; ++d) acc[d] = 0.0f;
        for (int64_t j = j_begin; j < j_end; ++j) {
          const float w = weights[j];
          const T* src = value + (batch_row0 + s + j - half_width) * C + h * D + d0;
          for (int64_t d = 0; d < n; ++d) acc[d] += w * Element<T>::load(src[d]);
        }
        T* dst = out + row * C + h * D + d0;
        for (int64_t d = 0; d < n; ++d) dst[d] = Element<T>::store(acc[d]);
      }
    }
  }
}

}  // namespace convbert
