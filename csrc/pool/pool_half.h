// Pooling forward on float16 arrays (IEEE binary16 bit patterns as uint16_t), computed
// in float32 and rounded once to float16: max pooling without indices and average pooling,
// NCHW. Windows, padding and divisors are those of pool2d.h; x (planes, H, W) -> y
// (planes, OH, OW). Each runs the registry's choice from its operation's float16 list
// (registry/registry.cpp; the kernels are kernels/pool2d_float16.cpp). Max with indices,
// the gradients and channels-last arrays run in float32 (the Python layer converts).
#pragma once

#include <cstdint>

#include "pool/pool2d.h"

namespace convpool {

void max_pool2d_forward_float16(const PoolGeometry& g, const uint16_t* x, uint16_t* y);
void avg_pool2d_forward_float16(const PoolGeometry& g, const AvgPoolDivisor& d,
                                const uint16_t* x, uint16_t* y);

}  // namespace convpool
