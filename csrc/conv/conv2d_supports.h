// Which cases each float32 fast path of the convolution supports. Compiled once, outside
// the per-ISA builds (the registry calls these on every CPU); `vector_floats` is the
// vector width of the SIMD level that would run the kernel (4, 8 or 16 floats).
#pragma once

#include <cstdint>

#include "common/geometry.h"

namespace convpool {

// Winograd F(2x2, 3x3): the stride-1 passes (forward, input and weight gradient), and the
// forward at stride 1 or 2.
bool winograd_supports(const Conv2dGeometry& g, int vector_floats);
bool winograd_forward_supports(const Conv2dGeometry& g, int vector_floats);

// Register-blocked tap convolution (channel tiles or row tiles).
bool blocked_forward_supports(const Conv2dGeometry& g, int vector_floats);
bool blocked_grad_input_supports(const Conv2dGeometry& g, int vector_floats);
bool blocked_grad_weight_supports(const Conv2dGeometry& g, int vector_floats);
// The most output channels per group a row tile of the blocked engine holds.
constexpr int64_t kBlockedMaxRowChannels = 8;
// Whether the blocked engine puts its vectors along output rows (row tiles) for
// `out_channels` outputs per group over rows of `cols` pixels; the kernels ask the same.
bool blocked_rows_suit(int64_t out_channels, int64_t cols, int vector_floats);

// Plane filter: one input channel per output plane.
bool plane_supports(const Conv2dGeometry& g, int vector_floats);
bool plane_grad_input_supports(const Conv2dGeometry& g, int vector_floats);

}  // namespace convpool
