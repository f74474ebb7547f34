// Low-rank (separable) convolution in one sweep (kernels/conv2d_separable.cpp): the
// kernels as `rank` outer products, columns (C_out, rank, kh) and rows (C_out, rank, kw),
//
//   y[n, q, i, j] = b[q] + sum_{r, s, t} columns[q, r, s] * rows[q, r, t]
//                          * x[n, q / (C_out / C_in), i*sy - top + s*dy, j*sx - left + t*dx],
//
// for zero-padded NCHW convolutions with one input plane per output plane
// (C_in == groups). separable_forward_supports() says whether a geometry qualifies.
// `chunk` > 0 sets the output columns of a unit of work (0: the kernel's choice).
#pragma once

#include <cstdint>

#include "common/geometry.h"

#define CONVPOOL_DECLARE_SEPARABLE_FORWARD                                                      \
  void separable_forward(const Conv2dGeometry& g, int64_t rank, const float* x,                  \
                         const float* columns, const float* rows, const float* bias, float* y,    \
                         int64_t chunk);                                                       \
  void separable_forward(const Conv2dGeometry& g, int64_t rank, const double* x,                 \
                         const double* columns, const double* rows, const double* bias,         \
                         double* y, int64_t chunk);

namespace convpool::avx512 {
CONVPOOL_DECLARE_SEPARABLE_FORWARD
}
namespace convpool::avx2 {
CONVPOOL_DECLARE_SEPARABLE_FORWARD
}
namespace convpool::baseline {
CONVPOOL_DECLARE_SEPARABLE_FORWARD
}
namespace convpool {
// The build for the SIMD level in force (conv/conv2d_separable.cpp).
CONVPOOL_DECLARE_SEPARABLE_FORWARD
bool separable_forward_supports(const Conv2dGeometry& g, int64_t rank);
}  // namespace convpool

#undef CONVPOOL_DECLARE_SEPARABLE_FORWARD
