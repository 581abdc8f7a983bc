// AddLayerNorm: residual add + bias + LayerNorm over the last axis in one op (CPU float32 kernel).
//
//   x      (..., C)   float32
//   skip   (..., C)   float32, optional (same shape as x)
//   gamma  (C)        float32
//   beta   (C)        float32, optional (absent: 0)
//   bias   (C)        float32, optional (absent: 0)
//   y      (..., C)   float32
//   sum    (..., C)   float32, optional output: z
//
//   z    = x + skip + bias                                  (in this order)
//   mean = sum_c z[c] / C
//   var  = sum_c (z[c] - mean)^2 / C                        (biased; two passes, in float)
//   y    = (z - mean) / sqrt(var + epsilon) * gamma + beta
//
// Absent optional inputs read as zeros. This header is the single statement of the semantics on
// the C++ side.
#pragma once

#include <cmath>
#include <cstdint>

#include "cpu_vec.h"

namespace convbert {

struct AddLayerNormArgs {
  const float* x = nullptr;
  const float* skip = nullptr;   // row stride `skip_stride` (0 reads one row of zeros for every row)
  const float* gamma = nullptr;
  const float* beta = nullptr;   // never null: point at zeros when absent
  const float* bias = nullptr;   // never null: point at zeros when absent
  float* y = nullptr;
  float* sum = nullptr;          // optional output z (may be null)
  int64_t skip_stride = 0;
  int64_t channels = 0;          // C
  float epsilon = 1e-12f;
};

// Rows of up to this many channels keep z in a row buffer on the stack (L1) when the sum output is
// not asked for: y is then written once, never read back (measured: 1.6x faster at 8 x 128 x 768
// than normalizing y in place, whose lines are still arriving from L3 when they are read back).
constexpr int64_t kLayerNormRowBuffer = 4096;

// Rows [row_begin, row_end) of the flattened leading axes. z goes to the `sum` output when there is
// one, else to the row buffer (or y, for rows longer than kLayerNormRowBuffer), and is read back
// from cache for the statistics and the normalization. Rows are independent: splitting them over
// threads does not change the result.
CONVBERT_INLINE void add_layer_norm_rows(const AddLayerNormArgs& a, int64_t row_begin, int64_t row_end) {
  const int64_t C = a.channels;
  const int64_t vec_end = C - C % kLanes;
  alignas(64) float row_buffer[kLayerNormRowBuffer];
  for (int64_t row = row_begin; row < row_end; ++row) {
    const float* x = a.x + row * C;
    const float* skip = a.skip + row * a.skip_stride;
    float* y = a.y + row * C;
    float* z = a.sum ? a.sum + row * C : (C <= kLayerNormRowBuffer ? row_buffer : y);

    // Pass 1: z = x + skip + bias, and its sum (four accumulators: independent add chains).
    Vec16 acc[4] = {};
    int64_t c = 0;
    for (; c + 4 * kLanes <= vec_end; c += 4 * kLanes) {
      for (int k = 0; k < 4; ++k) {
        const int64_t i = c + k * kLanes;
        const Vec16 zi = load16(x + i) + load16(skip + i) + load16(a.bias + i);
        store16(z + i, zi);
        acc[k] += zi;
      }
    }
    for (; c < vec_end; c += kLanes) {
      const Vec16 zi = load16(x + c) + load16(skip + c) + load16(a.bias + c);
      store16(z + c, zi);
      acc[0] += zi;
    }
    float total = hsum16((acc[0] + acc[1]) + (acc[2] + acc[3]));
    for (; c < C; ++c) {
      z[c] = x[c] + skip[c] + a.bias[c];
      total += z[c];
    }
    const float mean = total / static_cast<float>(C);

    // Pass 2: the centred variance.
    const Vec16 mean_v = splat16(mean);
    for (int k = 0; k < 4; ++k) acc[k] = Vec16{};
    for (c = 0; c + 4 * kLanes <= vec_end; c += 4 * kLanes) {
      for (int k = 0; k < 4; ++k) {
        const Vec16 d = load16(z + c + k * kLanes) - mean_v;
        acc[k] += d * d;
      }
    }
    for (; c < vec_end; c += kLanes) {
      const Vec16 d = load16(z + c) - mean_v;
      acc[0] += d * d;
    }
    float squares = hsum16((acc[0] + acc[1]) + (acc[2] + acc[3]));
    for (; c < C; ++c) {
      const float d = z[c] - mean;
      squares += d * d;
    }
    const float rstd = 1.0f / std::sqrt(squares / static_cast<float>(C) + a.epsilon);

    // Pass 3: normalize (in place when z lives in y).
    const Vec16 rstd_v = splat16(rstd);
    for (c = 0; c < vec_end; c += kLanes) {
      store16(y + c, (load16(z + c) - mean_v) * rstd_v * load16(a.gamma + c) + load16(a.beta + c));
    }
    for (; c < C; ++c) y[c] = (z[c] - mean) * rstd * a.gamma[c] + a.beta[c];
  }
}

}  // namespace convbert
