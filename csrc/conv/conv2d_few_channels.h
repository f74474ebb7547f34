// Few-input-channel float32 convolution, compiled once per instruction set
// (conv2d_few_channels.cpp): the first layer of most networks (1-4 input channels per
// group, e.g. 3 -> 64 with an 11x11 stride-4, 7x7 stride-2 or 3x3 stride-2 kernel).
//
// Forward: vectors run along output channels. A register tile of output pixels x one or
// two vectors of output channels walks the (input channel, kh, kw) taps, broadcasting one
// input value per pixel against vectors of packed weights (any stride: a broadcast reads
// any address); the tile is transposed in registers and stored as contiguous pixels per
// channel. Input gradient: one pass per stride phase, each a stride-1 correlation of the
// output gradient with the phase's taps, vectors along input-gradient columns, all input
// channels of a group in registers; the phases' columns are interleaved in registers.
#pragma once

#include "common/geometry.h"

namespace convpool {

#define CONVPOOL_DECLARE_FEW_CHANNELS(isa)                                                     \
  namespace isa {                                                                              \
  void few_channels_forward(const Conv2dGeometry& g, const float* x, const float* w,           \
                            const float* bias, float* y);                                      \
  void few_channels_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,   \
                               float* grad_x);                                                 \
  }

CONVPOOL_DECLARE_FEW_CHANNELS(avx512)
CONVPOOL_DECLARE_FEW_CHANNELS(avx2)
CONVPOOL_DECLARE_FEW_CHANNELS(baseline)

#undef CONVPOOL_DECLARE_FEW_CHANNELS

}  // namespace convpool
