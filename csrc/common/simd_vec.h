// The native float vector of the instruction set a source file is being compiled for.
// Only for files compiled once per ISA (CONVPOOL_ISA_SOURCES in CMakeLists.txt): GCC
// vector extensions give each build its own width with one source text.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace convpool::CONVPOOL_ISA {

#if defined(CONVPOOL_ISA_avx512)
constexpr int V = 16;  // floats per vector; 32 vector registers
constexpr int kVectorRegisters = 32;
#elif defined(CONVPOOL_ISA_avx2)
constexpr int V = 8;
constexpr int kVectorRegisters = 16;
#else
constexpr int V = 4;  // SSE2, part of every x86-64
constexpr int kVectorRegisters = 16;
#endif

typedef float vec __attribute__((vector_size(V * sizeof(float))));
typedef float vec_unaligned __attribute__((vector_size(V * sizeof(float)), aligned(4), may_alias));

inline vec load(const float* p) { return *reinterpret_cast<const vec_unaligned*>(p); }
inline void store(float* p, vec v) { *reinterpret_cast<vec_unaligned*>(p) = v; }

// A plain splat: `vec{} + s` would cost an add (it must turn -0.0 into +0.0) before the
// broadcast, where the intrinsic folds into the FMA's memory operand.
inline vec broadcast(float s) {
#if defined(CONVPOOL_ISA_avx512)
  return _mm512_set1_ps(s);
#elif defined(CONVPOOL_ISA_avx2)
  return _mm256_set1_ps(s);
#else
  return _mm_set1_ps(s);
#endif
}

inline float horizontal_sum(vec v) {
  float total = 0.0f;
  for (int i = 0; i < V; ++i) total += v[i];
  return total;
}

typedef int32_t lane_index __attribute__((vector_size(V * sizeof(int32_t))));

// v[l] = base[index[l]].
inline vec gather(const float* base, lane_index index) {
  // The masked forms, all lanes on: the plain ones start from an undefined register,
  // which GCC 12 reports as maybe-uninitialized.
#if defined(CONVPOOL_ISA_avx512)
  return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), __mmask16(0xFFFF), (__m512i)index, base, 4);
#elif defined(CONVPOOL_ISA_avx2)
  return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, (__m256i)index,
                                  _mm256_castsi256_ps(_mm256_set1_epi32(-1)), 4);
#else
  vec v;
  for (int l = 0; l < V; ++l) v[l] = base[index[l]];
  return v;
#endif
}

// Stores the first n (<= V) lanes of v.
inline void store_first(float* p, vec v, int64_t n) {
#if defined(CONVPOOL_ISA_avx512)
  _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1), v);
#else
  for (int64_t l = 0; l < n; ++l) p[l] = v[l];
#endif
}

inline lane_index min_lanes(lane_index a, int32_t bound) {
  lane_index b;
  for (int l = 0; l < V; ++l) b[l] = a[l] < bound ? a[l] : bound;
  return b;
}

// The even and odd lanes of the 2V floats (a, b): even(a, b)[l] = (a, b)[2l].
inline vec even_lanes(vec a, vec b) {
  lane_index index;
  for (int l = 0; l < V; ++l) index[l] = 2 * l;
  return __builtin_shuffle(a, b, index);
}
inline vec odd_lanes(vec a, vec b) {
  lane_index index;
  for (int l = 0; l < V; ++l) index[l] = 2 * l + 1;
  return __builtin_shuffle(a, b, index);
}

// Transposes V vectors of V floats in place (afterwards r[i][l] is the former r[l][i]):
// log2(V) rounds of two-source shuffles, each exchanging blocks of s lanes between rows
// i and i + s. Used with AVX-512, where each shuffle is one vpermt2ps.

inline void transpose(vec* r) {
  for (int s = V / 2; s >= 1; s /= 2) {
    lane_index low, high;  // lanes of (a, b): b's lanes are numbered V..2V-1
    for (int l = 0; l < V; ++l) {
      low[l] = (l & s) ? V + l - s : l;
      high[l] = (l & s) ? V + l : l + s;
    }
    for (int i = 0; i < V; ++i) {
      if (i & s) continue;
      const vec a = r[i], b = r[i + s];
      r[i] = __builtin_shuffle(a, b, low);
      r[i + s] = __builtin_shuffle(a, b, high);
    }
  }
}

namespace {

// A heap array for the files compiled once per ISA. std::vector would do, but its
// out-of-line member templates (fill, grow), compiled with this file's ISA flags, are
// merged by the linker with the copies of the other builds: the baseline path could end
// up running AVX-512 code on a CPU without it. This class has internal linkage, so each
// build keeps its own code (.ci/check-isa-symbols verifies that no such merge remains).
template <typename T>
class Array {
 public:
  Array() = default;
  explicit Array(size_t n) : data_(new T[n]()), size_(n), capacity_(n) {}

  void assign(size_t n, const T& value) {
    if (n > capacity_) {
      data_.reset(new T[n]);
      capacity_ = n;
    }
    size_ = n;
    for (size_t i = 0; i < n; ++i) data_[i] = value;
  }
  void push_back(const T& value) {
    if (size_ == capacity_) {
      const size_t grown = capacity_ ? 2 * capacity_ : 8;
      std::unique_ptr<T[]> larger(new T[grown]);
      for (size_t i = 0; i < size_; ++i) larger[i] = data_[i];
      data_ = std::move(larger);
      capacity_ = grown;
    }
    data_[size_++] = value;
  }

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* begin() { return data_.get(); }
  T* end() { return data_.get() + size_; }
  const T* begin() const { return data_.get(); }
  const T* end() const { return data_.get() + size_; }

 private:
  std::unique_ptr<T[]> data_;
  size_t size_ = 0, capacity_ = 0;
};

}  // namespace

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace convpool::CONVPOOL_ISA
