// Depthwise float32 convolution with vectors along output rows and a tile of output rows
// in registers, compiled once per instruction set: for depthwise layers (one input plane
// per output plane) with square 3x3, 5x5 or 7x7 kernels, stride 1 or 2 and no dilation,
// on planes at least 12 outputs wide (MobileNet's 14x14-112x112 layers).
//
// Each task copies the input rows it reads, padded and, at stride 2, split into even and
// odd columns (column 2k + p goes to phase p, position k), so that every tap reads one
// phase contiguously. The register tile is R output rows x NV vectors of output columns:
// each input vector is loaded once and serves every output row of the tile whose window
// holds its row (with R = 4 rows, a 3x3 stride-1 kernel loads 6 input rows for 12 row
// taps). The channels-in-lanes path (conv2d_depthwise_lanes.cpp) transposes its planes
// in and out, which costs more than the arithmetic of a 3x3 or a stride-2 layer; this
// path needs no transpose and keeps the lanes full on rows of 14 or more.
//
// The input gradient at stride 1 is the same correlation: the output gradient, padded
// with zeros by (kernel - 1 - padding), against the flipped kernel.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the
// registry line names both (registry/registry.cpp).
#include <cstdint>

#include "common/geometry.h"

namespace convpool {

// Output rows of a register tile.
constexpr int64_t kDepthwiseRowsTile = 4;

}  // namespace convpool

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------

namespace convpool {

namespace {

// The kernels are instantiated per kernel size and stride; below 12 output columns a
// vector along the row is mostly empty and the channels-in-lanes path is faster.
bool depthwise_rows_shape(const WindowAxis& rows, const WindowAxis& cols, int64_t out_cols) {
  const int64_t k = rows.kernel;
  return cols.kernel == k && (k == 3 || k == 5 || k == 7) && rows.stride == cols.stride &&
         (rows.stride == 1 || rows.stride == 2) && rows.dilation == 1 && cols.dilation == 1 &&
         out_cols >= 12;
}

// Grouped, one input plane per group: a single-group filter bank (LeNet's first layer)
// is the channel-blocked path's.
bool depthwise_planes(const Conv2dGeometry& g) {
  return g.in_channels_per_group() == 1 && g.groups > 1 && g.batch > 0 && g.rows.out_size > 0 &&
         g.cols.out_size > 0 && g.in_plane() > 0;
}

}  // namespace

bool depthwise_rows_forward_supports(const Conv2dGeometry& g, int) {
  return depthwise_planes(g) && depthwise_rows_shape(g.rows, g.cols, g.cols.out_size);
}

// Stride 1 only (a stride-1 correlation of the output gradient), one output plane per
// input plane (nothing to sum across a group), zero padding (the padded output gradient
// is folded by nothing).
bool depthwise_rows_grad_input_supports(const Conv2dGeometry& g, int) {
  return depthwise_planes(g) && g.out_channels_per_group() == 1 && g.zero_padded() &&
         g.rows.stride == 1 && depthwise_rows_shape(g.rows, g.cols, g.cols.in_size);
}

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>
#include <array>
#include <cstdint>

#include <omp.h>

#include "common/simd_vec.h"
#include "common/threading.h"
#include "conv/padded_rows.h"

namespace convpool::CONVPOOL_ISA {

namespace {

constexpr int R = int(kDepthwiseRowsTile);
// Vectors of output columns per tile: R x NV accumulators, NV input vectors and the
// weights must fit the register file.
constexpr int kMaxVectors = kVectorRegisters >= 32 ? 4 : 2;

// The input rows a task reads, padded by the geometry's mode and split into `stride`
// column phases: row b, phase p, position k holds padded column k * stride + p. Phases
// are whole vectors long with slack, so that a tile's loads never leave a row.
struct PhaseRows {
  float* data = nullptr;
  float* scratch = nullptr;  // one padded row before the split
  int64_t stride = 1, phase_len = 0, row_len = 0;

  void fill(const float* plane, int64_t rows, int64_t cols, int64_t first_row, int64_t count,
            int64_t left, PaddingMode mode) const {
    if (stride == 1) {
      copy_padded_rows(plane, rows, cols, first_row, count, left, row_len, data, row_len, mode);
      return;
    }
    for (int64_t b = 0; b < count; ++b) {
      copy_padded_rows(plane, rows, cols, first_row + b, 1, left, row_len, scratch, row_len, mode);
      float* dst = data + b * row_len;
      for (int64_t k = 0; k < phase_len; k += V) {
        const vec a = load(scratch + 2 * k), c = load(scratch + 2 * k + V);
        store(dst + k, even_lanes(a, c));
        store(dst + phase_len + k, odd_lanes(a, c));
      }
    }
  }
};

// R output rows x NV vectors of output columns; row i of the tile reads buffer rows
// i * S .. i * S + K - 1:
//   out[i * out_stride + v * V + l] = bias + sum_{s, t < K} w[s * K + t] *
//       in[(i * S + s) * row_len + (t % S) * phase_len + t / S + v * V + l]
// storing rows i < rows and columns below `cols`.
template <int K, int S, int NV>
void row_tile(const float* in, int64_t row_len, int64_t phase_len, const float* w, vec bias,
              float* out, int64_t out_stride, int64_t rows, int64_t cols) {
  vec acc[R][NV];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = bias;
  // Each buffer row r of the tile's window, each tap column t: NV vectors loaded once,
  // added into every tile row i that reads row r (kernel row s = r - i * S). The loops
  // are unrolled whole, so that the accumulators stay in registers.
#pragma GCC unroll 16
  for (int r = 0; r < (R - 1) * S + K; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < K; ++t) {
      const float* p = in + r * row_len + (t % S) * phase_len + t / S;
      vec x[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) x[v] = load(p + v * V);
      // The weights are loaded where they are used: hoisted, the 9-49 of the kernel
      // would crowd the accumulators out of the registers.
      const float* wt = w;
      asm volatile("" : "+r"(wt));
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) {
        const int s = r - i * S;
        if (s < 0 || s >= K) continue;
        const vec wv = broadcast(wt[s * K + t]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] += wv * x[v];
      }
      // Each tap's products are added before the next tap's inputs are loaded: left to
      // itself the compiler runs the tile vector by vector, loading ahead and spilling.
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) asm volatile("" : "+v"(acc[i][v]));
    }
  }
  for (int i = 0; i < R; ++i) {
    if (i >= rows) break;
    for (int v = 0; v < NV; ++v) {
      const int64_t lanes = cols - v * V;
      if (lanes >= V) {
        store(out + i * out_stride + v * V, acc[i][v]);
      } else if (lanes > 0) {
        store_first(out + i * out_stride + v * V, acc[i][v], lanes);
      }
    }
  }
}

using RowTileFn = void (*)(const float*, int64_t, int64_t, const float*, vec, float*, int64_t,
                           int64_t, int64_t);

template <int K, int S, int... N>
constexpr std::array<RowTileFn, kMaxVectors + 1> row_tiles(std::integer_sequence<int, N...>) {
  return {nullptr, &row_tile<K, S, N + 1>...};
}

template <int K, int S>
const RowTileFn* row_tiles_for() {
  static constexpr std::array<RowTileFn, kMaxVectors + 1> table =
      row_tiles<K, S>(std::make_integer_sequence<int, kMaxVectors>{});
  return table.data();
}

// The tiles for NV = 1 .. kMaxVectors vectors of kernel size k and stride s (the
// predicate admits 3, 5, 7 and 1, 2).
const RowTileFn* row_tiles_for(int64_t k, int64_t s) {
  if (s == 1) {
    if (k == 3) return row_tiles_for<3, 1>();
    if (k == 5) return row_tiles_for<5, 1>();
    return row_tiles_for<7, 1>();
  }
  if (k == 3) return row_tiles_for<3, 2>();
  if (k == 5) return row_tiles_for<5, 2>();
  return row_tiles_for<7, 2>();
}

// The forward pass of `g` (depthwise, square kernel of 3, 5 or 7, equal strides of 1 or
// 2, no dilation). Tasks are (image, channel, block of output rows); the blocks are whole
// planes unless there are too few planes to keep every thread busy.
void depthwise_rows_run(const Conv2dGeometry& g, const float* x, const float* w,
                        const float* bias, float* y) {
  const WindowAxis &Ra = g.rows, &Ca = g.cols;
  const int64_t K = Ra.kernel, S = Ra.stride, OH = Ra.out_size, OW = Ca.out_size;
  const int64_t cout_g = g.out_channels_per_group(), KK = g.kernel_plane();
  const int64_t out_vectors = ceil_div(OW, V);
  const int64_t phase_len = ceil_div(out_vectors * V + (K - 1) / S + 1, V) * V;
  const int64_t row_len = S * phase_len;
  const int64_t planes = g.batch * g.out_channels;
  // Rows per task: a multiple of the tile's, splitting the planes only as far as needed
  // for several tasks per thread.
  const int64_t wanted_tasks = 4 * int64_t(num_threads());
  const int64_t splits = std::clamp<int64_t>(ceil_div(wanted_tasks, planes), 1, ceil_div(OH, R));
  const int64_t block = ceil_div(ceil_div(OH, splits), R) * R;
  const int64_t blocks = ceil_div(OH, block), tasks = planes * blocks;
  const int64_t window_rows = (block - 1) * S + K;
  const int threads = threads_for_tasks(tasks, planes * OH * OW * KK);
  // Every thread's buffer, allocated here: a failure inside the parallel region could not
  // be reported.
  const int64_t per_thread = window_rows * row_len + row_len;
  Array<float> buffers(static_cast<size_t>(threads * per_thread));
  const RowTileFn* tiles = row_tiles_for(K, S);
#pragma omp parallel num_threads(threads)
  {
    PhaseRows in;
    in.stride = S, in.phase_len = phase_len, in.row_len = row_len;
    in.data = buffers.data() + omp_get_thread_num() * per_thread;
    in.scratch = in.data + window_rows * row_len;
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task % blocks, plane = task / blocks;
      const int64_t n = plane / g.out_channels, q = plane % g.out_channels, p = q / cout_g;
      const int64_t r0 = b * block, rows = std::min(block, OH - r0);
      // Whole tiles of rows: the rows past the last output are read, never stored.
      in.fill(x + (n * g.in_channels + p) * g.in_plane(), Ra.in_size, Ca.in_size,
              r0 * S - Ra.pad_before, (ceil_div(rows, R) * R - 1) * S + K, Ca.pad_before,
              g.padding_mode);
      const float* wq = w + q * KK;
      const vec bq = broadcast(bias ? bias[q] : 0.0f);
      float* out = y + plane * g.out_plane() + r0 * OW;
      for (int64_t i = 0; i < rows; i += R) {
        const float* src = in.data + i * S * row_len;
        for (int64_t v = 0; v < out_vectors; v += kMaxVectors) {
          const int64_t nv = std::min<int64_t>(kMaxVectors, out_vectors - v);
          tiles[nv](src + v * V, row_len, phase_len, wq, bq, out + i * OW + v * V, OW, rows - i,
                    OW - v * V);
        }
      }
    }
  }
}

}  // namespace

void depthwise_rows_forward(const Conv2dGeometry& g, const float* x, const float* w,
                            const float* bias, float* y) {
  depthwise_rows_run(g, x, w, bias, y);
}

// grad_x[i][j] = sum_{s,t} w[s][t] * grad_y[i + pad - s][j + pad - t] (stride 1): the
// forward correlation of the output gradient, zero padded by K - 1 - pad before, with
// the kernel turned by 180 degrees.
void depthwise_rows_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                               float* grad_x) {
  const int64_t KK = g.kernel_plane();
  Array<float> flipped(static_cast<size_t>(g.out_channels * KK));
  for (int64_t q = 0; q < g.out_channels; ++q)
    for (int64_t k = 0; k < KK; ++k) flipped[size_t(q * KK + k)] = w[q * KK + KK - 1 - k];
  Conv2dGeometry t = g;
  t.padding_mode = PaddingMode::zeros;
  for (WindowAxis* a : {&t.rows, &t.cols}) {
    const WindowAxis forward = *a;
    a->in_size = forward.out_size;
    a->out_size = forward.in_size;
    a->pad_before = forward.kernel - 1 - forward.pad_before;
    a->pad_after = forward.kernel - 1 - forward.pad_after;
  }
  depthwise_rows_run(t, grad_y, flipped.data(), nullptr, grad_x);
}

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
