// Depthwise float32 convolution with channels in the vector lanes, compiled once per
// instruction set (conv2d_depthwise_lanes.cpp): for depthwise layers (one input and one
// output channel per group) on small planes (MobileNet's 7x7-56x56 layers), where vectors
// along a row of 7 or 14 pixels would be half empty. Each task takes V channels of one
// image, transposes them in registers to pixel-major order with the channels in the lanes
// (zero padded), runs every pass as vector FMAs per pixel and transposes the result back.
#pragma once

#include "common/geometry.h"

namespace convpool {

#define CONVPOOL_DECLARE_DEPTHWISE_LANES(isa)                                                  \
  namespace isa {                                                                              \
  void depthwise_lanes_forward(const Conv2dGeometry& g, const float* x, const float* w,        \
                               const float* bias, float* y);                                   \
  void depthwise_lanes_grad_input(const Conv2dGeometry& g, const float* grad_y,                \
                                  const float* w, float* grad_x);                              \
  void depthwise_lanes_grad_weight(const Conv2dGeometry& g, const float* x,                    \
                                   const float* grad_y, float* grad_w);                        \
  }

CONVPOOL_DECLARE_DEPTHWISE_LANES(avx512)
CONVPOOL_DECLARE_DEPTHWISE_LANES(avx2)
CONVPOOL_DECLARE_DEPTHWISE_LANES(baseline)

#undef CONVPOOL_DECLARE_DEPTHWISE_LANES

}  // namespace convpool
