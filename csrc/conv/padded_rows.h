// Padded copies of input rows, which the convolution kernels read instead of testing
// bounds. Only for files compiled once per ISA (internal linkage, see simd_vec.h).
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/padding.h"

namespace convpool::CONVPOOL_ISA {

namespace {

// Rows first_row .. first_row + count - 1 of a (rows x cols) plane, padded by `mode`: dst
// row b, column c (c < width) holds plane[first_row + b][c - left] where that lies inside
// the plane, else the pixel the padding repeats (padding_source_or_none), else zero (zero
// padding, and the slack past what the mode's padding reaches); dst rows are dst_stride
// floats apart. Every one of the count x width floats is written. first_row and left may
// be negative (padding) or past the plane.
void copy_padded_rows(const float* plane, int64_t rows, int64_t cols, int64_t first_row,
                      int64_t count, int64_t left, int64_t width, float* dst, int64_t dst_stride,
                      PaddingMode mode) {
  const int64_t c0 = std::clamp<int64_t>(left, 0, width);
  const int64_t c1 = std::clamp<int64_t>(left + cols, c0, width);
  for (int64_t b = 0; b < count; ++b, dst += dst_stride) {
    const int64_t r = padding_source_or_none(first_row + b, rows, mode);
    if (r < 0) {
      std::fill(dst, dst + width, 0.0f);
      continue;
    }
    const float* src = plane + r * cols - left;
    std::copy(src + c0, src + c1, dst + c0);
    if (mode == PaddingMode::zeros) {
      std::fill(dst, dst + c0, 0.0f);
      std::fill(dst + c1, dst + width, 0.0f);
      continue;
    }
    const float* row = plane + r * cols;
    auto padded = [&](int64_t c) {
      const int64_t source = padding_source_or_none(c - left, cols, mode);
      return source < 0 ? 0.0f : row[source];
    };
    for (int64_t c = 0; c < c0; ++c) dst[c] = padded(c);
    for (int64_t c = c1; c < width; ++c) dst[c] = padded(c);
  }
}

}  // namespace

}  // namespace convpool::CONVPOOL_ISA
