// float16 <-> float32 conversion of whole buffers, for the kernels that keep float16 in
// memory and compute in float32 (kernels/pool2d_float16.cpp). float16 values travel as
// their IEEE binary16 bit patterns (uint16_t). float32 -> float16 rounds to nearest, ties
// to even, once; NaN stays NaN, overflow becomes inf, as NumPy's astype(float16) does.
//
// Compiled once per instruction set: F16C (vcvtph2ps / vcvtps2ph) in the AVX2 and AVX-512
// builds, the compiler's scalar _Float16 conversion in the baseline build. The functions
// in namespace convpool (half_convert_arrays.cpp) pick the build for the SIMD level in
// force and convert whole arrays with the team of threads (NumPy's own astype between
// float16 and float32 is scalar, tens of times slower).
#pragma once

#include <cstdint>

#define CONVPOOL_DECLARE_HALF_CONVERT                                   \
  void half_to_float(const uint16_t* in, float* out, int64_t count); \
  void float_to_half(const float* in, uint16_t* out, int64_t count);

namespace convpool::avx512 {
CONVPOOL_DECLARE_HALF_CONVERT
}
namespace convpool::avx2 {
CONVPOOL_DECLARE_HALF_CONVERT
}
namespace convpool::baseline {
CONVPOOL_DECLARE_HALF_CONVERT
}
namespace convpool {
CONVPOOL_DECLARE_HALF_CONVERT
}

#undef CONVPOOL_DECLARE_HALF_CONVERT
