// Pieces the pooling kernels share (both layouts): the max rule, the taps of a window that
// land inside the input, average pooling's divisors, the fast-path shapes, scratch buffers
// and the division of work between threads.
//
// Everything here has internal linkage (unnamed namespace): the kernel files are compiled
// once per instruction set, and an inline function with external linkage compiled with
// AVX-512 in one of them could be the copy the linker keeps for all.
#pragma once

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>

#include "common/geometry.h"
#include "common/threading.h"
#include "pool/pool2d.h"

namespace convpool::pool {
namespace {

// Whether `v` replaces the running maximum `best`: it is larger, or it is the first NaN
// (a NaN then stays, so the first NaN in scan order wins). Scanning in row-major order
// with this rule gives the first occurrence of the maximum. (Written with || and &&:
// GCC vectorises this form best, measured.)
template <typename T>
inline bool replaces(T v, T best) {
  return v > best || (v != v && best == best);
}

// The running maximum when only the value matters: any NaN sticks.
template <typename T>
inline T max_propagating_nan(T v, T best) {
  return (v > best || v != v) ? v : best;
}

// Taps [begin, end) of output position `o` that land inside the input on this axis.
struct TapRange {
  int64_t begin;
  int64_t end;
};

inline TapRange taps_inside(const WindowAxis& a, int64_t o) {
  const int64_t start = o * a.stride - a.pad_before;  // input index of tap 0
  if (a.dilation == 1) {  // the common case, without the divisions (measured: 10% of a 3x3 pass)
    const int64_t begin = start < 0 ? -start : 0;
    const int64_t end = start <= a.in_size - 1 ? std::min(a.kernel, a.in_size - start) : 0;
    return {begin, std::max(begin, end)};
  }
  int64_t begin = 0;
  if (start < 0) begin = (-start + a.dilation - 1) / a.dilation;
  int64_t end = 0;
  if (start <= a.in_size - 1) end = std::min(a.kernel, (a.in_size - 1 - start) / a.dilation + 1);
  return {begin, std::max(begin, end)};
}

// Output positions [begin, end) whose every tap lies inside the input (the rest are edges).
inline TapRange interior(const WindowAxis& a) {
  const int64_t begin = a.first_inside(0);
  const int64_t end = a.last_inside(a.kernel - 1);
  return {begin, std::max(begin, end)};
}

// Output rows [i0, i1) of one plane of a window reduction without dilation that
// `combine(value, accumulated)` defines (a sum, a maximum): each window's input rows are
// combined into `column` (one input row, contiguous, vectorised), which is then combined
// across the window's columns, KW at a time with column stride SX in the interior.
template <typename T, int KW, int SX, typename Combine>
void reduce_window_rows(const WindowAxis& R, const WindowAxis& C, const T* in, T* out, int64_t i0,
                        int64_t i1, T* __restrict column, Combine combine) {
  const TapRange inner = interior(C);
  const int64_t ow = C.out_size, w = C.in_size;
  for (int64_t i = i0; i < i1; ++i) {
    const TapRange rs = taps_inside(R, i);
    const T* first = in + R.input_index(i, rs.begin) * w;
    for (int64_t c = 0; c < w; ++c) column[c] = first[c];
    for (int64_t s = rs.begin + 1; s < rs.end; ++s) {
      const T* row = in + R.input_index(i, s) * w;
      for (int64_t c = 0; c < w; ++c) column[c] = combine(row[c], column[c]);
    }
    T* __restrict y = out + i * ow;
    const T* base = column - C.pad_before;
    for (int64_t j = inner.begin; j < inner.end; ++j) {
      T acc = base[j * SX];
      for (int t = 1; t < KW; ++t) acc = combine(base[j * SX + t], acc);
      y[j] = acc;
    }
    for (const TapRange edge : {TapRange{0, inner.begin}, TapRange{inner.end, ow}}) {
      for (int64_t j = edge.begin; j < edge.end; ++j) {
        const TapRange ts = taps_inside(C, j);
        T acc = base[j * SX + ts.begin];
        for (int64_t t = ts.begin + 1; t < ts.end; ++t) acc = combine(base[j * SX + t], acc);
        y[j] = acc;
      }
    }
  }
}

// The (kernel width, column stride) pairs with a vectorised row kernel, for windows without
// column dilation. `f` is called with both as compile-time constants; false if none fits.
template <typename F>
bool with_fast_row_shape(const WindowAxis& cols, F&& f) {
  using std::integral_constant;
  if (cols.dilation != 1) return false;
  const int64_t k = cols.kernel, s = cols.stride;
  if (k == 2 && s == 2) return f(integral_constant<int, 2>{}, integral_constant<int, 2>{}), true;
  if (k == 3 && s == 2) return f(integral_constant<int, 3>{}, integral_constant<int, 2>{}), true;
  if (k == 3 && s == 1) return f(integral_constant<int, 3>{}, integral_constant<int, 1>{}), true;
  if (k == 2 && s == 1) return f(integral_constant<int, 2>{}, integral_constant<int, 1>{}), true;
  if (k == 3 && s == 3) return f(integral_constant<int, 3>{}, integral_constant<int, 3>{}), true;
  if (k == 4 && s == 4) return f(integral_constant<int, 4>{}, integral_constant<int, 4>{}), true;
  return false;
}

// An uninitialised array owned by one thread (no std::vector: see the note above).
template <typename T>
class Scratch {
 public:
  explicit Scratch(int64_t size) : data_(new T[static_cast<size_t>(std::max<int64_t>(size, 1))]) {}
  T* get() { return data_.get(); }
  const T* get() const { return data_.get(); }
  T& operator[](int64_t k) { return data_[static_cast<size_t>(k)]; }
  const T& operator[](int64_t k) const { return data_[static_cast<size_t>(k)]; }

 private:
  std::unique_ptr<T[]> data_;
};

// One Scratch per thread of a team, all allocated before the parallel region: an
// allocation failure inside one could not be reported (the exception may not leave it,
// and the process would abort), outside it becomes a MemoryError.
// Each share is padded by two cache lines: small planes' shares (a 13-float row) would
// otherwise share a line between threads, and the writes bouncing it between cores made
// two threads 2.7x slower than one on 13x13 planes (measured).
template <typename T>
class TeamScratch {
 public:
  TeamScratch(int team, int64_t size)
      : stride_(static_cast<size_t>(std::max<int64_t>(size, 1)) + kPadding),
        data_(new T[static_cast<size_t>(team) * stride_]) {}
  // The calling thread's share.
  T* get() { return data_.get() + static_cast<size_t>(omp_get_thread_num()) * stride_; }

 private:
  static constexpr size_t kPadding = (128 + sizeof(T) - 1) / sizeof(T);
  size_t stride_;
  std::unique_ptr<T[]> data_;
};

// The divisor of output (i, j): row factor i times column factor j (an override is all
// in the column factors).
template <typename T>
class Divisors {
 public:
  Divisors(const PoolGeometry& g, const AvgPoolDivisor& d)
      : rows_(g.rows.out_size), cols_(g.cols.out_size) {
    const int64_t oh = g.rows.out_size, ow = g.cols.out_size;
    if (d.override_value != 0) {
      for (int64_t i = 0; i < oh; ++i) rows_[i] = T(1);
      for (int64_t j = 0; j < ow; ++j) cols_[j] = static_cast<T>(d.override_value);
      return;
    }
    pool::Scratch<int64_t> counts(std::max(oh, ow));
    window_counts(g.rows, d.count_include_pad, counts.get());
    for (int64_t i = 0; i < oh; ++i) rows_[i] = static_cast<T>(counts[i]);
    window_counts(g.cols, d.count_include_pad, counts.get());
    for (int64_t j = 0; j < ow; ++j) cols_[j] = static_cast<T>(counts[j]);
  }
  T row(int64_t i) const { return rows_[i]; }
  const T* cols() const { return cols_.get(); }

 private:
  pool::Scratch<T> rows_;
  pool::Scratch<T> cols_;
};

// The native vector of the build compiling this file: 64, 32 or 16 bytes.
#if defined(CONVPOOL_ISA_avx512)
constexpr int kVectorBytes = 64;
#elif defined(CONVPOOL_ISA_avx2)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif

// Copies n elements to dst, with non-temporal stores from the first vector-aligned byte:
// an output written once and not read back soon then costs one write of its cache lines
// instead of a read (for ownership) and a write, a third of a pooling pass's traffic.
// A thread must call _mm_sfence() before the result is read elsewhere.
template <typename T>
inline void stream_copy(const T* src, int64_t n, T* dst) {
  constexpr size_t kVector = kVectorBytes;
  const char* from = reinterpret_cast<const char*>(src);
  char* to = reinterpret_cast<char*>(dst);
  size_t bytes = static_cast<size_t>(n) * sizeof(T);
  const size_t head = std::min(bytes, (kVector - reinterpret_cast<uintptr_t>(to) % kVector) % kVector);
  std::memcpy(to, from, head);
  from += head, to += head, bytes -= head;
  for (; bytes >= kVector; from += kVector, to += kVector, bytes -= kVector) {
#if defined(CONVPOOL_ISA_avx512)
    _mm512_stream_si512(reinterpret_cast<__m512i*>(to), _mm512_loadu_si512(from));
#elif defined(CONVPOOL_ISA_avx2)
    _mm256_stream_si256(reinterpret_cast<__m256i*>(to), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(from)));
#else
    _mm_stream_si128(reinterpret_cast<__m128i*>(to), _mm_loadu_si128(reinterpret_cast<const __m128i*>(from)));
#endif
  }
  std::memcpy(to, from, bytes);
}

// Threads worth a team for `elements` elements of streaming work: starting one costs
// microseconds, so small calls run on fewer threads (one below 64K elements).
inline int threads_for(int64_t elements) {
  const int64_t wanted = elements / 65536 + 1;
  return static_cast<int>(std::min<int64_t>(num_threads(), wanted));
}

// Work items per chunk of a dynamic schedule, for items of `elements` elements each: about
// 16K elements a chunk. Dynamic, because the machines are shared: a thread that loses its
// core for a while must not hold the others up at the end. Results do not depend on it:
// every item is computed the same way whichever thread takes it.
inline int64_t chunk_for(int64_t elements_per_item) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(elements_per_item, 1));
}

// Work items for a loop over `planes` planes of `rows` rows: whole planes when there are
// enough to keep every thread busy, otherwise each plane cut into chunks of rows.
class RowChunks {
 public:
  RowChunks(int64_t planes, int64_t rows) : planes_(planes), rows_(rows) {
    const int64_t wanted = 4 * static_cast<int64_t>(num_threads());
    if (planes > 0 && planes < wanted && rows > 1)
      chunks_ = std::min(rows, (wanted + planes - 1) / planes);
  }
  int64_t items() const { return planes_ * chunks_; }
  void get(int64_t item, int64_t* plane, int64_t* begin, int64_t* end) const {
    *plane = item / chunks_;
    split_range(rows_, chunks_, item % chunks_, begin, end);
  }

 private:
  int64_t planes_;
  int64_t rows_;
  int64_t chunks_ = 1;
};

}  // namespace
}  // namespace convpool::pool
