// Plane-filter float32 convolution, compiled once per instruction set (conv2d_plane.cpp):
// for convolutions where each output plane reads one input plane (C_in / groups == 1:
// a picture filter, LeNet's first layer, depthwise layers), vectorised along the output
// row. The input gradient (stride 1) is the output gradient filtered by the flipped
// kernel; the weight gradient sums per row block and adds the blocks in a fixed order.
#pragma once

#include "common/geometry.h"

namespace convpool {

#define CONVPOOL_DECLARE_PLANE(isa)                                                            \
  namespace isa {                                                                              \
  void plane_forward(const Conv2dGeometry& g, const float* x, const float* w,                  \
                     const float* bias, float* y);                                             \
  void plane_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,          \
                        float* grad_x);                                                        \
  void plane_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,         \
                         float* grad_w);                                                       \
  }

CONVPOOL_DECLARE_PLANE(avx512)
CONVPOOL_DECLARE_PLANE(avx2)
CONVPOOL_DECLARE_PLANE(baseline)

#undef CONVPOOL_DECLARE_PLANE

}  // namespace convpool
