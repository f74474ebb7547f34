// float16 <-> float32 buffer conversion (half_convert.h), compiled once per instruction set.
#include "pool/half_convert.h"

#include <cstring>

#if defined(CONVPOOL_ISA_avx512) || defined(CONVPOOL_ISA_avx2)
#include <immintrin.h>
#endif

namespace convpool::CONVPOOL_ISA {

#if defined(CONVPOOL_ISA_avx512) || defined(CONVPOOL_ISA_avx2)

// Eight values per instruction in both builds: the conversion runs on rows already in
// cache, and the 256-bit forms avoid AVX-512's frequency cost, as the pooling kernels do.
void half_to_float(const uint16_t* in, float* out, int64_t count) {
  int64_t k = 0;
  for (; k + 8 <= count; k += 8)
    _mm256_storeu_ps(out + k,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + k))));
  for (; k < count; ++k) out[k] = _cvtsh_ss(in[k]);
}

void float_to_half(const float* in, uint16_t* out, int64_t count) {
  int64_t k = 0;
  for (; k + 8 <= count; k += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in + k), _MM_FROUND_TO_NEAREST_INT));
  for (; k < count; ++k) out[k] = _cvtss_sh(in[k], _MM_FROUND_TO_NEAREST_INT);
}

#else  // baseline: no F16C on every x86-64; the compiler's IEEE conversion, one by one

void half_to_float(const uint16_t* in, float* out, int64_t count) {
  for (int64_t k = 0; k < count; ++k) {
    _Float16 h;
    std::memcpy(&h, in + k, sizeof h);
    out[k] = static_cast<float>(h);
  }
}

void float_to_half(const float* in, uint16_t* out, int64_t count) {
  for (int64_t k = 0; k < count; ++k) {
    const _Float16 h = static_cast<_Float16>(in[k]);
    std::memcpy(out + k, &h, sizeof h);
  }
}

#endif

}  // namespace convpool::CONVPOOL_ISA
