// Channel-blocked direct convolution over a batch-reduce of (input channel, kh, kw),
// compiled once per instruction set (conv2d_brgemm.cpp built with each ISA's flags into
// namespaces avx512, avx2, baseline).
//
// A register tile holds NO output channels x NR vectors of output pixels. The input of one
// picture is copied once, zero padded and split into stride phases, so that every tap of
// every stride and dilation reads a contiguous run of pixels; the weights are read in
// place (a broadcast per output channel and tap), so there is nothing to pack or cache.
// Batch 1 splits (output-channel block x pixel tile) across threads.
#pragma once

#include "common/geometry.h"

namespace convpool {

#define CONVPOOL_DECLARE_BRGEMM(isa)                                                           \
  namespace isa {                                                                              \
  void brgemm_forward(const Conv2dGeometry& g, const float* x, const float* w,                 \
                      const float* bias, float* y);                                            \
  void brgemm_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,         \
                         float* grad_x);                                                       \
  }

CONVPOOL_DECLARE_BRGEMM(avx512)
CONVPOOL_DECLARE_BRGEMM(avx2)
CONVPOOL_DECLARE_BRGEMM(baseline)

#undef CONVPOOL_DECLARE_BRGEMM

}  // namespace convpool
