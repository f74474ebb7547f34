// The whole-array float16 <-> float32 conversions of namespace convpool (half_convert.h):
// the build for the SIMD level in force (the registry's CONVPOOL_PER_ISA table), run on
// blocks shared by the team of threads.
#include <algorithm>
#include <cstdint>

#include "common/cpu_features.h"
#include "common/threading.h"
#include "pool/half_convert.h"
#include "registry/implementation.h"

namespace convpool {

namespace {

template <typename From, typename To>
using Convert = void(const From*, To*, int64_t);

// Blocks of 64K elements shared by the team (a memory-bound pass).
template <typename From, typename To>
void convert_in_blocks(Convert<From, To>* const (&per_level)[registry::kSimdLevels],
                       const From* in, To* out, int64_t count) {
  Convert<From, To>* const convert = per_level[static_cast<int>(simd_level())];
  constexpr int64_t kBlock = 65536;
  const int64_t blocks = (count + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(threads_for(count)) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kBlock;
    convert(in + begin, out + begin, std::min(kBlock, count - begin));
  }
}

Convert<uint16_t, float>* const kHalfToFloat[registry::kSimdLevels] =
    CONVPOOL_PER_ISA(half_to_float);
Convert<float, uint16_t>* const kFloatToHalf[registry::kSimdLevels] =
    CONVPOOL_PER_ISA(float_to_half);

}  // namespace

void half_to_float(const uint16_t* in, float* out, int64_t count) {
  convert_in_blocks(kHalfToFloat, in, out, count);
}

void float_to_half(const float* in, uint16_t* out, int64_t count) {
  convert_in_blocks(kFloatToHalf, in, out, count);
}

}  // namespace convpool
