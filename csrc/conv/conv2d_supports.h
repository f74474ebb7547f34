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

// Channel-blocked batch-reduce convolution: >= 16 channels each way per group, any
// kernel, stride, dilation and padding (forward, where it was measured to win: dilation
// > 2, column stride > 2, few output pixels); stride 1 (input gradient).
bool brgemm_forward_supports(const Conv2dGeometry& g, int vector_floats);
bool brgemm_grad_input_supports(const Conv2dGeometry& g, int vector_floats);

// Plane filter: one input channel per output plane.
bool plane_supports(const Conv2dGeometry& g, int vector_floats);
bool plane_grad_input_supports(const Conv2dGeometry& g, int vector_floats);

// Few input channels per group (first layers): output channels in the vector lanes
// (forward), one pass per stride phase (input gradient).
bool few_channels_forward_supports(const Conv2dGeometry& g, int vector_floats);
bool few_channels_grad_input_supports(const Conv2dGeometry& g, int vector_floats);
constexpr int64_t kFewChannelsMaxInputChannels = 4;
// The forward tiles are instantiated per column stride (their broadcasts use immediate
// offsets); the input gradient's phase weights and buffers grow with the stride.
constexpr int64_t kFewChannelsMaxStride = 4;

// One input channel per group with a column stride of 2-4, rows split into column phases
// (forward and weight gradient).
bool depthwise_strided_supports(const Conv2dGeometry& g, int vector_floats);

// Depthwise layers on small planes with channels in the vector lanes (all three passes).
bool depthwise_lanes_supports(const Conv2dGeometry& g, int vector_floats);
bool depthwise_lanes_grad_input_supports(const Conv2dGeometry& g, int vector_floats);
bool depthwise_lanes_grad_weight_supports(const Conv2dGeometry& g, int vector_floats);
// The rows (or columns) of the zero-padded plane the depthwise_lanes kernels hold for
// axis `a`: the padding before, the input, and whatever the last window reads past it.
int64_t depthwise_lanes_padded_size(const WindowAxis& a);

}  // namespace convpool
