// The float16 pooling and conversion functions of namespace convpool: each runs the build
// (AVX-512, AVX2, baseline) for the SIMD level in force, as the registry does for float32.
// The conversions take whole arrays, with the team of threads.
#include <algorithm>
#include <cstdint>
#include <memory>

#include "common/cpu_features.h"
#include "common/threading.h"
#include "pool/half_convert.h"
#include "pool/pool_half.h"

namespace convpool {

namespace {

template <typename F>
F per_isa(F baseline, F avx2, F avx512) {
  switch (simd_level()) {
    case SimdLevel::avx512: return avx512;
    case SimdLevel::avx2: return avx2;
    default: return baseline;
  }
}

}  // namespace

// Whole arrays: blocks of 64K elements shared by the team (a memory-bound pass).
template <typename From, typename To>
void convert_in_blocks(void (*convert)(const From*, To*, int64_t), const From* in, To* out,
                       int64_t count) {
  constexpr int64_t kBlock = 65536;
  const int64_t blocks = (count + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(threads_for(count)) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kBlock;
    convert(in + begin, out + begin, std::min(kBlock, count - begin));
  }
}

void half_to_float(const uint16_t* in, float* out, int64_t count) {
  convert_in_blocks(per_isa(&baseline::half_to_float, &avx2::half_to_float,
                            &avx512::half_to_float), in, out, count);
}

void float_to_half(const float* in, uint16_t* out, int64_t count) {
  convert_in_blocks(per_isa(&baseline::float_to_half, &avx2::float_to_half,
                            &avx512::float_to_half), in, out, count);
}

void max_pool2d_forward_half(const PoolGeometry& g, const uint16_t* x, uint16_t* y) {
  per_isa(&baseline::max_pool2d_forward_half, &avx2::max_pool2d_forward_half,
          &avx512::max_pool2d_forward_half)(g, x, y);
}

void avg_pool2d_forward_half(const PoolGeometry& g, const AvgPoolDivisor& d, const uint16_t* x,
                             uint16_t* y) {
  const int64_t oh = g.rows.out_size, ow = g.cols.out_size;
  const std::unique_ptr<float[]> rows(new float[static_cast<size_t>(oh > 0 ? oh : 1)]);
  const std::unique_ptr<float[]> cols(new float[static_cast<size_t>(ow > 0 ? ow : 1)]);
  if (d.override_value != 0) {
    for (int64_t i = 0; i < oh; ++i) rows[i] = 1.0f;
    for (int64_t j = 0; j < ow; ++j) cols[j] = static_cast<float>(d.override_value);
  } else {
    const std::unique_ptr<int64_t[]> counts(new int64_t[static_cast<size_t>(oh > ow ? oh : ow) + 1]);
    window_counts(g.rows, d.count_include_pad, counts.get());
    for (int64_t i = 0; i < oh; ++i) rows[i] = static_cast<float>(counts[i]);
    window_counts(g.cols, d.count_include_pad, counts.get());
    for (int64_t j = 0; j < ow; ++j) cols[j] = static_cast<float>(counts[j]);
  }
  per_isa(&baseline::avg_pool2d_forward_half, &avx2::avg_pool2d_forward_half,
          &avx512::avg_pool2d_forward_half)(g, rows.get(), cols.get(), x, y);
}

}  // namespace convpool
