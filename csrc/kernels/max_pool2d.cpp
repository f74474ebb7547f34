// Max pooling: forward (with or without argmax indices) and the gradient, which sends each
// output gradient to the input pixel its index names.
//
// Forward works one output row at a time. For the common window shapes (pool_common.h)
// the work runs along whole rows, vectorised:
// - with indices, the window's input rows are scanned top to bottom and, within a row,
//   taps left to right, so that the `replaces` rule yields the first occurrence in
//   row-major order;
// - without, the window's input rows are first reduced to one row of column maxima
//   (contiguous), which is then pooled across columns: fewer operations, same value.
// Both (the value path from 3 taps a row) first check whether the rows they read hold a
// NaN: most inputs have none, and then a plain `>` (one compare, or one max instruction;
// no NaN bookkeeping) gives the same result.
// Edge columns whose window is clipped by the padding, and unusual shapes, go through the
// per-window loop.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the
// registry line names both (registry/registry.cpp).
#include <cstdint>

#include "common/geometry.h"
#include "pool/pool2d.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
namespace convpool {

// Every case: the kernels take any window, padding and plane.
bool max_pool2d_forward_supports(const PoolGeometry&, int) { return true; }
bool max_pool2d_grad_input_supports(const PoolGeometry&, int) { return true; }

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>

#include "common/threading.h"
#include "pool/pool_common.h"

#if defined(CONVPOOL_ISA_avx512)
// Measured on Zen 4: these loops run faster on 256-bit vectors (strided windows need
// fewer cross-lane shuffles); AVX-512VL still brings its masks and 32 registers.
#pragma GCC target("prefer-vector-width=256")
#endif

namespace convpool::CONVPOOL_ISA {

namespace {

using pool::max_propagating_nan;

// An input up to this size is taken to stay in cache between two passes over it (L2).
constexpr int64_t kCacheResidentBytes = int64_t(1) << 20;
using pool::replaces;
using pool::TapRange;

// One window, taps clipped to the input; returns the flat index of its maximum.
template <typename T>
int64_t max_window(const PoolGeometry& g, const T* in, int64_t i, int64_t j, T* value) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const TapRange rs = pool::taps_inside(R, i), ts = pool::taps_inside(C, j);
  T best = -std::numeric_limits<T>::infinity();
  int64_t at = -1;
  for (int64_t s = rs.begin; s < rs.end; ++s) {
    const int64_t r = R.input_index(i, s);
    for (int64_t t = ts.begin; t < ts.end; ++t) {
      const int64_t k = r * C.in_size + C.input_index(j, t);
      if (at < 0 || replaces(in[k], best)) {
        best = in[k];
        at = k;
      }
    }
  }
  *value = best;
  return at;
}

// The rule for "v replaces the running maximum m": without NaN in the input, a plain
// `v > m` (one compare; the maximum itself is a max instruction); otherwise `replaces`.
template <bool NaNFree, typename T>
inline bool takes(T v, T m) {
  if constexpr (NaNFree) return v > m;
  return replaces(v, m);
}

// Output columns [j0, j1) of one output row whose windows lie inside the input's columns,
// all taps of one input row at once. `best` holds the running maximum, `offset` where it
// is: its distance from the first pixel of its window, `row_offset + t` for tap t here.
template <typename T, int KW, int SX, bool NaNFree>
void scan_input_row(const T* window_row, int32_t row_offset, int64_t j0, int64_t j1,
                    T* __restrict best, int32_t* __restrict offset) {
  for (int64_t j = j0; j < j1; ++j) {
    T m = best[j];
    int32_t o = offset[j];
    for (int t = 0; t < KW; ++t) {
      const T v = window_row[j * SX + t];
      const bool take = takes<NaNFree>(v, m);
      m = take ? v : m;
      o = take ? row_offset + t : o;
    }
    best[j] = m;
    offset[j] = o;
  }
}

// Output rows [i0, i1) of one plane with their indices. The plane must have fewer than
// 2^31 pixels (offsets are kept in 32 bits); `offset` holds one output row.
// The row is built in `best` and `idx` (one output row each) and streamed out.
template <typename T, int KW, int SX, bool NaNFree>
void forward_rows_with_indices(const PoolGeometry& g, const T* in, T* out, int64_t* indices,
                               int64_t i0, int64_t i1, int32_t* offset, T* best, int64_t* idx) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const TapRange inner = pool::interior(C);
  const int64_t ow = C.out_size, w = C.in_size;
  for (int64_t i = i0; i < i1; ++i) {
    const TapRange rs = pool::taps_inside(R, i);
    // Until a tap wins, the first one inside the input (all -inf: it stays).
    const int32_t first_offset = static_cast<int32_t>(rs.begin * R.dilation * w);
    for (int64_t j = inner.begin; j < inner.end; ++j) {
      best[j] = -std::numeric_limits<T>::infinity();
      offset[j] = first_offset;
    }
    const int64_t origin = R.input_index(i, 0) * w - C.pad_before;  // window (i, 0), tap (0, 0)
    for (int64_t s = rs.begin; s < rs.end; ++s) {
      const int64_t row_offset = s * R.dilation * w;
      scan_input_row<T, KW, SX, NaNFree>(in + origin + row_offset,
                                         static_cast<int32_t>(row_offset), inner.begin,
                                         inner.end, best, offset);
    }
    for (int64_t j = inner.begin; j < inner.end; ++j) idx[j] = origin + j * SX + offset[j];
    for (const TapRange edge : {TapRange{0, inner.begin}, TapRange{inner.end, ow}})
      for (int64_t j = edge.begin; j < edge.end; ++j) idx[j] = max_window(g, in, i, j, &best[j]);
    pool::stream_copy(best, ow, out + i * ow);
    pool::stream_copy(idx, ow, indices + i * ow);
  }
}

// Output rows [i0, i1) of one plane, values only; `column_max` holds one input row.
template <typename T, int KW, int SX, bool NaNFree>
void forward_rows_values(const PoolGeometry& g, const T* in, T* out, int64_t i0, int64_t i1,
                         T* __restrict column_max) {
  pool::reduce_window_rows<T, KW, SX>(g.rows, g.cols, in, out, i0, i1, column_max, [](T v, T best) {
    if constexpr (NaNFree) return v > best ? v : best;  // one max instruction
    return max_propagating_nan(v, best);
  });
}

// Whether the input rows that output rows [i0, i1) read hold a NaN: one vectorised pass
// (which also brings them into cache) that lets the scan use the cheaper NaN-free rule.
template <typename T>
bool rows_hold_nan(const PoolGeometry& g, const T* in, int64_t i0, int64_t i1) {
  const WindowAxis& R = g.rows;
  const int64_t r0 = R.input_index(i0, pool::taps_inside(R, i0).begin);
  const int64_t r1 = R.input_index(i1 - 1, pool::taps_inside(R, i1 - 1).end - 1) + 1;
  const T* p = in + r0 * g.cols.in_size;
  const int64_t n = (r1 - r0) * g.cols.in_size;
  constexpr int64_t block = 1024;
  for (int64_t k = 0; k < n; k += block) {
    int found = 0;
    const int64_t end = std::min(n, k + block);
    for (int64_t e = k; e < end; ++e) found |= p[e] != p[e];
    if (found) return true;
  }
  return false;
}

template <typename T>
void forward_rows_generic(const PoolGeometry& g, const T* in, T* out, int64_t* indices,
                          int64_t i0, int64_t i1) {
  const int64_t ow = g.cols.out_size;
  for (int64_t i = i0; i < i1; ++i) {
    for (int64_t j = 0; j < ow; ++j) {
      const int64_t k = max_window(g, in, i, j, &out[i * ow + j]);
      if (indices) indices[i * ow + j] = k;
    }
  }
}

template <typename T>
void forward(const PoolGeometry& g, const T* x, T* y, int64_t* indices) {
  if (g.planes == 0) return;  // the row scratch alone would cost O(W)
  const pool::RowChunks work(g.planes, g.rows.out_size);
  const bool fits_int32 = g.in_plane() <= std::numeric_limits<int32_t>::max();
  const int64_t item_size = g.planes * g.in_plane() / std::max<int64_t>(work.items(), 1);
  const int team = pool::threads_for(g.planes * g.in_plane());
  const bool in_cache = g.planes * g.in_plane() * int64_t(sizeof(T)) <= kCacheResidentBytes;
  pool::TeamScratch<int32_t> offsets(team, g.cols.out_size);  // where one output row's maxima are
  pool::TeamScratch<T> column_maxima(team, g.cols.in_size);    // one input row's worth
  pool::TeamScratch<T> row_maxima(team, g.cols.out_size);      // one output row with its indices
  pool::TeamScratch<int64_t> row_indices(team, g.cols.out_size);
#pragma omp parallel num_threads(team)
  {
    int32_t* const offset = offsets.get();
    T* const column_max = column_maxima.get();
    T* const row_max = row_maxima.get();
    int64_t* const row_index = row_indices.get();
#pragma omp for schedule(dynamic, pool::chunk_for(item_size))
    for (int64_t item = 0; item < work.items(); ++item) {
      int64_t p, i0, i1;
      work.get(item, &p, &i0, &i1);
      const T* in = x + p * g.in_plane();
      T* out = y + p * g.out_plane();
      int64_t* idx = indices ? indices + p * g.out_plane() : nullptr;
      const bool fast = fits_int32 && i0 < i1 &&
                        pool::with_fast_row_shape(g.cols, [&](auto kw, auto sx) {
        constexpr int KW = decltype(kw)::value, SX = decltype(sx)::value;
        // The check is a pass over the rows: it pays where the window has 3 taps a row,
        // and where the input is cache-resident (small planes, the last stages of a
        // network), not for 2x2 windows streaming from memory (measured).
        const bool may_hold_nan = (idx || KW >= 3 || in_cache) ? rows_hold_nan(g, in, i0, i1)
                                                                : true;
        if (!idx && may_hold_nan)
          forward_rows_values<T, KW, SX, false>(g, in, out, i0, i1, column_max);
        else if (!idx)
          forward_rows_values<T, KW, SX, true>(g, in, out, i0, i1, column_max);
        else if (may_hold_nan)
          forward_rows_with_indices<T, KW, SX, false>(g, in, out, idx, i0, i1, offset,
                                                      row_max, row_index);
        else
          forward_rows_with_indices<T, KW, SX, true>(g, in, out, idx, i0, i1, offset,
                                                     row_max, row_index);
      });
      if (!fast) forward_rows_generic(g, in, out, idx, i0, i1);
    }
    _mm_sfence();
  }
}

// Each plane belongs to one thread, which zeroes it and adds its gradients in output
// order: overlapping windows accumulate deterministically, without atomics. A plane of up
// to 256 KiB is built in a cache-resident buffer and streamed out.
template <typename T>
bool grad_input(const PoolGeometry& g, const T* grad_y, const int64_t* indices, T* grad_x) {
  if (g.planes == 0) return true;
  const int64_t in_plane = g.in_plane(), out_plane = g.out_plane();
  const bool buffered = in_plane * int64_t(sizeof(T)) <= 256 * 1024;
  bool in_range = true;
  const int team = pool::threads_for(g.planes * in_plane);
  pool::TeamScratch<T> buffers(team, buffered ? in_plane : 0);
#pragma omp parallel num_threads(team) reduction(&& : in_range)
  {
    T* const buffer = buffers.get();
#pragma omp for schedule(dynamic, pool::chunk_for(in_plane))
    for (int64_t p = 0; p < g.planes; ++p) {
      T* gx = buffered ? buffer : grad_x + p * in_plane;
      const T* gy = grad_y + p * out_plane;
      const int64_t* idx = indices + p * out_plane;
      for (int64_t k = 0; k < in_plane; ++k) gx[k] = T(0);
      for (int64_t k = 0; k < out_plane; ++k) {
        const int64_t target = idx[k];
        if (target < 0 || target >= in_plane) {
          in_range = false;
          continue;
        }
        gx[target] += gy[k];
      }
      if (buffered) pool::stream_copy(gx, in_plane, grad_x + p * in_plane);
    }
    _mm_sfence();
  }
  return in_range;
}

}  // namespace

template <typename T>
void max_pool2d_forward(const PoolGeometry& g, const T* x, T* y, int64_t* indices) {
  forward(g, x, y, indices);
}

template <typename T>
bool max_pool2d_grad_input(const PoolGeometry& g, const T* grad_y, const int64_t* indices,
                           T* grad_x) {
  return grad_input(g, grad_y, indices, grad_x);
}

template void max_pool2d_forward<float>(const PoolGeometry&, const float*, float*, int64_t*);
template void max_pool2d_forward<double>(const PoolGeometry&, const double*, double*, int64_t*);
template bool max_pool2d_grad_input<float>(const PoolGeometry&, const float*, const int64_t*,
                                           float*);
template bool max_pool2d_grad_input<double>(const PoolGeometry&, const double*, const int64_t*,
                                            double*);

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
