// The kernel registry's mechanism. Every operation (a public function: conv2d,
// conv2d_grad_input, max_pool2d, ...) has one ordered list of implementations, fastest
// first (registry.cpp). An entry holds its name, a `supports` predicate and one kernel per
// SIMD level. The predicates are compiled once, outside the per-ISA builds, and take the
// vector width (floats per vector) of the level in force: a case can suit a wide vector
// and not a narrow one.
//
// A call runs the first implementation that supports its case and is chosen for it: an
// entry may add a `chosen` predicate where it can run a case but a later entry measured
// faster (the registry passes it by there). A forced implementation
// (tests force each one in turn) runs only where it supports the case; anywhere else the
// call throws std::invalid_argument (ValueError in Python) naming the implementation and
// the case, so that a test never passes on another implementation's result.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/cpu_features.h"

namespace convpool::registry {

constexpr int kSimdLevels = 3;  // indexed by SimdLevel: baseline, avx2, avx512
constexpr int kMaxImplementations = 16;  // per operation (both layouts)

// Floats per vector at `level`: 4 (SSE2), 8 (AVX2), 16 (AVX-512).
int vector_floats(SimdLevel level);

template <typename Problem>
using Supports = bool (*)(const Problem& problem, int vector_floats);

// The predicate of an implementation that handles every case.
template <typename Problem>
bool every_case(const Problem&, int) {
  return true;
}

// The layout of the arrays an implementation's kernels read. Every problem type says
// which its case is (`problem.channels_last`); an implementation states its own once (its
// registry list), so it never sees a case of the other layout and its predicate need
// not ask.
enum class Layout { channels_first, channels_last };

template <typename Problem, typename Kernel>
struct Implementation {
  const char* name;
  Supports<Problem> supports;
  Kernel* kernel[kSimdLevels];
  Layout layout = Layout::channels_first;
  // Where it is the registry's choice among the cases it supports; null: all of them.
  Supports<Problem> chosen = nullptr;

  bool accepts(const Problem& problem, int vector_floats) const {
    return problem.channels_last == (layout == Layout::channels_last) &&
           supports(problem, vector_floats);
  }

  bool chosen_for(const Problem& problem, int vector_floats) const {
    return accepts(problem, vector_floats) &&
           (chosen == nullptr || chosen(problem, vector_floats));
  }
};

// `entries` with the `chosen` predicates of `choices` ({name, predicate} pairs) attached.
template <typename Problem, typename Kernel>
std::vector<Implementation<Problem, Kernel>> with_choices(
    std::vector<Implementation<Problem, Kernel>> entries,
    std::initializer_list<std::pair<const char*, Supports<Problem>>> choices) {
  for (const auto& [name, chosen] : choices) {
    bool found = false;
    for (auto& entry : entries)
      if (std::strcmp(entry.name, name) == 0) entry.chosen = chosen, found = true;
    if (!found) throw std::logic_error(std::string("a choice names no entry: ") + name);
  }
  return entries;
}

// One operation for one element type. `describe(problem)` (found by argument-dependent
// lookup) words a case for error messages. The forced name and the run counts are atomics,
// read and bumped on every call without a lock (a lock held by another thread at fork()
// would leave a child process unable to call any kernel).
template <typename Problem, typename Kernel>
struct Operation {
  const char* name;
  const char* dtype;
  std::vector<Implementation<Problem, Kernel>> implementations;
  // The forced implementation's name (a string literal of the registry), or null.
  mutable std::atomic<const char*> forced{nullptr};
  // How many calls ran each implementation (what lets a test prove that the
  // implementation it forced is the one that ran).
  mutable std::array<std::atomic<int64_t>, kMaxImplementations> runs{};

  int index_of(const char* wanted) const {
    for (size_t i = 0; i < implementations.size(); ++i)
      if (std::strcmp(implementations[i].name, wanted) == 0) return int(i);
    return -1;
  }

  int select(const Problem& problem, SimdLevel level) const {
    if (implementations.size() > size_t(kMaxImplementations))
      throw std::logic_error(std::string(name) + ": more implementations than kMaxImplementations");
    const int width = vector_floats(level);
    const char* wanted = forced.load(std::memory_order_relaxed);
    if (wanted == nullptr) {
      for (size_t i = 0; i < implementations.size(); ++i)
        if (implementations[i].chosen_for(problem, width)) return int(i);
      throw std::logic_error(std::string(name) + ": no implementation supports " +
                             describe(problem));
    }
    const int i = index_of(wanted);
    if (i < 0)
      throw std::invalid_argument(std::string(name) + ": the forced implementation '" + wanted +
                                  "' has no " + dtype + " kernel (" + describe(problem) + ")");
    if (!implementations[i].accepts(problem, width))
      throw std::invalid_argument(std::string(name) + ": the forced implementation '" + wanted +
                                  "' does not support this case (" + describe(problem) + ", " +
                                  dtype + ", " + simd_level_name(level) + ")");
    return i;
  }

  // The names of the implementations that support `problem` at `level`, in order.
  std::vector<std::string> supporting(const Problem& problem, SimdLevel level) const {
    std::vector<std::string> names;
    for (const auto& impl : implementations)
      if (impl.accepts(problem, vector_floats(level))) names.emplace_back(impl.name);
    return names;
  }

  int64_t runs_of(const char* wanted) const {
    const int i = index_of(wanted);
    return i < 0 ? 0 : runs[i].load(std::memory_order_relaxed);
  }

  template <typename... Args>
  auto run(const Problem& problem, Args... args) const {
    const SimdLevel level = simd_level();  // read once: another thread may change it
    const int i = select(problem, level);
    runs[i].fetch_add(1, std::memory_order_relaxed);
    return implementations[i].kernel[static_cast<int>(level)](args...);
  }
};

}  // namespace convpool::registry

// The three builds of a per-ISA kernel, in SimdLevel order.
#define CONVPOOL_PER_ISA(kernel) \
  { &::convpool::baseline::kernel, &::convpool::avx2::kernel, &::convpool::avx512::kernel }
// A kernel that does not depend on the SIMD level (the direct loop nests).
#define CONVPOOL_ANY_ISA(kernel) \
  { &::convpool::kernel, &::convpool::kernel, &::convpool::kernel }
