#include "common/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace convpool {

namespace {

SimdLevel detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("fma"))
    return SimdLevel::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::avx2;
#endif
  return SimdLevel::baseline;
}

SimdLevel initial_level() {
  SimdLevel level = detect();
  SimdLevel requested;
  const char* env = std::getenv("CONVPOOL_SIMD");
  if (env != nullptr && parse_simd_level(env, &requested) && requested < level) level = requested;
  return level;
}

std::atomic<SimdLevel>& active_level() {
  static std::atomic<SimdLevel> level{initial_level()};
  return level;
}

}  // namespace

SimdLevel detected_simd_level() {
  static const SimdLevel level = detect();
  return level;
}

SimdLevel simd_level() { return active_level().load(std::memory_order_relaxed); }

void set_simd_level(SimdLevel level) {
  if (level > detected_simd_level()) level = detected_simd_level();
  active_level().store(level, std::memory_order_relaxed);
}

void force_simd_level_unchecked(SimdLevel level) {
  active_level().store(level, std::memory_order_relaxed);
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::avx512: return "avx512";
    case SimdLevel::avx2: return "avx2";
    default: return "baseline";
  }
}

bool parse_simd_level(const char* name, SimdLevel* level) {
  for (SimdLevel candidate : {SimdLevel::baseline, SimdLevel::avx2, SimdLevel::avx512}) {
    if (std::strcmp(name, simd_level_name(candidate)) == 0) {
      *level = candidate;
      return true;
    }
  }
  return false;
}

}  // namespace convpool
