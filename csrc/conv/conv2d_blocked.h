// Register-blocked float32 convolution, compiled once per instruction set
// (conv2d_blocked.cpp built with each ISA's flags into namespaces avx512, avx2, baseline).
//
// Forward and input gradient share one engine, a "tap convolution": a tile of output
// pixels x 16-32 output channels lives in vector registers while the engine walks the
// input channels and kernel taps, broadcasting one input value against a vector of
// packed weights. The input gradient is the same engine on the output gradient with
// the kernel transposed and flipped, one pass per stride phase. The weight gradient uses
// the same register tile with pixels as the reduction axis.
#pragma once

#include "common/geometry.h"

namespace convpool {

#define CONVPOOL_DECLARE_BLOCKED(isa)                                                          \
  namespace isa {                                                                              \
  void blocked_forward(const Conv2dGeometry& g, const float* x, const float* w,                \
                       const float* bias, float* y);                                           \
  void blocked_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,        \
                          float* grad_x);                                                      \
  void blocked_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,       \
                           float* grad_w);                                                     \
  }

CONVPOOL_DECLARE_BLOCKED(avx512)
CONVPOOL_DECLARE_BLOCKED(avx2)
CONVPOOL_DECLARE_BLOCKED(baseline)

#undef CONVPOOL_DECLARE_BLOCKED

}  // namespace convpool
