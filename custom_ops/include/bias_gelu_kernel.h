// BiasGelu: exact (erf) GELU of x + bias in one op (CPU float32 kernel).
//
//   x     (..., C)  float32
//   bias  (C)       float32
//   y     (..., C)  float32
//
//   z = x + bias
//   y = 0.5 * z * (1 + erf(z / sqrt(2)))
//
// erf is Abramowitz & Stegun's formula 7.1.28, erf(t) = 1 - (1 + a1 t + ... + a6 t^6)^-16 for
// t >= 0 (absolute error <= 3e-7), odd for t < 0; so y is within 0.5 * |z| * 3e-7 (+ float
// rounding) of the exact GELU. This header is the single statement of the semantics on the C++
// side.
#pragma once

#include <cmath>
#include <cstdint>

#include "cpu_vec.h"

namespace convbert {

// A&S 7.1.28's coefficients.
constexpr float kErfA1 = 0.0705230784f, kErfA2 = 0.0422820123f, kErfA3 = 0.0092705272f;
constexpr float kErfA4 = 0.0001520143f, kErfA5 = 0.0002765672f, kErfA6 = 0.0000430638f;
constexpr float kInvSqrt2 = 0.70710678118654752f;

// 1 + erf(u), scalar.
inline float one_plus_erf(float u) {
  const float t = std::fabs(u);
  float p = 1.0f + t * (kErfA1 + t * (kErfA2 + t * (kErfA3 + t * (kErfA4 + t * (kErfA5 + t * kErfA6)))));
  p *= p;
  p *= p;
  p *= p;
  p *= p;  // p^16 (inf for large t: the reciprocal is then 0)
  const float r = 1.0f / p;
  return u >= 0.0f ? 2.0f - r : r;
}

// 1 + erf(u), 16 lanes, the same operations in the same order as the scalar version.
CONVBERT_INLINE Vec16 one_plus_erf16(Vec16 u) {
  const Vec16 t = u < 0.0f ? -u : u;
  Vec16 p = 1.0f + t * (kErfA1 + t * (kErfA2 + t * (kErfA3 + t * (kErfA4 + t * (kErfA5 + t * kErfA6)))));
  p *= p;
  p *= p;
  p *= p;
  p *= p;
  const Vec16 r = 1.0f / p;
  return u >= 0.0f ? 2.0f - r : r;
}

// Rows [row_begin, row_end) of the flattened leading axes; rows are independent.
CONVBERT_INLINE void bias_gelu_rows(const float* x, const float* bias, float* y, int64_t channels, int64_t row_begin,
                                    int64_t row_end) {
  const int64_t vec_end = channels - channels % kLanes;
  const Vec16 half = splat16(0.5f), scale = splat16(kInvSqrt2);
  for (int64_t row = row_begin; row < row_end; ++row) {
    const float* xr = x + row * channels;
    float* yr = y + row * channels;
    int64_t c = 0;
    for (; c < vec_end; c += kLanes) {
      const Vec16 z = load16(xr + c) + load16(bias + c);
      store16(yr + c, half * z * one_plus_erf16(z * scale));
    }
    for (; c < channels; ++c) {
      const float z = xr[c] + bias[c];
      yr[c] = 0.5f * z * one_plus_erf(z * kInvSqrt2);
    }
  }
}

}  // namespace convbert
