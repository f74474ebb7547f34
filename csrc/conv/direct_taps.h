// How the direct loop nests walk a tap over the padded input, for every padding mode:
// with zero padding only the outputs whose tap lands inside the input (the padding is no
// data, its taps are skipped); with the other modes every output, the padded pixels read
// from the input pixel the mode repeats (padding_source_index), never from a copy.
// For the portable files only (conv2d_forward.cpp, conv2d_grad_input.cpp,
// conv2d_grad_weight.cpp).
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/geometry.h"
#include "common/padding.h"

namespace convpool {

// Output positions [first, last) of axis `a` whose tap `k` reads an input pixel.
struct TapOutputs {
  int64_t first, last;
};

inline TapOutputs tap_outputs(const WindowAxis& a, int64_t k, PaddingMode mode) {
  if (mode == PaddingMode::zeros) return {a.first_inside(k), a.last_inside(k)};
  return {0, a.out_size};
}

// The input row (or column) tap `k` of output `o` reads; -1 in zero padding.
inline int64_t tap_source(const WindowAxis& a, int64_t o, int64_t k, PaddingMode mode) {
  return padding_source_index(a.input_index(o, k), a.in_size, mode);
}

// Calls f(j, c) for every output column j whose tap `t` reads input column c: first the
// columns whose tap lies inside the input (a strided run the compiler vectorises), then,
// for the non-zero modes, those whose tap lies in the padding.
template <typename F>
inline void for_each_tap_column(const WindowAxis& C, int64_t t, PaddingMode mode, F&& f) {
  const int64_t j0 = C.first_inside(t), j1 = C.last_inside(t);
  const int64_t c0 = C.input_index(0, t), stride = C.stride;
  for (int64_t j = j0; j < j1; ++j) f(j, c0 + j * stride);
  if (mode == PaddingMode::zeros) return;
  // The inside columns form one run [j0, j1) (empty when j0 >= j1): the rest are the
  // columns before it and after it.
  for (int64_t j = 0; j < std::min(j0, C.out_size); ++j) f(j, tap_source(C, j, t, mode));
  for (int64_t j = std::max(j0, j1); j < C.out_size; ++j) f(j, tap_source(C, j, t, mode));
}

}  // namespace convpool
