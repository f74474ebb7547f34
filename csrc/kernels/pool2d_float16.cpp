// Max and average pooling forward on float16 arrays, computed in float32: the input is
// read as float16 and the output written as float16, half the memory traffic of the
// float32 kernels, which is what bounds pooling. They are the float16 lists of
// max_pool2d (without indices) and avg_pool2d in the registry (registry/registry.cpp);
// max with indices, the gradients and channels-last float16 run in float32.
//
// Each output row: the window's input rows are widened to float32 one at a time (F16C in
// the AVX2 / AVX-512 builds, half_convert.cpp) and reduced into one row of column maxima
// or sums (float32, cache-resident), which is then pooled across columns and rounded to
// float16 once. Max is exact in float16 (a max of float16 values is one of them); an
// average is the float32 sum over the window divided by the divisor, then rounded.
// Semantics (windows, padding, ceil_mode, divisors, NaN) are pool2d.h's; float16 values
// travel as their IEEE binary16 bit patterns (uint16_t).
//
// One file, two sections: the `supports` predicates (compiled once) and the kernels
// (compiled once per instruction set); the registry lines name both.
#include <cstdint>

#include "common/geometry.h"
#include "pool/pool2d.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
namespace convpool {

// Every NCHW case: the kernels take any window, padding and plane.
bool max_pool2d_forward_float16_supports(const PoolGeometry&, int) { return true; }
bool avg_pool2d_forward_float16_supports(const PoolGeometry&, int) { return true; }

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>
#include <limits>

#include "pool/half_convert.h"
#include "pool/pool_common.h"

namespace convpool::CONVPOOL_ISA {

namespace {

using pool::TapRange;

enum class Reduce { max, sum };

template <Reduce R>
inline float combine(float v, float acc) {
  if constexpr (R == Reduce::max) return pool::max_propagating_nan(v, acc);
  return acc + v;
}

// One output row from `column` (the window rows combined, one input row long): windows
// that lie inside the input, KW taps at column stride SX (compile-time: vectorised, no
// branch on the data), then the edge windows the padding clips, one by one.
template <Reduce R, int KW, int SX>
void pool_columns(const WindowAxis& C, const float* __restrict column, float row_divisor,
                  const float* col_divisor, float* __restrict out_row) {
  const TapRange inner = pool::interior(C);
  for (int64_t j = inner.begin; j < inner.end; ++j) {
    const float* window = column + (j * SX - C.pad_before);
    float acc = window[0];
    for (int t = 1; t < KW; ++t) acc = combine<R>(window[t], acc);
    out_row[j] = acc;
  }
  for (const TapRange edge : {TapRange{0, inner.begin}, TapRange{inner.end, C.out_size}}) {
    for (int64_t j = edge.begin; j < edge.end; ++j) {
      const TapRange ts = pool::taps_inside(C, j);
      float acc = column[C.input_index(j, ts.begin)];
      for (int64_t t = ts.begin + 1; t < ts.end; ++t)
        acc = combine<R>(column[C.input_index(j, t)], acc);
      out_row[j] = acc;
    }
  }
  if constexpr (R == Reduce::sum)
    for (int64_t j = 0; j < C.out_size; ++j) out_row[j] /= row_divisor * col_divisor[j];
}

// Any window shape (column dilation, wide kernels): every window one by one.
template <Reduce R>
void pool_columns_generic(const WindowAxis& C, const float* column, float row_divisor,
                          const float* col_divisor, float* out_row) {
  for (int64_t j = 0; j < C.out_size; ++j) {
    const TapRange ts = pool::taps_inside(C, j);
    float acc = column[C.input_index(j, ts.begin)];
    for (int64_t t = ts.begin + 1; t < ts.end; ++t)
      acc = combine<R>(column[C.input_index(j, t)], acc);
    if constexpr (R == Reduce::max) out_row[j] = acc;
    else out_row[j] = acc / (row_divisor * col_divisor[j]);
  }
}

// A contiguous share [begin, end) of all (plane, output row) items for one thread: the
// output each thread writes is fixed, so results do not depend on scheduling.
template <Reduce R>
void pool_rows(const PoolGeometry& g, const pool::Divisors<float>* divisors, const uint16_t* x,
               uint16_t* y, int64_t begin, int64_t end, float* __restrict widened,
               float* __restrict column, float* __restrict out_row) {
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
      for (int64_t c = 0; c < w; ++c) column[c] = combine<R>(widened[c], column[c]);
    }
    const float row_div = R == Reduce::sum ? divisors->row(i) : 1.0f;
    const float* col_divisor = R == Reduce::sum ? divisors->cols() : nullptr;
    const bool fast = pool::with_fast_row_shape(C, [&](auto kw, auto sx) {
      pool_columns<R, decltype(kw)::value, decltype(sx)::value>(C, column, row_div, col_divisor,
                                                                 out_row);
    });
    if (!fast) pool_columns_generic<R>(C, column, row_div, col_divisor, out_row);
    float_to_half(out_row, y + item * ow, ow);
  }
}

template <Reduce R>
void pool_forward(const PoolGeometry& g, const pool::Divisors<float>* divisors,
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
    pool_rows<R>(g, divisors, x, y, begin, end, widened.get(), columns.get(),
                 out_rows.get());
  }
}

}  // namespace

void max_pool2d_forward_float16(const PoolGeometry& g, const uint16_t* x, uint16_t* y) {
  pool_forward<Reduce::max>(g, nullptr, x, y);
}

void avg_pool2d_forward_float16(const PoolGeometry& g, const AvgPoolDivisor& d,
                                const uint16_t* x, uint16_t* y) {
  const pool::Divisors<float> divisors(g, d);
  pool_forward<Reduce::sum>(g, &divisors, x, y);
}

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
