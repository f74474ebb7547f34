// Average pooling: forward and the gradient with respect to the input.
//
// Forward sums each output row's windows input row by input row (vectorised along the
// output row for the common window shapes, per window at the clipped edges), then divides
// by the divisor, which factors into a row count times a column count.
//
// Backward is written input row by input row, so every gradient pixel is stored once and
// no plane has to be zeroed first: the gradient of input row r is the sum, over the output
// rows whose windows cover r, of that output row spread back over the columns. Spreading
// a row is "upsample by the stride, then sum kw shifted copies", contiguous loops for any
// kernel and stride; each spread row is kept in a small ring while input rows need it.
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "common/threading.h"
#include "pool/pool2d.h"
#include "pool/pool_common.h"

namespace convpool {

namespace {

using pool::TapRange;

// The divisor of output (i, j): `override_value`, or row_counts[i] * col_counts[j].
template <typename T>
struct Divisors {
  std::vector<T> rows;
  std::vector<T> cols;

  Divisors(const PoolGeometry& g, const AvgPoolDivisor& d) {
    if (d.override_value != 0) {
      rows.assign(static_cast<size_t>(g.rows.out_size), T(1));
      cols.assign(static_cast<size_t>(g.cols.out_size), static_cast<T>(d.override_value));
      return;
    }
    for (int64_t c : window_counts(g.rows, d.pad_after_rows, d.count_include_pad))
      rows.push_back(static_cast<T>(c));
    for (int64_t c : window_counts(g.cols, d.pad_after_cols, d.count_include_pad))
      cols.push_back(static_cast<T>(c));
  }
};

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

template <typename T, int KW, int SX>
void add_input_row(const T* in_row, int64_t left, int64_t j0, int64_t j1, T* __restrict sum) {
  const T* base = in_row - left;
  for (int64_t j = j0; j < j1; ++j) {
    T s = sum[j];
    for (int t = 0; t < KW; ++t) s += base[j * SX + t];
    sum[j] = s;
  }
}

template <typename T, int KW, int SX>
void sum_rows_fast(const PoolGeometry& g, const T* in, T* out, int64_t i0, int64_t i1) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const TapRange inner = pool::interior(C);
  const int64_t ow = C.out_size;
  for (int64_t i = i0; i < i1; ++i) {
    T* sum = out + i * ow;
    for (int64_t j = inner.begin; j < inner.end; ++j) sum[j] = T(0);
    const TapRange rs = pool::taps_inside(R, i);
    for (int64_t s = rs.begin; s < rs.end; ++s)
      add_input_row<T, KW, SX>(in + R.input_index(i, s) * C.in_size, C.pad_before, inner.begin,
                               inner.end, sum);
    for (const TapRange edge : {TapRange{0, inner.begin}, TapRange{inner.end, ow}})
      for (int64_t j = edge.begin; j < edge.end; ++j) sum[j] = window_sum(g, in, i, j);
  }
}

template <typename T>
void sum_rows_generic(const PoolGeometry& g, const T* in, T* out, int64_t i0, int64_t i1) {
  const int64_t ow = g.cols.out_size;
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t j = 0; j < ow; ++j) out[i * ow + j] = window_sum(g, in, i, j);
}

template <typename T>
void forward(const PoolGeometry& g, const AvgPoolDivisor& d, const T* x, T* y) {
  const Divisors<T> divisors(g, d);
  const pool::RowChunks work(g.planes, g.rows.out_size);
  const int64_t ow = g.cols.out_size;
#pragma omp parallel for num_threads(num_threads()) schedule(static)
  for (int64_t item = 0; item < work.items(); ++item) {
    int64_t p, i0, i1;
    work.get(item, &p, &i0, &i1);
    const T* in = x + p * g.in_plane();
    T* out = y + p * g.out_plane();
    const bool fast = pool::with_fast_row_shape(g.cols, [&](auto kw, auto sx) {
      sum_rows_fast<T, decltype(kw)::value, decltype(sx)::value>(g, in, out, i0, i1);
    });
    if (!fast) sum_rows_generic(g, in, out, i0, i1);
    const T* col_div = divisors.cols.data();
    for (int64_t i = i0; i < i1; ++i) {
      const T row_div = divisors.rows[static_cast<size_t>(i)];
      T* row = out + i * ow;
      for (int64_t j = 0; j < ow; ++j) row[j] /= row_div * col_div[j];
    }
  }
}

// Output rows spread back over the input columns, kept while input rows still need them.
template <typename T>
class SpreadRows {
 public:
  SpreadRows(const PoolGeometry& g, const Divisors<T>& divisors)
      : g_(g), divisors_(divisors), slots_((g.rows.kernel + g.rows.stride - 1) / g.rows.stride) {
    const WindowAxis& C = g.cols;
    rows_.resize(static_cast<size_t>(slots_ * C.in_size));
    tags_.assign(static_cast<size_t>(slots_), -1);
    upsampled_.resize(static_cast<size_t>(C.kernel - 1 + C.in_size + C.pad_before));
  }

  // The spread of output row i of the plane whose gradient is grad_plane.
  const T* get(const T* grad_plane, int64_t i) {
    const int64_t slot = i % slots_;
    T* row = rows_.data() + slot * g_.cols.in_size;
    if (tags_[static_cast<size_t>(slot)] != i) {
      spread(grad_plane + i * g_.cols.out_size, divisors_.rows[static_cast<size_t>(i)], row);
      tags_[static_cast<size_t>(slot)] = i;
    }
    return row;
  }

  void forget() { tags_.assign(tags_.size(), -1); }

 private:
  // row[c] = sum over windows j and taps t with j*sx - left + t = c of gy[j] / divisor(j).
  // In padded coordinates m = c + left, window j starts at j*sx: put gy[j] / divisor at
  // m = j*sx (zeros between), then row[c] = sum_t upsampled[c + left - t].
  void spread(const T* gy, T row_div, T* row) {
    const WindowAxis& C = g_.cols;
    const int64_t w = C.in_size, kw = C.kernel, left = C.pad_before;
    const int64_t span = static_cast<int64_t>(upsampled_.size()) - (kw - 1);  // m < span
    T* up = upsampled_.data() + (kw - 1);  // up[m] for m in [-(kw - 1), span)
    for (int64_t m = -(kw - 1); m < span; ++m) up[m] = T(0);
    const T* col_div = divisors_.cols.data();
    for (int64_t j = 0; j < C.out_size && j * C.stride < span; ++j)
      up[j * C.stride] = gy[j] / (row_div * col_div[j]);
    for (int64_t c = 0; c < w; ++c) row[c] = up[c + left];
    for (int64_t t = 1; t < kw; ++t) {
      const T* shifted = up + left - t;
      for (int64_t c = 0; c < w; ++c) row[c] += shifted[c];
    }
  }

  const PoolGeometry& g_;
  const Divisors<T>& divisors_;
  int64_t slots_;
  std::vector<T> rows_;
  std::vector<int64_t> tags_;
  std::vector<T> upsampled_;
};

template <typename T>
void grad_input(const PoolGeometry& g, const AvgPoolDivisor& d, const T* grad_y, T* grad_x) {
  const Divisors<T> divisors(g, d);
  const WindowAxis& R = g.rows;
  const int64_t w = g.cols.in_size;
  const pool::RowChunks work(g.planes, R.in_size);
#pragma omp parallel num_threads(num_threads())
  {
    SpreadRows<T> spread(g, divisors);
#pragma omp for schedule(static)
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
        T* gx = grad_x + p * g.in_plane() + r * w;
        if (i_lo > i_hi) {
          for (int64_t c = 0; c < w; ++c) gx[c] = T(0);
          continue;
        }
        const T* first = spread.get(gy, i_lo);
        for (int64_t c = 0; c < w; ++c) gx[c] = first[c];
        for (++i_lo; i_lo <= i_hi; ++i_lo) {
          const T* more = spread.get(gy, i_lo);
          for (int64_t c = 0; c < w; ++c) gx[c] += more[c];
        }
      }
    }
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

}  // namespace convpool
