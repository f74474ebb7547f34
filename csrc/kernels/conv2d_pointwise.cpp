// Pointwise (1x1, groups 1, no padding, any stride) float32 convolution as a matrix
// product per picture: out[co, p] = sum_ci W[co, ci] x[ci, p].
//
// Forward and input gradient share one register tile: MR rows of the weight matrix (W for
// the forward pass, W^T for the input gradient), each broadcast from the weights in
// place, times NR vectors of pixels read in place from the input rows. Rows of W and
// columns of W^T are both a fixed stride apart, so nothing is packed: at batch 1 on small
// maps the weights are the largest operand, and one pass over them is the cost floor.
// The weight gradient is the same product over chunks of pixels: grad_y's rows broadcast
// against the chunk of the input transposed (input channels contiguous), each chunk added
// to the result in order, so the sum does not depend on the thread count. Strides above 1
// gather the strided pixels into a compact copy first (or scatter the input gradient from
// one).
// Work is split within a picture (output-row blocks x pixel tiles), so batch 1 uses every
// core, with a grain size (threads_for_tasks) that keeps small calls on one thread.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the registry
// lines name both (registry/registry.cpp).
#include <cstdint>

#include "common/geometry.h"

namespace convpool {

// Pixels per chunk of the weight gradient, whose transposed input (chunk x c_in floats)
// stays in L2 while every tile passes over it (defined in the predicate section; the
// kernels ask the same).
int64_t pointwise_chunk_pixels(int64_t c_in);

}  // namespace convpool

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
#include <algorithm>

namespace convpool {

namespace {

// A 1x1 window, one group, no padding: every output pixel reads exactly one input pixel
// (the dilation then changes nothing).
bool pointwise_case(const Conv2dGeometry& g) {
  const WindowAxis &R = g.rows, &C = g.cols;
  return R.kernel == 1 && C.kernel == 1 && g.groups == 1 && R.pad_before == 0 &&
         R.pad_after == 0 && C.pad_before == 0 && C.pad_after == 0 && g.batch > 0 &&
         g.in_channels > 0 && g.out_channels > 0 && g.out_plane() > 0;
}

bool strided(const Conv2dGeometry& g) { return g.rows.stride > 1 || g.cols.stride > 1; }

// The compact copy of the strided pixels (forward, weight gradient) or of the strided
// input gradient: one value per input channel and output pixel.
double compact_floats(const Conv2dGeometry& g) {
  return strided(g) ? double(g.batch) * double(g.in_channels) * double(g.out_plane()) : 0.0;
}

// Enough multiply-adds per output value of the forward pass and the input gradient for a
// matrix product to pay off (the weight gradient reduces over pixels, which are many).
constexpr int64_t kMinReduction = 8;

}  // namespace

int64_t pointwise_chunk_pixels(int64_t c_in) {
  return std::max<int64_t>(16, (int64_t(1) << 17) / c_in);
}

bool pointwise_forward_supports(const Conv2dGeometry& g, int) {
  return pointwise_case(g) && g.in_channels >= kMinReduction &&
         scratch_within_operands(g, compact_floats(g));
}

// The input gradient reads W^T in place, column by column, once per picture: with
// 512K weights or more and several pictures, `blocked` (weights packed once per call)
// measured 1.3-1.6x faster (8 x 7x7, 2048 -> 512 and 512 -> 2048; 8 x 14x14, 1024 -> 512;
// CPU time, one thread); below, or at batch 1, this path is ahead.
bool pointwise_grad_input_supports(const Conv2dGeometry& g, int) {
  const bool large_weights = g.in_channels >= 64 && g.out_channels >= 64 &&
                             g.in_channels * g.out_channels >= (int64_t(1) << 19);
  return pointwise_case(g) && g.out_channels >= kMinReduction &&
         !(large_weights && g.batch > 1) && scratch_within_operands(g, compact_floats(g));
}

// Where the weight gradient beat `blocked` (CPU time per call, one thread): up to about a
// thousand pixels in all (batch 1 on maps up to 28x28, batch 8 on 7x7: 1.1-1.7x); on more
// pixels `blocked` was ahead by up to 1.25x (8 x 14x14, 1024 -> 256), so it keeps them,
// except where it cannot run (fewer than 4 output channels).
constexpr double kGradWeightMostPixels = 1024;

bool pointwise_grad_weight_supports(const Conv2dGeometry& g, int) {
  const double chunk = double(std::min(pointwise_chunk_pixels(g.in_channels), g.out_plane()));
  const bool wins = double(g.batch) * double(g.out_plane()) <= kGradWeightMostPixels ||
                    g.out_channels < 4;
  return pointwise_case(g) && wins &&
         scratch_within_operands(g, compact_floats(g) + chunk * double(g.in_channels));
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
#include "common/workspace.h"

#include <omp.h>

namespace convpool::CONVPOOL_ISA {

namespace {

// The product's register tile: kMR broadcast rows x kNR vectors of pixels (kMR x kNR
// accumulators, kNR input vectors and a broadcast within the register file).
#if defined(CONVPOOL_ISA_avx512)
constexpr int kMR = 6, kNR = 4;
#else
constexpr int kMR = 6, kNR = 2;
#endif

// Input bytes of one band of pixel tiles (matrix_product): half of a core's L2.
constexpr double kBandBytes = 1 << 20;

// The first n (< V) lanes at p, the others zero, reading nothing past p + n.
inline vec load_first(const float* p, int n) {
#if defined(CONVPOOL_ISA_avx512)
  return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p);
#elif defined(CONVPOOL_ISA_avx2)
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lanes));
#else
  vec v = vec{};
  for (int l = 0; l < n; ++l) v[l] = p[l];
  return v;
#endif
}

// The product's microkernel. Contract, for o < MR, r < NR and lanes l < V (when MASKED,
// lanes of the last vector from `last_lanes` on are undefined: they read the next row, or
// zeros past the last one):
//   result[o * NR + r][l] = sum_{k < depth} a[o * a_row + k * a_step] * x[k * x_row + r * V + l]
template <int MR, int NR, bool MASKED>
void product_tile(const float* a, int64_t a_row, int64_t a_step, const float* x, int64_t x_row,
                  int64_t depth, int last_lanes, vec* result) {
  vec acc[MR][NR];
  for (int o = 0; o < MR; ++o)
    for (int r = 0; r < NR; ++r) acc[o][r] = vec{};
  const float* ao[MR];
  for (int o = 0; o < MR; ++o) ao[o] = a + o * a_row;
  auto step = [&](int64_t k, const float* row, bool masked) {
    vec xv[NR];
    for (int r = 0; r < NR; ++r)
      xv[r] = (masked && r == NR - 1) ? load_first(row + r * V, last_lanes) : load(row + r * V);
    for (int o = 0; o < MR; ++o) {
      const vec wv = broadcast(ao[o][k * a_step]);
      for (int r = 0; r < NR; ++r) acc[o][r] += wv * xv[r];
    }
  };
  // A short last vector reads on into the next rows, whose lanes are discarded; the rows
  // within V - last_lanes floats of the array's end (the last one, or more when rows are
  // shorter than a vector) are read masked, after the loop (a masked load in the loop
  // itself made GCC keep the accumulators in memory).
  const int64_t masked_rows =
      MASKED ? std::min<int64_t>(depth, (V - last_lanes + x_row - 1) / std::max<int64_t>(x_row, 1))
             : 0;
  const int64_t plain = depth - masked_rows;
  for (int64_t k = 0; k < plain; ++k, x += x_row) step(k, x, false);
  for (int64_t k = plain; k < depth; ++k, x += x_row) step(k, x, true);
  for (int o = 0; o < MR; ++o)
    for (int r = 0; r < NR; ++r) result[o * NR + r] = acc[o][r];
}

using ProductFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, int64_t, int,
                           vec*);

template <int MR, int... R>
constexpr std::array<std::array<ProductFn, 2>, kNR + 1> products_for(std::integer_sequence<int, R...>) {
  return {std::array<ProductFn, 2>{},
          std::array<ProductFn, 2>{&product_tile<MR, R + 1, false>, &product_tile<MR, R + 1, true>}...};
}

template <int... M>
constexpr std::array<std::array<std::array<ProductFn, 2>, kNR + 1>, kMR + 1> product_table(
    std::integer_sequence<int, M...>) {
  return {std::array<std::array<ProductFn, 2>, kNR + 1>{},
          products_for<M + 1>(std::make_integer_sequence<int, kNR>{})...};
}

// kProducts[mr][nr][masked] for the tails of rows and pixels.
const std::array<std::array<std::array<ProductFn, 2>, kNR + 1>, kMR + 1> kProducts =
    product_table(std::make_integer_sequence<int, kMR>{});

// out[n][m][p] = bias[m] + sum_k a[m * a_row + k * a_step] * x[n][k][p], for n < batch,
// m < rows, k < depth, p < pixels; x and out are C-contiguous.
void matrix_product(const float* a, int64_t a_row, int64_t a_step, const float* x, const float* bias,
                    float* out, int64_t batch, int64_t rows, int64_t depth, int64_t pixels) {
  const int64_t vectors = ceil_div(pixels, V), tiles = ceil_div(vectors, kNR);
  const int64_t row_blocks = ceil_div(rows, kMR);
  const int tail_lanes = int(pixels - (vectors - 1) * V);
  // Bands of pixel tiles whose input stays in L2 while every row block passes over it;
  // within a band, row blocks outermost, so that consecutive tasks write along the same
  // output rows (scattering each task's rows across the whole output ran the input
  // gradient of 8 x 64 x 56x56 at half the speed).
  const double tile_bytes = double(depth) * kNR * V * sizeof(float);
  const int64_t band_tiles = std::clamp<int64_t>(int64_t(kBandBytes / tile_bytes), 1, tiles);
  const int64_t per_picture = tiles * row_blocks, tasks = batch * per_picture;
  const int team = threads_for_tasks(tasks, batch * rows * depth * pixels);
#pragma omp parallel for num_threads(team) schedule(static)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t n = task / per_picture, rest = task % per_picture;
    const int64_t band = rest / (band_tiles * row_blocks), in_band = rest % (band_tiles * row_blocks);
    const int64_t tiles_here = std::min(band_tiles, tiles - band * band_tiles);
    const int64_t block = in_band / tiles_here, tile = band * band_tiles + in_band % tiles_here;
    const int64_t m0 = block * kMR, v0 = tile * kNR;
    const int mr = int(std::min<int64_t>(kMR, rows - m0));
    const int nr = int(std::min<int64_t>(kNR, vectors - v0));
    const bool masked = v0 + nr == vectors && tail_lanes < V;
    vec result[kMR * kNR];
    kProducts[mr][nr][masked](a + m0 * a_row, a_row, a_step, x + n * depth * pixels + v0 * V,
                              pixels, depth, tail_lanes, result);
    float* dst = out + (n * rows + m0) * pixels + v0 * V;
    for (int o = 0; o < mr; ++o, dst += pixels) {
      const vec b = broadcast(bias ? bias[m0 + o] : 0.0f);
      for (int r = 0; r < nr; ++r) {
        const vec v = bias ? result[o * nr + r] + b : result[o * nr + r];
        if (masked && r == nr - 1) {
          store_first(dst + r * V, v, tail_lanes);
        } else {
          store(dst + r * V, v);
        }
      }
    }
  }
}

// The pixels (oh * sr, ow * sc) of every input plane, as planes of out_rows x out_cols.
void gather_strided(const Conv2dGeometry& g, const float* x, float* compact) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t planes = g.batch * g.in_channels, in_plane = g.in_plane(), out_plane = g.out_plane();
#pragma omp parallel for num_threads(threads_for(planes * out_plane)) schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const float* src = x + plane * in_plane;
    float* dst = compact + plane * out_plane;
    for (int64_t oh = 0; oh < R.out_size; ++oh, dst += C.out_size) {
      const float* row = src + oh * R.stride * C.in_size;
      for (int64_t ow = 0; ow < C.out_size; ++ow) dst[ow] = row[ow * C.stride];
    }
  }
}

// The inverse: every input plane zero but for the strided pixels, taken from `compact`.
void scatter_strided(const Conv2dGeometry& g, const float* compact, float* grad_x) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t planes = g.batch * g.in_channels, in_plane = g.in_plane(), out_plane = g.out_plane();
#pragma omp parallel for num_threads(threads_for(planes * in_plane)) schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane) {
    float* dst = grad_x + plane * in_plane;
    const float* src = compact + plane * out_plane;
    std::fill(dst, dst + in_plane, 0.0f);
    for (int64_t oh = 0; oh < R.out_size; ++oh, src += C.out_size) {
      float* row = dst + oh * R.stride * C.in_size;
      for (int64_t ow = 0; ow < C.out_size; ++ow) row[ow * C.stride] = src[ow];
    }
  }
}

bool is_strided(const Conv2dGeometry& g) { return g.rows.stride > 1 || g.cols.stride > 1; }

}  // namespace

void pointwise_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                       float* y) {
  const int64_t pixels = g.out_plane();
  if (is_strided(g)) {
    float* compact = workspace(WorkspaceSlot::padded_input, size_t(g.batch * g.in_channels * pixels));
    gather_strided(g, x, compact);
    x = compact;
  }
  matrix_product(w, g.in_channels, 1, x, bias, y, g.batch, g.out_channels, g.in_channels, pixels);
}

// grad_x[n][ci][p] = sum_co W[co][ci] grad_y[n][co][p]: the product with W^T, whose rows
// are W's columns (consecutive floats) and whose steps are W's rows.
void pointwise_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                          float* grad_x) {
  const int64_t pixels = g.out_plane();
  float* target = grad_x;
  if (is_strided(g))
    target = workspace(WorkspaceSlot::padded_input, size_t(g.batch * g.in_channels * pixels));
  matrix_product(w, 1, g.in_channels, grad_y, nullptr, target, g.batch, g.in_channels,
                 g.out_channels, pixels);
  if (target != grad_x) scatter_strided(g, target, grad_x);
}

// grad_w[co][ci] = sum_{n, p} grad_y[n][co][p] x[n][ci][p], chunk by chunk of pixels
// (within one picture): the chunk of x transposed to [p][ci], then the product of grad_y's
// rows (broadcast) with it, added to grad_w. Each element adds the chunks in order.
void pointwise_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,
                           float* grad_w) {
  const int64_t c_out = g.out_channels, c_in = g.in_channels, pixels = g.out_plane();
  if (is_strided(g)) {
    float* compact = workspace(WorkspaceSlot::padded_input, size_t(g.batch * c_in * pixels));
    gather_strided(g, x, compact);
    x = compact;
  }
  const int64_t chunk = std::min(pointwise_chunk_pixels(c_in), pixels);
  const int64_t chunks_per_picture = ceil_div(pixels, chunk), chunks = g.batch * chunks_per_picture;
  float* const xt = workspace(WorkspaceSlot::transformed_weights, size_t(chunk * c_in));
  const int64_t vectors = ceil_div(c_in, V), tiles = ceil_div(vectors, kNR);
  const int64_t row_blocks = ceil_div(c_out, kMR), tasks = row_blocks * tiles;
  const int tail_lanes = int(c_in - (vectors - 1) * V);
  const int64_t weights = c_out * c_in;
  const int team = threads_for_tasks(tasks, g.batch * pixels * weights);
#pragma omp parallel num_threads(team)
  {
#pragma omp for schedule(static)
    for (int64_t e = 0; e < weights; ++e) grad_w[e] = 0.0f;
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t n = c / chunks_per_picture, p0 = c % chunks_per_picture * chunk;
      const int64_t count = std::min(chunk, pixels - p0);
      const float* src = x + n * c_in * pixels + p0;
      // V x V blocks transposed in registers; the channel and pixel tails one by one.
#pragma omp for schedule(static)
      for (int64_t i0 = 0; i0 < c_in; i0 += V) {
        const int64_t width = std::min<int64_t>(V, c_in - i0);
        int64_t p = 0;
        if (width == V) {
          for (; p + V <= count; p += V) {
            vec block[V];
            for (int l = 0; l < V; ++l) block[l] = load(src + (i0 + l) * pixels + p);
            transpose(block);
            for (int l = 0; l < V; ++l) store(xt + (p + l) * c_in + i0, block[l]);
          }
        }
        for (; p < count; ++p)
          for (int64_t i = i0; i < i0 + width; ++i) xt[p * c_in + i] = src[i * pixels + p];
      }
      const float* gy = grad_y + n * c_out * pixels + p0;
#pragma omp for schedule(static)
      for (int64_t task = 0; task < tasks; ++task) {
        const int64_t block = task % row_blocks, tile = task / row_blocks;
        const int64_t m0 = block * kMR, v0 = tile * kNR;
        const int mr = int(std::min<int64_t>(kMR, c_out - m0));
        const int nr = int(std::min<int64_t>(kNR, vectors - v0));
        const bool masked = v0 + nr == vectors && tail_lanes < V;
        vec result[kMR * kNR];
        kProducts[mr][nr][masked](gy + m0 * pixels, pixels, 1, xt + v0 * V, c_in, count,
                                  tail_lanes, result);
        float* dst = grad_w + m0 * c_in + v0 * V;
        for (int o = 0; o < mr; ++o, dst += c_in)
          for (int r = 0; r < nr; ++r) {
            if (masked && r == nr - 1) {
              store_first(dst + r * V, load_first(dst + r * V, tail_lanes) + result[o * nr + r],
                          tail_lanes);
            } else {
              store(dst + r * V, load(dst + r * V) + result[o * nr + r]);
            }
          }
      }
    }
  }
}

}  // namespace convpool::CONVPOOL_ISA

#endif  // CONVPOOL_PREDICATES_ONLY
