// The machine's physical limits, measured where the code runs: the fp32 FMA peak and the
// streaming memory bandwidth. The benchmark suite divides every rate by these, so they
// must come from this CPU and this build, never from a table.
#pragma once

#include <cstdint>

namespace convpool {

struct Throughput {
  double per_second;  // FLOP/s or bytes/s, the best of the repeats
  double seconds;     // wall time of the best repeat
};

// fp32 multiply-adds on `threads` threads, each running independent FMA chains on the
// widest vectors of the SIMD level in use (enough chains to keep two FMA pipes busy for
// their whole latency). Counts 2 flops per lane per FMA.
Throughput measure_fma_peak(int threads, double min_seconds);

// b[i] = 1.5 * a[i] over arrays far larger than the caches, on `threads` threads; counts
// the bytes read plus the bytes written.
Throughput measure_stream_bandwidth(int threads, int64_t bytes_per_array, double min_seconds);

// Per-ISA: runs the chains `iterations` times; flops per iteration from the second.
#define CONVPOOL_DECLARE_FMA_CHAINS(isa)                 \
  namespace isa {                                        \
  double fma_chains(int64_t iterations);                 \
  int fma_chains_flops_per_iteration();                  \
  }
CONVPOOL_DECLARE_FMA_CHAINS(baseline)
CONVPOOL_DECLARE_FMA_CHAINS(avx2)
CONVPOOL_DECLARE_FMA_CHAINS(avx512)
#undef CONVPOOL_DECLARE_FMA_CHAINS

}  // namespace convpool
