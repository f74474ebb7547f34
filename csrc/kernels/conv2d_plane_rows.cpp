// Small 2-D kernels on wide planes, float32, compiled once per instruction set: for
// convolutions where each output plane reads one input plane (C_in / groups == 1) at
// stride 1 with zero padding, above all a picture filter on the interleaved rows of a
// channels-last picture (an (H, W*C) plane, the kernel dilated by C along the columns).
//
// Unlike `plane` (kernels/conv2d_plane.cpp) it copies nothing: output columns whose
// windows lie inside the input rows (all but (kw - 1) dx columns of a wide row) read the
// input rows in place, and the few columns at each end clip their taps. Several output
// rows are made at once: each vector loaded from an input row feeds every output row of
// the group whose window holds that row, so a 3x3 kernel loads each input vector 9 / 4
// times per output row group of 4 instead of 9 times.
//
// One file, two sections: the `supports` predicate (compiled once) and the kernels
// (compiled once per instruction set); the registry line names both.
#include <cstdint>

#include "common/geometry.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: compiled once, outside the per-ISA builds ----------------
#include <algorithm>

namespace convpool {

// Zero padding, stride 1 and wide rows: pictures (an RGB row of 86 pixels is 258
// values). Small maps (depthwise layers, LeNet) stay on `plane`, whose padded copy costs
// little there. Kernels of any size: large ones reach it only when neither the separable
// sweep nor the FFT takes the call.
bool plane_rows_forward_supports(const Conv2dGeometry& g, int vector_floats) {
  return g.in_channels_per_group() == 1 && g.zero_padded() && g.rows.stride == 1 &&
         g.cols.stride == 1 && g.cols.out_size >= std::max(256, 4 * vector_floats);
}

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>

#include "common/simd_vec.h"
#include "common/threading.h"

namespace convpool::CONVPOOL_ISA {

namespace {

// Output rows made together, and vectors per row of a column block: NR * NV
// accumulators, NV loaded vectors and a broadcast within the vector registers.
constexpr int NR = 4;
constexpr int NV = kVectorRegisters >= 32 ? 4 : 2;

struct Plane {
  const float* x;  // the input plane
  int64_t h, w;    // its rows and columns
  const float* k;  // the kernel, kh x kw
  int64_t kh, kw, dy, dx, top, left;
};

// Output rows i .. i + R of column block [j, j + NB * V), every tap's column inside the
// input row: input row (i - top) + r feeds output row i + q through kernel row s where
// r = q + s * dy; rows outside the input (the zero padding) are skipped.
template <int R, int NB>
inline void vector_block(const Plane& p, int64_t i, int64_t j, float bias, float* out,
                         int64_t out_cols) {
  vec acc[R][NB];
  for (int q = 0; q < R; ++q)
    for (int v = 0; v < NB; ++v) acc[q][v] = broadcast(bias);
  const int64_t first_row = i - p.top;
  const int64_t span = R - 1 + (p.kh - 1) * p.dy;
  for (int64_t r = std::max<int64_t>(0, -first_row); r <= span && first_row + r < p.h; ++r) {
    const float* taps[R];  // kernel row of output row q, or null
    for (int q = 0; q < R; ++q) {
      const int64_t d = r - q;
      taps[q] = (d >= 0 && d % p.dy == 0 && d / p.dy < p.kh) ? p.k + (d / p.dy) * p.kw : nullptr;
    }
    const float* row = p.x + ((first_row + r) * p.w + j - p.left);
    for (int64_t t = 0; t < p.kw; ++t) {
      vec in[NB];
      for (int v = 0; v < NB; ++v) in[v] = load(row + t * p.dx + v * V);
      for (int q = 0; q < R; ++q) {
        if (!taps[q]) continue;
        const vec wv = broadcast(taps[q][t]);
        for (int v = 0; v < NB; ++v) acc[q][v] += wv * in[v];
      }
    }
  }
  for (int q = 0; q < R; ++q)
    for (int v = 0; v < NB; ++v) store(out + (i + q) * out_cols + j + v * V, acc[q][v]);
}

// One output value with its taps clipped to the input.
inline float clipped(const Plane& p, int64_t i, int64_t j, float bias) {
  float acc = bias;
  for (int64_t s = 0; s < p.kh; ++s) {
    const int64_t r = i - p.top + s * p.dy;
    if (r < 0 || r >= p.h) continue;
    const float* row = p.x + r * p.w;
    for (int64_t t = 0; t < p.kw; ++t) {
      const int64_t c = j - p.left + t * p.dx;
      if (c >= 0 && c < p.w) acc += p.k[s * p.kw + t] * row[c];
    }
  }
  return acc;
}

// Output rows [i, i + R), columns [0, out_cols): those whose windows' columns lie inside
// the input, [jl, jr), in vector blocks; the others with their taps clipped.
template <int R>
void make_rows(const Plane& p, int64_t i, int64_t jl, int64_t jr, float bias, float* out,
               int64_t out_cols) {
  int64_t j = jl;
  for (; j + NV * V <= jr; j += NV * V) vector_block<R, NV>(p, i, j, bias, out, out_cols);
  for (; j + V <= jr; j += V) vector_block<R, 1>(p, i, j, bias, out, out_cols);
  for (int q = 0; q < R; ++q) {
    for (int64_t c = 0; c < jl; ++c) out[(i + q) * out_cols + c] = clipped(p, i + q, c, bias);
    for (int64_t c = j; c < out_cols; ++c) out[(i + q) * out_cols + c] = clipped(p, i + q, c, bias);
  }
}

}  // namespace

void plane_rows_forward(const Conv2dGeometry& g, const float* x, const float* w,
                        const float* bias, float* y) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t cout_g = g.out_channels_per_group();
  const int64_t planes = g.batch * g.out_channels;
  constexpr int64_t kBand = 4 * NR;  // output rows per task; a thread's tasks are consecutive
  const int64_t bands = ceil_div(R.out_size, kBand);
  const int64_t tasks = planes * bands;
  // Output columns whose windows lie inside the input row: j - left >= 0 and
  // j - left + (kw - 1) dx < w.
  const int64_t jl = std::min<int64_t>(C.pad_before, C.out_size);
  const int64_t jr = std::clamp<int64_t>(C.in_size + C.pad_before - (C.kernel - 1) * C.dilation,
                                         jl, C.out_size);
  const int team = threads_for_tasks(tasks, planes * R.out_size * C.out_size * g.kernel_plane());
#pragma omp parallel for num_threads(team) schedule(static)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t band = task % bands, q = task / bands;
    const int64_t n = q / g.out_channels, qq = q % g.out_channels, pp = qq / cout_g;
    const Plane p{x + (n * g.in_channels + pp) * g.in_plane(), R.in_size, C.in_size,
                  w + qq * g.kernel_plane(), R.kernel, C.kernel, R.dilation, C.dilation,
                  R.pad_before, C.pad_before};
    const float b = bias ? bias[qq] : 0.0f;
    float* out = y + q * g.out_plane();
    const int64_t i1 = std::min(R.out_size, (band + 1) * kBand);
    int64_t i = band * kBand;
    for (; i + NR <= i1; i += NR) make_rows<NR>(p, i, jl, jr, b, out, C.out_size);
    for (; i < i1; ++i) make_rows<1>(p, i, jl, jr, b, out, C.out_size);
  }
}

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
