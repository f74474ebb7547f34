// Depthwise float32 convolution with channels in the vector lanes, compiled once per
// instruction set: for depthwise layers (one input and one
// output channel per group) on small planes (MobileNet's 7x7-56x56 layers), where vectors
// along a row of 7 or 14 pixels would be half empty. Each task takes V channels of one
// image, transposes them in registers to pixel-major order with the channels in the lanes
// (zero padded), runs every pass as vector FMAs per pixel and transposes the result back.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the
// registry line names both (registry/registry.cpp).
#include <cstdint>

#include "common/geometry.h"

namespace convpool {

// The rows (or columns) of the zero-padded plane the kernels hold for axis `a`: the
// padding before, the input, and whatever the last window reads past it (defined in the
// predicate section).
int64_t depthwise_lanes_padded_size(const WindowAxis& a);

}  // namespace convpool

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
#include <algorithm>

namespace convpool {

int64_t depthwise_lanes_padded_size(const WindowAxis& a) {
  const int64_t extent = (a.out_size - 1) * a.stride + (a.kernel - 1) * a.dilation + 1;
  return std::max(a.pad_before + a.in_size, extent);
}

namespace {

// Depthwise, strides up to 4, and a padded plane of V channels small enough for each
// thread to hold. Not a single channel (groups 1): its lanes would stay 1/V full, and
// `plane` measured up to 4x faster there (one 48x48 or 28x28 grey picture, 3x3).
bool depthwise_small_planes(const Conv2dGeometry& g) {
  constexpr int64_t kMaxPaddedPixels = 1 << 16;
  const int64_t rows = depthwise_lanes_padded_size(g.rows);
  const int64_t cols = depthwise_lanes_padded_size(g.cols);
  // The lane planes pad with zeros.
  return g.zero_padded() && g.in_channels_per_group() == 1 && g.out_channels_per_group() == 1 &&
         g.groups >= 2 && g.batch > 0 &&
         g.rows.out_size > 0 && g.cols.out_size > 0 && g.in_plane() > 0 && g.rows.stride <= 4 &&
         g.cols.stride <= 4 && rows <= kMaxPaddedPixels && cols <= kMaxPaddedPixels &&
         rows * cols <= kMaxPaddedPixels;
}

}  // namespace

// Where this path beat the row-vector ones (plane, depthwise_strided, few_channels) at
// batch 1 and 8, measured per pass on MobileNet's layers: the forward pass up to 56
// output columns, the gradients on 7x7 and 14x14 planes only.
bool depthwise_lanes_forward_supports(const Conv2dGeometry& g, int) {
  return depthwise_small_planes(g) && g.cols.out_size < 64;
}

bool depthwise_lanes_grad_input_supports(const Conv2dGeometry& g, int) {
  return depthwise_small_planes(g) && g.cols.in_size < 28;
}

bool depthwise_lanes_grad_weight_supports(const Conv2dGeometry& g, int) {
  return depthwise_small_planes(g) && g.cols.out_size < 28;
}

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "common/simd_vec.h"
#include "common/threading.h"
#include "conv/stride_phases.h"

#include <omp.h>

namespace convpool::CONVPOOL_ISA {

namespace {

// A plane of V channels in pixel-major order, zero padded: pixel (i, j) of the source
// planes is at ((i + top) * cols + j + left) * V; everything else is zero.
struct LanePlane {
  Array<float> data;
  int64_t rows = 0, cols = 0, top = 0, left = 0;

  void shape(int64_t rows_, int64_t cols_, int64_t top_, int64_t left_) {
    rows = rows_, cols = cols_, top = top_, left = left_;
    data.assign(size_t(rows * cols * V + V), 0.0f);
  }
  float* pixel(int64_t i, int64_t j) { return data.data() + ((i + top) * cols + j + left) * V; }
  const float* at(int64_t padded_row, int64_t padded_col) const {
    return data.data() + (padded_row * cols + padded_col) * V;
  }

  // Channel c < channels of src (planes `plane` floats apart, H x W each) into lane c;
  // lanes from `channels` on stay zero. Writes only the source pixels, so the padding
  // set by shape() stays zero.
  void load_planes(const float* src, int64_t plane, int64_t channels, int64_t H, int64_t W) {
    int64_t p0 = 0, i = 0, j = 0;
    if (channels == V) {
      for (; p0 + V <= H * W; p0 += V) {
        vec block[V];
        for (int c = 0; c < V; ++c) {
          // 16 planes read side by side defeat the hardware prefetcher on large batches.
          __builtin_prefetch(src + c * plane + p0 + 4 * V);
          block[c] = load(src + c * plane + p0);
        }
        transpose(block);
        for (int p = 0; p < V; ++p) {
          store(pixel(i, j), block[p]);
          if (++j == W) j = 0, ++i;
        }
      }
    }
    for (; p0 < H * W; ++p0) {
      float* dst = pixel(i, j);
      for (int64_t c = 0; c < V; ++c) dst[c] = c < channels ? src[c * plane + p0] : 0.0f;
      if (++j == W) j = 0, ++i;
    }
  }
};

// dst[c * plane + p] = src[p * V + c] for c < channels, p < pixels: pixel-major lanes back
// to planes.
void store_planes(const float* src, int64_t pixels, int64_t channels, float* dst, int64_t plane) {
  int64_t p0 = 0;
  if (channels == V) {
    for (; p0 + V <= pixels; p0 += V) {
      vec block[V];
      for (int p = 0; p < V; ++p) block[p] = load(src + (p0 + p) * V);
      transpose(block);
      for (int c = 0; c < V; ++c) store(dst + c * plane + p0, block[c]);
    }
  }
  for (; p0 < pixels; ++p0)
    for (int64_t c = 0; c < channels; ++c) dst[c * plane + p0] = src[p0 * V + c];
}

// The weights of every block of V channels as [block][tap][V], zero past the last
// channel: packed once per call, not once per image (on a 7x7 plane the packing cost as
// much as the arithmetic).
Array<float> pack_weights(const float* w, int64_t channels, int64_t K) {
  const int64_t blocks = ceil_div(channels, V);
  Array<float> packed(static_cast<size_t>(blocks * K * V));
  for (int64_t q = 0; q < channels; ++q)
    for (int64_t k = 0; k < K; ++k) packed[size_t(((q / V) * K + k) * V + q % V)] = w[q * K + k];
  return packed;
}

// UR consecutive output pixels of one row, stride `col_step` (in pixels) in `in`:
//   out[u] = init + sum_{k < ntaps} w[k] * in[offsets[k] + u * col_step * V]
template <int UR>
void pixel_vectors(const float* in, int64_t col_step, const int64_t* offsets, const int64_t* kernel_index,
                   int64_t ntaps, const float* w, vec init, float* out) {
  vec acc[UR];
  for (int u = 0; u < UR; ++u) acc[u] = init;
  for (int64_t k = 0; k < ntaps; ++k) {
    const vec wv = load(w + kernel_index[k] * V);
    const float* p = in + offsets[k];
    for (int u = 0; u < UR; ++u) acc[u] += wv * load(p + u * col_step * V);
  }
  for (int u = 0; u < UR; ++u) store(out + u * V, acc[u]);
}

constexpr int kPixels = 8;

// A row of `count` pixels, kPixels at a time; output pixel u goes to out + u * out_step * V.
void pixel_row(const float* in, int64_t col_step, const int64_t* offsets, const int64_t* kernel_index,
               int64_t ntaps, const float* w, vec init, int64_t count, float* out, int64_t out_step) {
  alignas(64) float tile[kPixels * V];
  int64_t u = 0;
  for (; u + kPixels <= count; u += kPixels) {
    const float* src = in + u * col_step * V;
    if (out_step == 1) {
      pixel_vectors<kPixels>(src, col_step, offsets, kernel_index, ntaps, w, init, out + u * V);
    } else {
      pixel_vectors<kPixels>(src, col_step, offsets, kernel_index, ntaps, w, init, tile);
      for (int v = 0; v < kPixels; ++v) store(out + (u + v) * out_step * V, load(tile + v * V));
    }
  }
  // The rest in one tile of as many pixels (one accumulator chain per pixel would wait on
  // the FMA latency).
  const int64_t rest = count - u;
  if (rest == 0) return;
  using TileFn = void (*)(const float*, int64_t, const int64_t*, const int64_t*, int64_t, const float*, vec, float*);
  static constexpr TileFn tails[kPixels] = {nullptr, &pixel_vectors<1>, &pixel_vectors<2>, &pixel_vectors<3>,
                                            &pixel_vectors<4>, &pixel_vectors<5>, &pixel_vectors<6>, &pixel_vectors<7>};
  tails[rest](in + u * col_step * V, col_step, offsets, kernel_index, ntaps, w, init, tile);
  for (int64_t v = 0; v < rest; ++v) store(out + (u + v) * out_step * V, load(tile + v * V));
}

// The forward row kernel for undilated rows of KW taps and column stride CS: each input
// pixel of a row is loaded once and serves every tap that reads it (the generic kernel
// loads once per tap, which made it load-bound at a third of the FMA rate).
//   out[u] = init + sum_{s < kh, t < KW} w[(s * KW + t) * V] * in[(s * row_stride + u * CS + t) * V]
template <int KW, int CS, int UR>
void row_tile(const float* in, int64_t row_stride, int64_t kh, const float* w, vec init, float* out) {
  constexpr int N = (UR - 1) * CS + KW;
  vec acc[UR];
  for (int u = 0; u < UR; ++u) acc[u] = init;
  for (int64_t s = 0; s < kh; ++s, in += row_stride * V, w += KW * V) {
    vec col[N];
    for (int m = 0; m < N; ++m) col[m] = load(in + m * V);
    for (int t = 0; t < KW; ++t) {
      const vec wv = load(w + t * V);
      for (int u = 0; u < UR; ++u) acc[u] += wv * col[u * CS + t];
    }
  }
  for (int u = 0; u < UR; ++u) store(out + u * V, acc[u]);
}

using RowTileFn = void (*)(const float*, int64_t, int64_t, const float*, vec, float*);

template <int KW, int CS, int... U>
constexpr std::array<RowTileFn, kPixels + 1> row_tiles(std::integer_sequence<int, U...>) {
  return {nullptr, &row_tile<KW, CS, U + 1>...};
}

template <int KW, int CS>
const RowTileFn* row_tiles_for() {
  static constexpr std::array<RowTileFn, kPixels + 1> table =
      row_tiles<KW, CS>(std::make_integer_sequence<int, kPixels>{});
  return table.data();
}

// The specialised row kernels by tile width (1..kPixels), or null where there is none.
const RowTileFn* row_tiles_for(int64_t kw, int64_t cs, int64_t dilation) {
  if (dilation != 1) return nullptr;
  if (cs == 1) {
    if (kw == 3) return row_tiles_for<3, 1>();
    if (kw == 5) return row_tiles_for<5, 1>();
    if (kw == 7) return row_tiles_for<7, 1>();
  } else if (cs == 2) {
    if (kw == 3) return row_tiles_for<3, 2>();
    if (kw == 5) return row_tiles_for<5, 2>();
    if (kw == 7) return row_tiles_for<7, 2>();
  }
  return nullptr;
}

}  // namespace

void depthwise_lanes_forward(const Conv2dGeometry& g, const float* x, const float* w,
                             const float* bias, float* y) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t K = g.kernel_plane(), OH = R.out_size, OW = C.out_size;
  const int64_t blocks = ceil_div(g.out_channels, V), tasks = g.batch * blocks;
  const int64_t rows = depthwise_lanes_padded_size(R);
  const int64_t cols = depthwise_lanes_padded_size(C);
  const RowTileFn* tiles = row_tiles_for(C.kernel, C.stride, C.dilation);
  const Array<float> packed = pack_weights(w, g.out_channels, K);
  Array<int64_t> offsets(static_cast<size_t>(K)), kernel_index(static_cast<size_t>(K));
  for (int64_t s = 0; s < R.kernel; ++s)
    for (int64_t t = 0; t < C.kernel; ++t) {
      offsets[size_t(s * C.kernel + t)] = (s * R.dilation * cols + t * C.dilation) * V;
      kernel_index[size_t(s * C.kernel + t)] = s * C.kernel + t;
    }
#pragma omp parallel num_threads(threads_for(g.batch * g.out_channels * g.out_plane() * K))
  {
    LanePlane in;
    in.shape(rows, cols, R.pad_before, C.pad_before);
    Array<float> out(static_cast<size_t>(OH * OW * V));
    alignas(64) float bias_lanes[V];
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t n = task / blocks, first = (task % blocks) * V;
      const int64_t channels = std::min<int64_t>(V, g.out_channels - first);
      in.load_planes(x + (n * g.in_channels + first) * g.in_plane(), g.in_plane(), channels,
                     R.in_size, C.in_size);
      const float* wb = packed.data() + (first / V) * K * V;
      for (int64_t c = 0; c < V; ++c) bias_lanes[c] = bias && c < channels ? bias[first + c] : 0.0f;
      const vec init = load(bias_lanes);
      for (int64_t i = 0; i < OH; ++i) {
        if (tiles == nullptr) {
          pixel_row(in.at(i * R.stride, 0), C.stride, offsets.data(), kernel_index.data(), K,
                    wb, init, OW, out.data() + i * OW * V, 1);
          continue;
        }
        for (int64_t j = 0; j < OW; j += kPixels) {
          const int64_t ur = std::min<int64_t>(kPixels, OW - j);
          tiles[ur](in.at(i * R.stride, j * C.stride), R.dilation * in.cols, R.kernel, wb, init,
                    out.data() + (i * OW + j) * V);
        }
      }
      store_planes(out.data(), OH * OW, channels, y + (n * g.out_channels + first) * g.out_plane(),
                   g.out_plane());
    }
  }
}

// grad_x[i][j] = sum over the taps of phase (i % sy, j % sx) of w[k] * grad_y[i / sy + os][j / sx + ot],
// grad_y zero outside its plane (margins of zeros around it in the lane plane).
void depthwise_lanes_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                                float* grad_x) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t K = g.kernel_plane(), H = R.in_size, W = C.in_size, SY = R.stride, SX = C.stride;
  const int64_t blocks = ceil_div(g.in_channels, V), tasks = g.batch * blocks;
  // Margins: every phase's reads land inside [-before, size - before) of the gradient.
  int64_t row_lo = 0, row_hi = 0, col_lo = 0, col_hi = 0;
  Array<Array<PhaseTap>> row_phases(static_cast<size_t>(SY)), col_phases(static_cast<size_t>(SX));
  for (int64_t ry = 0; ry < SY; ++ry) {
    row_phases[size_t(ry)] = phase_taps(R, ry);
    for (const PhaseTap& tap : row_phases[size_t(ry)]) {
      row_lo = std::min(row_lo, tap.offset);
      row_hi = std::max(row_hi, tap.offset + phase_size(R, ry) - 1);
    }
  }
  for (int64_t rx = 0; rx < SX; ++rx) {
    col_phases[size_t(rx)] = phase_taps(C, rx);
    for (const PhaseTap& tap : col_phases[size_t(rx)]) {
      col_lo = std::min(col_lo, tap.offset);
      col_hi = std::max(col_hi, tap.offset + phase_size(C, rx) - 1);
    }
  }
  const int64_t rows = std::max(row_hi + 1, R.out_size) - row_lo;
  const int64_t cols = std::max(col_hi + 1, C.out_size) - col_lo;
  const Array<float> packed = pack_weights(w, g.in_channels, K);
  // Per (row phase, column phase): the taps' offsets from the gradient pixel (a, b) and
  // their kernel indices.
  Array<Array<int64_t>> offsets(static_cast<size_t>(SY * SX)), kernel_index(static_cast<size_t>(SY * SX));
  for (int64_t ry = 0; ry < SY; ++ry)
    for (int64_t rx = 0; rx < SX; ++rx)
      for (const PhaseTap& a : row_phases[size_t(ry)])
        for (const PhaseTap& b : col_phases[size_t(rx)]) {
          offsets[size_t(ry * SX + rx)].push_back(((a.offset - row_lo) * cols + b.offset - col_lo) * V);
          kernel_index[size_t(ry * SX + rx)].push_back(a.kernel_index * C.kernel + b.kernel_index);
        }
#pragma omp parallel num_threads(threads_for(g.batch * g.in_channels * g.in_plane() * K / (SY * SX)))
  {
    LanePlane gy;
    gy.shape(rows, cols, -row_lo, -col_lo);
    Array<float> out(static_cast<size_t>(H * W * V));
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t n = task / blocks, first = (task % blocks) * V;
      const int64_t channels = std::min<int64_t>(V, g.in_channels - first);
      gy.load_planes(grad_y + (n * g.out_channels + first) * g.out_plane(), g.out_plane(), channels,
                     R.out_size, C.out_size);
      const float* wb = packed.data() + (first / V) * K * V;
      for (int64_t i = 0; i < H; ++i)
        for (int64_t rx = 0; rx < std::min(SX, W); ++rx) {
          const int64_t ph = (i % SY) * SX + rx;
          pixel_row(gy.at(i / SY, 0), 1, offsets[size_t(ph)].data(), kernel_index[size_t(ph)].data(),
                    int64_t(offsets[size_t(ph)].size()), wb, vec{}, phase_size(C, rx),
                    out.data() + (i * W + rx) * V, SX);
        }
      store_planes(out.data(), H * W, channels, grad_x + (n * g.in_channels + first) * g.in_plane(),
                   g.in_plane());
    }
  }
}

// dW[q][k] = sum_n sum_{oi, oj} gy[n][q][oi][oj] * x_padded[n][q][oi*sy + s*dh][oj*sx + t*dw]:
// each task (image, channel block) sums into its own slot; slots are added in image order.
void depthwise_lanes_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,
                                 float* grad_w) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t K = g.kernel_plane(), OH = R.out_size, OW = C.out_size;
  const int64_t blocks = ceil_div(g.out_channels, V), tasks = g.batch * blocks;
  const int64_t rows = depthwise_lanes_padded_size(R);
  const int64_t cols = depthwise_lanes_padded_size(C);
  Array<float> partial(static_cast<size_t>(tasks * K * V));
#pragma omp parallel num_threads(threads_for(g.batch * g.out_channels * g.out_plane() * K))
  {
    LanePlane in, gy;
    in.shape(rows, cols, R.pad_before, C.pad_before);
    gy.shape(OH, OW, 0, 0);
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t n = task / blocks, first = (task % blocks) * V;
      const int64_t channels = std::min<int64_t>(V, g.out_channels - first);
      in.load_planes(x + (n * g.in_channels + first) * g.in_plane(), g.in_plane(), channels,
                     R.in_size, C.in_size);
      gy.load_planes(grad_y + (n * g.out_channels + first) * g.out_plane(), g.out_plane(), channels,
                     OH, OW);
      float* sums = partial.data() + task * K * V;
      for (int64_t s = 0; s < R.kernel; ++s)
        for (int64_t t = 0; t < C.kernel; ++t) {
          vec acc[4] = {vec{}, vec{}, vec{}, vec{}};
          for (int64_t i = 0; i < OH; ++i) {
            const float* xr = in.at(i * R.stride + s * R.dilation, t * C.dilation);
            const float* gr = gy.at(i, 0);
            int64_t j = 0;
            for (; j + 4 <= OW; j += 4)
              for (int u = 0; u < 4; ++u) acc[u] += load(gr + (j + u) * V) * load(xr + (j + u) * C.stride * V);
            for (; j < OW; ++j) acc[0] += load(gr + j * V) * load(xr + j * C.stride * V);
          }
          store(sums + (s * C.kernel + t) * V, (acc[0] + acc[1]) + (acc[2] + acc[3]));
        }
    }
  }
#pragma omp parallel for num_threads(threads_for(tasks * K * V)) schedule(static)
  for (int64_t q = 0; q < g.out_channels; ++q) {
    const int64_t block = q / V, lane = q % V;
    for (int64_t k = 0; k < K; ++k) {
      float total = 0.0f;
      for (int64_t n = 0; n < g.batch; ++n) total += partial[size_t(((n * blocks + block) * K + k) * V + lane)];
      grad_w[q * K + k] = total;
    }
  }
}

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
