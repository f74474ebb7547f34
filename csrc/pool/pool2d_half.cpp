// Max and average pooling forward on float16 arrays, computed in float32: the input is
// read as float16 and the output written as float16, half the memory traffic of the
// float32 kernels, which is what bounds pooling.
//
// Each output row: the window's input rows are widened to float32 one at a time (F16C in
// the AVX2 / AVX-512 builds, half_convert.cpp) and reduced into one row of column maxima
// or sums (float32, cache-resident), which is then pooled across columns and rounded to
// float16 once. Max is exact in float16 (a max of float16 values is one of them); an
// average is the float32 sum over the window divided by the divisor, then rounded.
// Semantics (windows, padding, ceil_mode, divisors, NaN) are pool2d.h's.
//
// Compiled once per instruction set (see pool_kernels.h).
#include <algorithm>
#include <cstdint>
#include <limits>

#include "pool/half_convert.h"
#include "pool/pool_common.h"
#include "pool/pool_half.h"

namespace convpool::CONVPOOL_ISA {

namespace {

using pool::TapRange;

enum class Reduce { max, sum };

// A contiguous share [begin, end) of all (plane, output row) items for one thread: the
// output each thread writes is fixed, so results do not depend on scheduling.
template <Reduce R>
void pool_rows(const PoolGeometry& g, const float* row_divisor, const float* col_divisor,
               const uint16_t* x, uint16_t* y, int64_t begin, int64_t end, float* widened,
               float* column, float* out_row) {
  const WindowAxis& Rw = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t w = C.in_size, oh = Rw.out_size, ow = C.out_size;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t p = item / oh, i = item % oh;
    const uint16_t* plane = x + p * g.in_plane();
    const TapRange rs = pool::taps_inside(Rw, i);
    half_to_float(plane + Rw.input_index(i, rs.begin) * w, column, w);
    for (int64_t s = rs.begin + 1; s < rs.end; ++s) {
      half_to_float(plane + Rw.input_index(i, s) * w, widened, w);
      if constexpr (R == Reduce::max) {
        for (int64_t c = 0; c < w; ++c) column[c] = pool::max_propagating_nan(widened[c], column[c]);
      } else {
        for (int64_t c = 0; c < w; ++c) column[c] += widened[c];
      }
    }
    for (int64_t j = 0; j < ow; ++j) {
      const TapRange ts = pool::taps_inside(C, j);
      float acc = column[C.input_index(j, ts.begin)];
      for (int64_t t = ts.begin + 1; t < ts.end; ++t) {
        const float v = column[C.input_index(j, t)];
        if constexpr (R == Reduce::max) acc = pool::max_propagating_nan(v, acc);
        else acc += v;
      }
      if constexpr (R == Reduce::max) out_row[j] = acc;
      else out_row[j] = acc / (row_divisor[i] * col_divisor[j]);
    }
    float_to_half(out_row, y + item * ow, ow);
  }
}

template <Reduce R>
void pool_forward(const PoolGeometry& g, const float* row_divisor, const float* col_divisor,
                  const uint16_t* x, uint16_t* y) {
  if (g.planes == 0) return;
  const int64_t items = g.planes * g.rows.out_size;
  const int team = static_cast<int>(std::min<int64_t>(pool::threads_for(g.planes * g.in_plane()),
                                                      std::max<int64_t>(items, 1)));
  pool::TeamScratch<float> widened(team, g.cols.in_size);
  pool::TeamScratch<float> columns(team, g.cols.in_size);
  pool::TeamScratch<float> out_rows(team, g.cols.out_size);
#pragma omp parallel num_threads(team)
  {
    int64_t begin, end;
    split_range(items, omp_get_num_threads(), omp_get_thread_num(), &begin, &end);
    pool_rows<R>(g, row_divisor, col_divisor, x, y, begin, end, widened.get(), columns.get(),
                 out_rows.get());
  }
}

}  // namespace

void max_pool2d_forward_half(const PoolGeometry& g, const uint16_t* x, uint16_t* y) {
  pool_forward<Reduce::max>(g, nullptr, nullptr, x, y);
}

void avg_pool2d_forward_half(const PoolGeometry& g, const float* row_divisor,
                             const float* col_divisor, const uint16_t* x, uint16_t* y) {
  pool_forward<Reduce::sum>(g, row_divisor, col_divisor, x, y);
}

}  // namespace convpool::CONVPOOL_ISA
