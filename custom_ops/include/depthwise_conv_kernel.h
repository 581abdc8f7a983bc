// DepthwiseConv: ConvBERT's depthwise separable convolution's depthwise part, masked, in the
// (batch, sequence, channels) layout (CPU float32 kernel).
//
//   x       (B, S, C)             float32
//   weight  (C, K)                float32, K odd (a Conv weight (C, 1, K) without its middle axis)
//   mask    (B, S) or (B, S, 1)   float32, optional (absent: all ones)
//   y       (B, S, C)             float32
//
//   y[b,s,c] = sum_{j<K} weight[c,j] * (mask[b, s+j-p] * x[b, s+j-p, c]),   p = (K-1)/2
//
// with the terms whose position s+j-p lies outside 0..S-1 taken as 0, summed in the order
// j = 0..K-1. This equals Transpose(Conv(Transpose(x * mask), weight[:, None, :], group=C,
// pads=[p, p])). This header is the single statement of the semantics on the C++ side.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cpu_vec.h"

namespace convbert {

struct DepthwiseConvShape {
  int64_t batch = 0;        // B
  int64_t seq = 0;          // S
  int64_t channels = 0;     // C
  int64_t kernel_size = 0;  // K (odd)

  int64_t rows() const { return batch * seq; }
};

// Largest kernel size accepted (per-row-group pointers live on the stack).
constexpr int64_t kDepthwiseMaxKernelSize = 255;
// Output rows computed together: they share every loaded input vector and tap (8: the fastest of
// 4, 6, 8, 10, 12 for 128 x 768 with AVX-512, 32 vector registers).
constexpr int64_t kDepthwiseRowGroup = 8;

// The weight (C, K) regrouped for the kernel: for each block of 16 channels, K vectors (tap j of
// the 16 channels). Channels past the last full block are read from the weight itself.
inline std::vector<float> depthwise_conv_taps(const float* weight, int64_t channels, int64_t kernel_size) {
  const int64_t blocks = channels / kLanes;
  std::vector<float> taps(static_cast<size_t>(blocks * kernel_size * kLanes));
  for (int64_t c = 0; c < blocks * kLanes; ++c) {
    const int64_t block = c / kLanes, lane = c % kLanes;
    for (int64_t j = 0; j < kernel_size; ++j) taps[(block * kernel_size + j) * kLanes + lane] = weight[c * kernel_size + j];
  }
  return taps;
}

struct DepthwiseConvArgs {
  const float* x = nullptr;
  const float* weight = nullptr;  // (C, K), for the channels past the last full block of 16
  const float* taps = nullptr;    // depthwise_conv_taps(weight, C, K)
  const float* mask = nullptr;    // (B, S); null: all ones
  const float* zeros = nullptr;   // C zeros: the rows outside 0..S-1
  float* y = nullptr;
  DepthwiseConvShape shape;
};

// Output rows s .. s + R - 1 of batch element b (R = kRows <= kDepthwiseRowGroup) from the R + K - 1
// input rows `src` (masked by `factor` when kMasked), for all channels.
template <int kFixedK, int kRows, bool kMasked>
CONVBERT_INLINE void depthwise_conv_group(const DepthwiseConvArgs& a, const float* const* src, const float* factor,
                                          float* const* out) {
  const int64_t C = a.shape.channels;
  const int64_t K = kFixedK > 0 ? kFixedK : a.shape.kernel_size;
  const int64_t full = C - C % kLanes;
  for (int64_t c0 = 0; c0 < full; c0 += kLanes) {
    const float* taps = a.taps + (c0 / kLanes) * K * kLanes;
    Vec16 acc[kRows] = {};
    if (kFixedK > 0) {
      Vec16 v[kFixedK > 0 ? kFixedK + kRows - 1 : 1];
      for (int64_t i = 0; i < K + kRows - 1; ++i) v[i] = kMasked ? load16(src[i] + c0) * factor[i] : load16(src[i] + c0);
      for (int64_t j = 0; j < K; ++j) {
        const Vec16 w = load16(taps + j * kLanes);
        for (int r = 0; r < kRows; ++r) acc[r] += w * v[j + r];
      }
    } else {
      for (int64_t j = 0; j < K; ++j) {
        const Vec16 w = load16(taps + j * kLanes);
        for (int r = 0; r < kRows; ++r) {
          const Vec16 v = kMasked ? load16(src[j + r] + c0) * factor[j + r] : load16(src[j + r] + c0);
          acc[r] += w * v;
        }
      }
    }
    for (int r = 0; r < kRows; ++r) store16(out[r] + c0, acc[r]);
  }
  for (int64_t c = full; c < C; ++c) {  // channels past the last full block
    for (int r = 0; r < kRows; ++r) {
      float acc = 0.0f;
      for (int64_t j = 0; j < K; ++j) {
        const float v = kMasked ? src[j + r][c] * factor[j + r] : src[j + r][c];
        acc += a.weight[c * K + j] * v;
      }
      out[r][c] = acc;
    }
  }
}

template <int kFixedK, int kRows>
CONVBERT_INLINE void depthwise_conv_rows_at(const DepthwiseConvArgs& a, int64_t b, int64_t s) {
  const int64_t S = a.shape.seq, C = a.shape.channels;
  const int64_t K = kFixedK > 0 ? kFixedK : a.shape.kernel_size;
  const int64_t p = (K - 1) / 2;
  const float* src[kDepthwiseMaxKernelSize + kDepthwiseRowGroup - 1];
  float factor[kDepthwiseMaxKernelSize + kDepthwiseRowGroup - 1];
  float* out[kRows];
  bool masked = false;
  for (int64_t i = 0; i < K + kRows - 1; ++i) {
    const int64_t t = s - p + i;
    const bool inside = t >= 0 && t < S;
    src[i] = inside ? a.x + (b * S + t) * C : a.zeros;
    factor[i] = inside && a.mask ? a.mask[b * S + t] : 1.0f;
    masked = masked || factor[i] != 1.0f;  // x * 1 == x: unmasked rows skip the multiply
  }
  for (int r = 0; r < kRows; ++r) out[r] = a.y + (b * S + s + r) * C;
  if (masked) {
    depthwise_conv_group<kFixedK, kRows, true>(a, src, factor, out);
  } else {
    depthwise_conv_group<kFixedK, kRows, false>(a, src, factor, out);
  }
}

// Output rows [row_begin, row_end) of the flattened (B*S) row index. Each output element is the
// same sum whatever the row range, so splitting the rows over threads does not change the result.
template <int kFixedK>
CONVBERT_INLINE void depthwise_conv_rows(const DepthwiseConvArgs& a, int64_t row_begin, int64_t row_end) {
  const int64_t S = a.shape.seq;
  for (int64_t row = row_begin; row < row_end;) {
    const int64_t b = row / S, s = row - b * S;
    const int64_t left = std::min(row_end - row, S - s);  // rows left in this batch element
    if (left >= kDepthwiseRowGroup) {
      depthwise_conv_rows_at<kFixedK, kDepthwiseRowGroup>(a, b, s);
      row += kDepthwiseRowGroup;
    } else if (left >= 4) {
      depthwise_conv_rows_at<kFixedK, 4>(a, b, s);
      row += 4;
    } else {
      depthwise_conv_rows_at<kFixedK, 1>(a, b, s);
      row += 1;
    }
  }
}

}  // namespace convbert
