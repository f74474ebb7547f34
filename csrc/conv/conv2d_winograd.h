// Winograd F(2x2, 3x3) float32 convolution, compiled once per instruction set
// (conv2d_winograd.cpp): 3x3, dilation-1, ungrouped layers with 16 or more channels each
// way. Stride 1: forward, input gradient (the transposed, flipped kernel) and weight
// gradient (the transforms' adjoint); stride 2: forward.
#pragma once

#include "common/geometry.h"

namespace convpool {

#define CONVPOOL_DECLARE_WINOGRAD(isa)                                                         \
  namespace isa {                                                                              \
  void winograd_forward(const Conv2dGeometry& g, const float* x, const float* w,               \
                        const float* bias, float* y);                                          \
  void winograd_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,       \
                           float* grad_x);                                                     \
  void winograd_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,      \
                            float* grad_w);                                                    \
  }

CONVPOOL_DECLARE_WINOGRAD(avx512)
CONVPOOL_DECLARE_WINOGRAD(avx2)
CONVPOOL_DECLARE_WINOGRAD(baseline)

#undef CONVPOOL_DECLARE_WINOGRAD

}  // namespace convpool
