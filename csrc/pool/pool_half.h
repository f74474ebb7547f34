// Pooling forward on float16 arrays (IEEE binary16 bit patterns as uint16_t), computed
// in float32 and rounded once to float16: max pooling without indices and average pooling.
// Windows, padding and divisors are those of pool2d.h; x (planes, H, W) -> y (planes, OH, OW).
// Max with indices, and the gradients, run in float32 (the Python layer converts).
#pragma once

#include <cstdint>

#include "pool/pool2d.h"

namespace convpool {

void max_pool2d_forward_half(const PoolGeometry& g, const uint16_t* x, uint16_t* y);
void avg_pool2d_forward_half(const PoolGeometry& g, const AvgPoolDivisor& d, const uint16_t* x,
                             uint16_t* y);

}  // namespace convpool

// The per-instruction-set kernels behind them (pool2d_half.cpp); the average takes the
// divisor as its row and column factors (window_counts), computed once by the caller.
#define CONVPOOL_DECLARE_HALF_POOL_KERNELS                                                   \
  void max_pool2d_forward_half(const PoolGeometry& g, const uint16_t* x, uint16_t* y);      \
  void avg_pool2d_forward_half(const PoolGeometry& g, const float* row_divisor,              \
                               const float* col_divisor, const uint16_t* x, uint16_t* y);

namespace convpool::avx512 {
CONVPOOL_DECLARE_HALF_POOL_KERNELS
}
namespace convpool::avx2 {
CONVPOOL_DECLARE_HALF_POOL_KERNELS
}
namespace convpool::baseline {
CONVPOOL_DECLARE_HALF_POOL_KERNELS
}

#undef CONVPOOL_DECLARE_HALF_POOL_KERNELS
