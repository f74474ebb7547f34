// 2-D convolution (correlation, as in CNNs) on contiguous NCHW arrays, zero padding
// implicit. The other padding modes are applied beforehand with pad_planes().
//
//   y[n, q, i, j] = b[q] + sum_{p in group(q), s, t} w[q, p, s, t] * x[n, p, i*sy - top + s*dy, j*sx - left + t*dx]
//
// Shapes: x (N, C_in, H, W), w (C_out, C_in / groups, kh, kw), b (C_out) or null,
// y (N, C_out, OH, OW). Every function writes its whole output (no accumulation into it).
#pragma once

#include <cstdint>

#include "common/geometry.h"

namespace convpool {

template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y);

template <typename T>
void conv2d_grad_input(const Conv2dGeometry& g, const T* grad_y, const T* w, T* grad_x);

template <typename T>
void conv2d_grad_weight(const Conv2dGeometry& g, const T* x, const T* grad_y, T* grad_w);

template <typename T>
void conv2d_grad_bias(int64_t batch, int64_t channels, int64_t plane, const T* grad_y, T* grad_b);

// Whether all `count` values are finite (no NaN, no inf).
inline bool all_finite(const float* values, int64_t count) {
  float probe = 0.0f;  // x - x is 0 for finite x, NaN for NaN and inf
  for (int64_t k = 0; k < count; ++k) probe += values[k] - values[k];
  return probe == 0.0f;
}

}  // namespace convpool
