// The low-rank convolution of namespace convpool (conv2d_separable.h): the build for the
// SIMD level in force.
#include "conv/conv2d_separable.h"

#include "common/cpu_features.h"
#include "registry/implementation.h"

namespace convpool {

namespace {

template <typename T>
using SeparableForward = void(const Conv2dGeometry&, int64_t, const T*, const T*, const T*,
                              const T*, T*, int64_t);

SeparableForward<float>* const kSeparableFloat[registry::kSimdLevels] =
    CONVPOOL_PER_ISA(separable_forward);
SeparableForward<double>* const kSeparableDouble[registry::kSimdLevels] =
    CONVPOOL_PER_ISA(separable_forward);

}  // namespace

void separable_forward(const Conv2dGeometry& g, int64_t rank, const float* x, const float* columns,
                       const float* rows, const float* bias, float* y, int64_t chunk) {
  kSeparableFloat[static_cast<int>(simd_level())](g, rank, x, columns, rows, bias, y, chunk);
}

void separable_forward(const Conv2dGeometry& g, int64_t rank, const double* x,
                       const double* columns, const double* rows, const double* bias, double* y,
                       int64_t chunk) {
  kSeparableDouble[static_cast<int>(simd_level())](g, rank, x, columns, rows, bias, y, chunk);
}

}  // namespace convpool
