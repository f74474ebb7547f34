#include "machine/machine_limits.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "common/cpu_features.h"

namespace convpool {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct FmaChains {
  double (*run)(int64_t);
  int flops_per_iteration;
};

FmaChains fma_chains_in_use() {
  switch (simd_level()) {
    case SimdLevel::avx512: return {&avx512::fma_chains, avx512::fma_chains_flops_per_iteration()};
    case SimdLevel::avx2: return {&avx2::fma_chains, avx2::fma_chains_flops_per_iteration()};
    default: return {&baseline::fma_chains, baseline::fma_chains_flops_per_iteration()};
  }
}

// Runs `body` once per repeat until `min_seconds` have passed (at least 3 repeats) and
// returns the fastest: interference from other tenants only ever slows a repeat down.
template <typename Body>
double fastest_repeat(double min_seconds, Body body) {
  double best = 1e300, total = 0.0;
  for (int repeat = 0; repeat < 3 || total < min_seconds; ++repeat) {
    const Clock::time_point start = Clock::now();
    body();
    const double elapsed = seconds_since(start);
    best = std::min(best, elapsed);
    total += elapsed;
  }
  return best;
}

}  // namespace

Throughput measure_fma_peak(int threads, double min_seconds) {
  const FmaChains chains = fma_chains_in_use();
  // Size one repeat to about a tenth of the budget, from a short single-thread run.
  int64_t iterations = 1 << 14;
  for (;;) {
    const Clock::time_point start = Clock::now();
    volatile double sink = chains.run(iterations);
    (void)sink;
    if (seconds_since(start) > 2e-3 || iterations > (int64_t{1} << 40)) break;
    iterations *= 2;
  }
  const double probe = [&] {
    const Clock::time_point start = Clock::now();
    volatile double sink = chains.run(iterations);
    (void)sink;
    return seconds_since(start);
  }();
  iterations = std::max<int64_t>(1, static_cast<int64_t>(iterations * (min_seconds / 10) / probe));

  std::vector<double> sinks(static_cast<size_t>(threads));
  const double seconds = fastest_repeat(min_seconds, [&] {
#pragma omp parallel num_threads(threads)
    sinks[static_cast<size_t>(omp_get_thread_num())] = chains.run(iterations);
  });
  const double flops =
      static_cast<double>(iterations) * chains.flops_per_iteration * static_cast<double>(threads);
  return {flops / seconds, seconds};
}

Throughput measure_stream_bandwidth(int threads, int64_t bytes_per_array, double min_seconds) {
  const int64_t n = std::max<int64_t>(1, bytes_per_array / static_cast<int64_t>(sizeof(float)));
  std::unique_ptr<float[]> a(new float[static_cast<size_t>(n)]);
  std::unique_ptr<float[]> b(new float[static_cast<size_t>(n)]);
  float* const pa = a.get();
  float* const pb = b.get();
  // First touch by the same static schedule that streams, so pages sit near their thread.
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) {
    pa[i] = 1.0f;
    pb[i] = 0.0f;
  }
  const double seconds = fastest_repeat(min_seconds, [&] {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; ++i) pb[i] = 1.5f * pa[i];
  });
  const double bytes = 2.0 * static_cast<double>(n) * sizeof(float);
  return {bytes / seconds, seconds};
}

}  // namespace convpool
