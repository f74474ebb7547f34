// The kernel registry's mechanism. Every operation (a public function: conv2d,
// conv2d_grad_input, max_pool2d, ...) has one ordered list of implementations, fastest
// first (registry.cpp). An entry holds its name, a `supports` predicate and one kernel per
// SIMD level. The predicates are compiled once, outside the per-ISA builds, and take the
// vector width (floats per vector) of the level in force: a case can suit a wide vector
// and not a narrow one.
//
// A call runs the first implementation that supports its case. A forced implementation
// (tests force each one in turn) runs only where it supports the case; anywhere else the
// call throws std::invalid_argument (ValueError in Python) naming the implementation and
// the case, so that a test never passes on another implementation's result.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/cpu_features.h"

namespace convpool::registry {

constexpr int kSimdLevels = 3;  // indexed by SimdLevel: baseline, avx2, avx512

// Floats per vector at `level`: 4 (SSE2), 8 (AVX2), 16 (AVX-512).
int vector_floats(SimdLevel level);

// The implementation forced for operation `op`, or "" for the default order.
std::string forced(const std::string& op);
// Forces `name` for `op` ("" restores the default order); the caller has checked the name.
void force(const std::string& op, const std::string& name);

// How many calls of `op` have run implementation `name` since the module loaded (all
// threads): what lets a test prove that the implementation it forced is the one that ran.
void count_run(const char* op, const char* name);
int64_t runs(const std::string& op, const std::string& name);

template <typename Problem>
using Supports = bool (*)(const Problem& problem, int vector_floats);

// The predicate of an implementation that handles every case.
template <typename Problem>
bool every_case(const Problem&, int) {
  return true;
}

template <typename Problem, typename Kernel>
struct Implementation {
  const char* name;
  Supports<Problem> supports;
  Kernel* kernel[kSimdLevels];
};

// One operation for one element type. `describe(problem)` (found by argument-dependent
// lookup) words a case for error messages.
template <typename Problem, typename Kernel>
struct Operation {
  const char* name;
  const char* dtype;
  std::vector<Implementation<Problem, Kernel>> implementations;

  const Implementation<Problem, Kernel>& select(const Problem& problem, SimdLevel level) const {
    const int width = vector_floats(level);
    const std::string wanted = forced(name);
    for (const auto& impl : implementations) {
      if (wanted.empty()) {
        if (impl.supports(problem, width)) return impl;
      } else if (wanted == impl.name) {
        if (impl.supports(problem, width)) return impl;
        throw std::invalid_argument(std::string(name) + ": the forced implementation '" + wanted +
                                    "' does not support this case (" + describe(problem) + ", " +
                                    dtype + ", " + simd_level_name(level) + ")");
      }
    }
    if (!wanted.empty())
      throw std::invalid_argument(std::string(name) + ": the forced implementation '" + wanted +
                                  "' has no " + dtype + " kernel (" + describe(problem) + ")");
    throw std::logic_error(std::string(name) + ": no implementation supports " + describe(problem));
  }

  // The names of the implementations that support `problem` at `level`, in order.
  std::vector<std::string> supporting(const Problem& problem, SimdLevel level) const {
    std::vector<std::string> names;
    for (const auto& impl : implementations)
      if (impl.supports(problem, vector_floats(level))) names.emplace_back(impl.name);
    return names;
  }

  template <typename... Args>
  auto run(const Problem& problem, Args... args) const {
    const SimdLevel level = simd_level();  // read once: another thread may change it
    const auto& impl = select(problem, level);
    count_run(name, impl.name);
    return impl.kernel[static_cast<int>(level)](args...);
  }
};

}  // namespace convpool::registry

// The three builds of a per-ISA kernel, in SimdLevel order.
#define CONVPOOL_PER_ISA(kernel) \
  { &::convpool::baseline::kernel, &::convpool::avx2::kernel, &::convpool::avx512::kernel }
// A kernel that does not depend on the SIMD level (the direct loop nests).
#define CONVPOOL_ANY_ISA(kernel) \
  { &::convpool::kernel, &::convpool::kernel, &::convpool::kernel }
