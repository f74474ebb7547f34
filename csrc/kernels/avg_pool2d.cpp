// Average pooling: forward and the gradient with respect to the input.
//
// Forward sums each output row's windows (for the common window shapes: the input rows
// into one row of column sums, then across columns, vectorised; otherwise per window),
// then divides by the divisor, which factors into a row count times a column count.
//
// Backward is written input row by input row, so every gradient pixel is stored once and
// no plane has to be zeroed first: the gradient of input row r is the sum, over the output
// rows whose windows cover r, of that output row spread back over the columns. Spreading
// a row is "upsample by the stride, then sum kw shifted copies", contiguous loops for any
// kernel and stride; each spread row is kept in a small ring while input rows need it.
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
bool avg_pool2d_forward_supports(const PoolGeometry&, int) { return true; }
bool avg_pool2d_grad_input_supports(const PoolGeometry&, int) { return true; }

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "common/threading.h"
#include "pool/pool_common.h"

#if defined(CONVPOOL_ISA_avx512)
// Measured on Zen 4: these loops run faster on 256-bit vectors (strided windows need
// fewer cross-lane shuffles); AVX-512VL still brings its masks and 32 registers.
#pragma GCC target("prefer-vector-width=256")
#endif

namespace convpool::CONVPOOL_ISA {

namespace {

using pool::Divisors;
using pool::TapRange;

template <typename T>
T window_sum(const PoolGeometry& g, const T* in, int64_t i, int64_t j) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const TapRange rs = pool::taps_inside(R, i), ts = pool::taps_inside(C, j);
  T sum = T(0);
  for (int64_t s = rs.begin; s < rs.end; ++s) {
    const T* row = in + R.input_index(i, s) * C.in_size;
    for (int64_t t = ts.begin; t < ts.end; ++t) sum += row[C.input_index(j, t)];
  }
  return sum;
}

// Window sums of output rows [i0, i1) (see pool::reduce_window_rows).
template <typename T, int KW, int SX>
void sum_rows_fast(const PoolGeometry& g, const T* in, T* out, int64_t i0, int64_t i1,
                   T* __restrict column_sum) {
  pool::reduce_window_rows<T, KW, SX>(g.rows, g.cols, in, out, i0, i1, column_sum,
                                      [](T v, T sum) { return sum + v; });
}

template <typename T>
void sum_rows_generic(const PoolGeometry& g, const T* in, T* out, int64_t i0, int64_t i1) {
  const int64_t ow = g.cols.out_size;
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t j = 0; j < ow; ++j) out[i * ow + j] = window_sum(g, in, i, j);
}

template <typename T>
void forward(const PoolGeometry& g, const AvgPoolDivisor& d, const T* x, T* y) {
  if (g.planes == 0) return;  // the divisors and row scratch alone would cost O(H + W)
  const Divisors<T> divisors(g, d);
  const pool::RowChunks work(g.planes, g.rows.out_size);
  const int64_t ow = g.cols.out_size;
  const int64_t item_size = g.planes * g.in_plane() / std::max<int64_t>(work.items(), 1);
  const int team = pool::threads_for(g.planes * g.in_plane());
  pool::TeamScratch<T> column_sums(team, g.cols.in_size);
#pragma omp parallel num_threads(team)
  {
    T* const column_sum = column_sums.get();
#pragma omp for schedule(dynamic, pool::chunk_for(item_size))
    for (int64_t item = 0; item < work.items(); ++item) {
      int64_t p, i0, i1;
      work.get(item, &p, &i0, &i1);
      const T* in = x + p * g.in_plane();
      T* out = y + p * g.out_plane();
      const bool fast = pool::with_fast_row_shape(g.cols, [&](auto kw, auto sx) {
        sum_rows_fast<T, decltype(kw)::value, decltype(sx)::value>(g, in, out, i0, i1,
                                                                   column_sum);
      });
      if (!fast) sum_rows_generic(g, in, out, i0, i1);
      const T* col_div = divisors.cols();
      for (int64_t i = i0; i < i1; ++i) {
        const T row_div = divisors.row(i);
        T* row = out + i * ow;
        for (int64_t j = 0; j < ow; ++j) row[j] /= row_div * col_div[j];
      }
    }
  }
}

// Output rows spread back over the input columns, kept while input rows still need them.
template <typename T>
class SpreadRows {
 public:
  SpreadRows(const PoolGeometry& g, const Divisors<T>& divisors)
      : g_(g),
        divisors_(divisors),
        slots_((g.rows.kernel + g.rows.stride - 1) / g.rows.stride),
        span_(g.cols.in_size + g.cols.pad_before),
        rows_(slots_ * g.cols.in_size),
        tags_(slots_),
        scaled_(g.cols.out_size),
        upsampled_(g.cols.kernel - 1 + span_) {
    forget();
  }

  // The spread of output row i of the plane whose gradient is grad_plane.
  const T* get(const T* grad_plane, int64_t i) {
    const int64_t slot = i % slots_;
    T* row = rows_.get() + slot * g_.cols.in_size;
    if (tags_[slot] != i) {
      spread(grad_plane + i * g_.cols.out_size, divisors_.row(i), row);
      tags_[slot] = i;
    }
    return row;
  }

  void forget() {
    for (int64_t k = 0; k < slots_; ++k) tags_[k] = -1;
  }

 private:
  // row[c] = sum over windows j and taps t with j*sx - left + t = c of gy[j] / divisor(j).
  // In padded coordinates m = c + left, window j starts at j*sx: put gy[j] / divisor at
  // m = j*sx (zeros between), then row[c] = sum_t upsampled[c + left - t].
  void spread(const T* gy, T row_div, T* row) {
    const WindowAxis& C = g_.cols;
    const int64_t w = C.in_size, kw = C.kernel, left = C.pad_before, ow = C.out_size;
    const T* col_div = divisors_.cols();
    if (kw == 2 && C.stride == 2 && left == 0 && C.dilation == 1 && 2 * ow <= w) {
      // Windows side by side (the common 2x2 pooling): each value goes to two columns.
      for (int64_t j = 0; j < ow; ++j) {
        const T v = gy[j] / (row_div * col_div[j]);
        row[2 * j] = v;
        row[2 * j + 1] = v;
      }
      for (int64_t c = 2 * ow; c < w; ++c) row[c] = T(0);
      return;
    }
    T* scaled = scaled_.get();
    for (int64_t j = 0; j < ow; ++j) scaled[j] = gy[j] / (row_div * col_div[j]);
    T* up = upsampled_.get() + (kw - 1);  // up[m] for m in [-(kw - 1), span)
    for (int64_t m = -(kw - 1); m < span_; ++m) up[m] = T(0);
    const int64_t reaching = std::min(ow, (span_ - 1) / C.stride + 1);  // windows with j*sx < span
    for (int64_t j = 0; j < reaching; ++j) up[j * C.stride] = scaled[j];
    for (int64_t c = 0; c < w; ++c) row[c] = up[c + left];
    for (int64_t t = 1; t < kw; ++t) {
      const T* shifted = up + left - t;
      for (int64_t c = 0; c < w; ++c) row[c] += shifted[c];
    }
  }

  const PoolGeometry& g_;
  const Divisors<T>& divisors_;
  int64_t slots_;
  int64_t span_;  // padded columns a window can start in and still reach the input
  pool::Scratch<T> rows_;
  pool::Scratch<int64_t> tags_;
  pool::Scratch<T> scaled_;
  pool::Scratch<T> upsampled_;
};

template <typename T>
void grad_input(const PoolGeometry& g, const AvgPoolDivisor& d, const T* grad_y, T* grad_x) {
  if (g.planes == 0) return;
  const Divisors<T> divisors(g, d);
  const WindowAxis& R = g.rows;
  const int64_t w = g.cols.in_size;
  const pool::RowChunks work(g.planes, R.in_size);
  const int64_t item_size = g.planes * g.in_plane() / std::max<int64_t>(work.items(), 1);
  const int team = pool::threads_for(g.planes * g.in_plane());
  std::unique_ptr<std::unique_ptr<SpreadRows<T>>[]> spreads(new std::unique_ptr<SpreadRows<T>>[team]);
  for (int t = 0; t < team; ++t) spreads[t].reset(new SpreadRows<T>(g, divisors));
  pool::TeamScratch<T> rows(team, w);  // each built here, then streamed out
#pragma omp parallel num_threads(team)
  {
    SpreadRows<T>& spread = *spreads[omp_get_thread_num()];
    T* const row = rows.get();
#pragma omp for schedule(dynamic, pool::chunk_for(item_size))
    for (int64_t item = 0; item < work.items(); ++item) {
      int64_t p, r0, r1;
      work.get(item, &p, &r0, &r1);
      spread.forget();
      const T* gy = grad_y + p * g.out_plane();
      for (int64_t r = r0; r < r1; ++r) {
        // Output rows i with i*sy - top <= r <= i*sy - top + kh - 1.
        const int64_t reach = r + R.pad_before;
        int64_t i_lo = reach - (R.kernel - 1) <= 0 ? 0 : (reach - R.kernel + R.stride) / R.stride;
        const int64_t i_hi = std::min(R.out_size - 1, reach / R.stride);
        const T* gx = row;
        if (i_lo > i_hi) {
          for (int64_t c = 0; c < w; ++c) row[c] = T(0);
        } else if (i_lo == i_hi) {
          gx = spread.get(gy, i_lo);  // one window row (non-overlapping windows): as is
        } else {
          const T* first = spread.get(gy, i_lo);
          for (int64_t c = 0; c < w; ++c) row[c] = first[c];
          for (++i_lo; i_lo <= i_hi; ++i_lo) {
            const T* more = spread.get(gy, i_lo);
            for (int64_t c = 0; c < w; ++c) row[c] += more[c];
          }
        }
        pool::stream_copy(gx, w, grad_x + p * g.in_plane() + r * w);
      }
    }
    _mm_sfence();
  }
}

}  // namespace

template <typename T>
void avg_pool2d_forward(const PoolGeometry& g, const AvgPoolDivisor& d, const T* x, T* y) {
  forward(g, d, x, y);
}

template <typename T>
void avg_pool2d_grad_input(const PoolGeometry& g, const AvgPoolDivisor& d, const T* grad_y,
                           T* grad_x) {
  grad_input(g, d, grad_y, grad_x);
}

template void avg_pool2d_forward<float>(const PoolGeometry&, const AvgPoolDivisor&, const float*,
                                        float*);
template void avg_pool2d_forward<double>(const PoolGeometry&, const AvgPoolDivisor&,
                                         const double*, double*);
template void avg_pool2d_grad_input<float>(const PoolGeometry&, const AvgPoolDivisor&,
                                           const float*, float*);
template void avg_pool2d_grad_input<double>(const PoolGeometry&, const AvgPoolDivisor&,
                                            const double*, double*);

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
