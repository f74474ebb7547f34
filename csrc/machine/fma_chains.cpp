// The FMA chains of the peak measurement, compiled once per instruction set.
#include "common/simd_vec.h"
#include "machine/machine_limits.h"

namespace convpool::CONVPOOL_ISA {

namespace {

inline vec multiply_add(vec acc, vec a, vec b) {
#if defined(CONVPOOL_ISA_avx512)
  return _mm512_fmadd_ps(acc, a, b);
#elif defined(CONVPOOL_ISA_avx2)
  return _mm256_fmadd_ps(acc, a, b);
#else
  return acc * a + b;  // SSE2 has no FMA: a multiply and an add, counted as one FMA
#endif
}

}  // namespace

// Independent accumulators: two FMA pipes x a latency of 4-5 cycles need at least 10 chains
// in flight. 16 named accumulators (an array would live in memory) on a 32-register ISA; 12
// on a 16-register one, leaving room for the two constants.
constexpr int kChains = kVectorRegisters >= 32 ? 16 : 12;

// Returns a value derived from every accumulator so that no FMA can be dropped.
double fma_chains(int64_t iterations) {
  const vec a = broadcast(0.999999f), b = broadcast(1e-7f);
  vec c0 = broadcast(0.001f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
  vec c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0;
  for (int64_t i = 0; i < iterations; ++i) {
    c0 = multiply_add(c0, a, b); c1 = multiply_add(c1, a, b);
    c2 = multiply_add(c2, a, b); c3 = multiply_add(c3, a, b);
    c4 = multiply_add(c4, a, b); c5 = multiply_add(c5, a, b);
    c6 = multiply_add(c6, a, b); c7 = multiply_add(c7, a, b);
    c8 = multiply_add(c8, a, b); c9 = multiply_add(c9, a, b);
    c10 = multiply_add(c10, a, b); c11 = multiply_add(c11, a, b);
    // An empty asm that claims to change the accumulators keeps the compiler from folding
    // the loop into a closed form or merging identical chains; it adds no instruction.
    asm volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5));
    asm volatile("" : "+v"(c6), "+v"(c7), "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));
    if constexpr (kChains == 16) {
      c12 = multiply_add(c12, a, b); c13 = multiply_add(c13, a, b);
      c14 = multiply_add(c14, a, b); c15 = multiply_add(c15, a, b);
      asm volatile("" : "+v"(c12), "+v"(c13), "+v"(c14), "+v"(c15));
    }
  }
  const vec total = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11 + c12 + c13 +
                    c14 + c15;
  return static_cast<double>(horizontal_sum(total));
}

int fma_chains_flops_per_iteration() { return 2 * kChains * V; }

}  // namespace convpool::CONVPOOL_ISA
