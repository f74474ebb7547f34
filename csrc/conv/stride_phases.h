// The stride phases of an input-gradient pass, for files compiled once per ISA: with
// stride s, input positions p, p + s, p + 2s, ... (phase p) receive from a fixed subset of
// the kernel taps, each reading the output gradient at a fixed offset from a.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/geometry.h"
#include "common/simd_vec.h"

namespace convpool::CONVPOOL_ISA {

namespace {

// Tap kernel_index of an axis sends output position a + offset to input position
// phase + a * stride.
struct PhaseTap {
  int64_t kernel_index, offset;
};

Array<PhaseTap> phase_taps(const WindowAxis& a, int64_t phase) {
  Array<PhaseTap> taps;
  for (int64_t k = 0; k < a.kernel; ++k) {
    const int64_t shift = phase + a.pad_before - k * a.dilation;  // = offset * stride
    const int64_t rest = ((shift % a.stride) + a.stride) % a.stride;
    if (rest == 0) taps.push_back({k, (shift - rest) / a.stride});
  }
  return taps;
}

// Input positions of the phase: phase, phase + stride, ... below in_size.
int64_t phase_size(const WindowAxis& a, int64_t phase) {
  return phase < a.in_size ? ceil_div(a.in_size - phase, a.stride) : 0;
}

}  // namespace

}  // namespace convpool::CONVPOOL_ISA
