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
// Edge columns whose window is clipped by the padding, and unusual shapes, go through the
// per-window loop.
//
// Compiled once per instruction set (see pool_kernels.h).
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>

#include "common/threading.h"
#include "pool/pool_common.h"
#include "pool/pool_kernels.h"

namespace convpool::CONVPOOL_ISA {

namespace {

using pool::max_propagating_nan;
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

// Output columns [j0, j1) of one output row whose windows lie inside the input's columns,
// all taps of input row `r` at once. `best` and `at` hold the running maximum and its index.
template <typename T, int KW, int SX>
void scan_input_row(const T* in_row, int32_t row_offset, int64_t left, int64_t j0, int64_t j1,
                    T* __restrict best, int32_t* __restrict at) {
  const T* base = in_row - left;
  const int32_t index0 = row_offset - static_cast<int32_t>(left);
  for (int64_t j = j0; j < j1; ++j) {
    T m = best[j];
    int32_t a = at[j];
    for (int t = 0; t < KW; ++t) {
      const T v = base[j * SX + t];
      const bool take = replaces(v, m);
      m = take ? v : m;
      a = take ? index0 + static_cast<int32_t>(j) * SX + t : a;
    }
    best[j] = m;
    at[j] = a;
  }
}

// Output rows [i0, i1) of one plane with their indices. The plane must have fewer than
// 2^31 pixels (indices are kept in 32 bits while scanning); `at` holds one output row.
template <typename T, int KW, int SX>
void forward_rows_with_indices(const PoolGeometry& g, const T* in, T* out, int64_t* indices,
                               int64_t i0, int64_t i1, int32_t* at) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const TapRange inner = pool::interior(C);
  const int64_t ow = C.out_size, w = C.in_size;
  for (int64_t i = i0; i < i1; ++i) {
    T* best = out + i * ow;
    const TapRange rs = pool::taps_inside(R, i);
    const int64_t r_first = R.input_index(i, rs.begin);
    for (int64_t j = inner.begin; j < inner.end; ++j) {
      best[j] = -std::numeric_limits<T>::infinity();
      at[j] = static_cast<int32_t>(r_first * w + j * SX - C.pad_before);
    }
    for (int64_t s = rs.begin; s < rs.end; ++s) {
      const int64_t r = R.input_index(i, s);
      scan_input_row<T, KW, SX>(in + r * w, static_cast<int32_t>(r * w), C.pad_before,
                                inner.begin, inner.end, best, at);
    }
    int64_t* idx = indices + i * ow;
    for (int64_t j = inner.begin; j < inner.end; ++j) idx[j] = at[j];
    for (const TapRange edge : {TapRange{0, inner.begin}, TapRange{inner.end, ow}})
      for (int64_t j = edge.begin; j < edge.end; ++j) idx[j] = max_window(g, in, i, j, &best[j]);
  }
}

// Output rows [i0, i1) of one plane, values only; `column_max` holds one input row.
template <typename T, int KW, int SX>
void forward_rows_values(const PoolGeometry& g, const T* in, T* out, int64_t i0, int64_t i1,
                         T* __restrict column_max) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const TapRange inner = pool::interior(C);
  const int64_t ow = C.out_size, w = C.in_size;
  for (int64_t i = i0; i < i1; ++i) {
    const TapRange rs = pool::taps_inside(R, i);
    const T* first = in + R.input_index(i, rs.begin) * w;
    for (int64_t c = 0; c < w; ++c) column_max[c] = first[c];
    for (int64_t s = rs.begin + 1; s < rs.end; ++s) {
      const T* row = in + R.input_index(i, s) * w;
      for (int64_t c = 0; c < w; ++c) column_max[c] = max_propagating_nan(row[c], column_max[c]);
    }
    T* __restrict y = out + i * ow;
    const T* base = column_max - C.pad_before;
    for (int64_t j = inner.begin; j < inner.end; ++j) {
      T m = base[j * SX];
      for (int t = 1; t < KW; ++t) m = max_propagating_nan(base[j * SX + t], m);
      y[j] = m;
    }
    for (const TapRange edge : {TapRange{0, inner.begin}, TapRange{inner.end, ow}}) {
      for (int64_t j = edge.begin; j < edge.end; ++j) {
        const TapRange ts = pool::taps_inside(C, j);
        T m = base[j * SX + ts.begin];
        for (int64_t t = ts.begin + 1; t < ts.end; ++t) m = max_propagating_nan(base[j * SX + t], m);
        y[j] = m;
      }
    }
  }
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
  const pool::RowChunks work(g.planes, g.rows.out_size);
  const bool fits_int32 = g.in_plane() <= std::numeric_limits<int32_t>::max();
  const int64_t item_size = g.planes * g.in_plane() / std::max<int64_t>(work.items(), 1);
#pragma omp parallel num_threads(pool::threads_for(g.planes * g.in_plane()))
  {
    pool::Scratch<int32_t> at(g.cols.out_size);   // running argmax of one output row
    pool::Scratch<T> column_max(g.cols.in_size);  // one input row's worth
#pragma omp for schedule(dynamic, pool::chunk_for(item_size))
    for (int64_t item = 0; item < work.items(); ++item) {
      int64_t p, i0, i1;
      work.get(item, &p, &i0, &i1);
      const T* in = x + p * g.in_plane();
      T* out = y + p * g.out_plane();
      int64_t* idx = indices ? indices + p * g.out_plane() : nullptr;
      const bool fast = fits_int32 && pool::with_fast_row_shape(g.cols, [&](auto kw, auto sx) {
        constexpr int KW = decltype(kw)::value, SX = decltype(sx)::value;
        if (idx)
          forward_rows_with_indices<T, KW, SX>(g, in, out, idx, i0, i1, at.get());
        else
          forward_rows_values<T, KW, SX>(g, in, out, i0, i1, column_max.get());
      });
      if (!fast) forward_rows_generic(g, in, out, idx, i0, i1);
    }
  }
}

// Each plane belongs to one thread, which zeroes it and adds its gradients in output
// order: overlapping windows accumulate deterministically, without atomics.
template <typename T>
bool grad_input(const PoolGeometry& g, const T* grad_y, const int64_t* indices, T* grad_x) {
  const int64_t in_plane = g.in_plane(), out_plane = g.out_plane();
  bool in_range = true;
#pragma omp parallel for num_threads(pool::threads_for(g.planes * in_plane)) \
    schedule(dynamic, pool::chunk_for(in_plane)) reduction(&& : in_range)
  for (int64_t p = 0; p < g.planes; ++p) {
    T* gx = grad_x + p * in_plane;
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
