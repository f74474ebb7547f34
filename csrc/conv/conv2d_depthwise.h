// Strided depthwise float32 convolution, compiled once per instruction set
// (conv2d_depthwise.cpp): one input plane per output plane (C_in / groups == 1) with a
// column stride above 1, where the plane filter's contiguous row vectors do not apply.
// Each task copies the input rows it reads, zero padded and split into column phases
// (column k * stride + p goes to phase p, position k): every tap then reads one phase
// contiguously, and vectors run along output rows as in the plane filter. Forward and
// weight gradient; the input gradient is the few-input-channel phase kernel's.
#pragma once

#include "common/geometry.h"

namespace convpool {

#define CONVPOOL_DECLARE_DEPTHWISE(isa)                                                        \
  namespace isa {                                                                              \
  void depthwise_strided_forward(const Conv2dGeometry& g, const float* x, const float* w,      \
                                 const float* bias, float* y);                                 \
  void depthwise_strided_grad_weight(const Conv2dGeometry& g, const float* x,                  \
                                     const float* grad_y, float* grad_w);                      \
  }

CONVPOOL_DECLARE_DEPTHWISE(avx512)
CONVPOOL_DECLARE_DEPTHWISE(avx2)
CONVPOOL_DECLARE_DEPTHWISE(baseline)

#undef CONVPOOL_DECLARE_DEPTHWISE

}  // namespace convpool
