// Winograd F(2x2, 3x3) float32 convolution, compiled once per instruction set: 3x3, dilation-1, ungrouped layers with 16 or more channels each
// way. Stride 1: forward, input gradient (the transposed, flipped kernel) and weight
// gradient (the transforms' adjoint); stride 2: forward.
//
// A 2x2 output tile of a 3x3 convolution costs 16 multiplies per
// (input, output) channel pair instead of 36: the input's 4x4 patch and the kernel are
// transformed (V = B^T d B, U = G g G^T), multiplied element-wise and summed over input
// channels (16 small matrix products, run by the blocked tap microkernel), and the
// result is transformed back (Y = A^T M A). The transforms use only 0, +-1 and +-1/2,
// so float32 rounding stays within a few units in the last place of the direct sum.
//
// With stride 2 the 3x3 kernel splits by the parity of its taps into 2x2, 2x1, 1x2 and
// 1x1 kernels over the input's even/odd rows and columns; F(2, 2) on the two-tap axes
// gives 5 x 5 = 25 multiplies per 2x2 output tile (of a 5x5 patch) instead of 36.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the
// registry line names both (registry/registry.cpp).
#include <cstdint>

#include "common/geometry.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
#include <algorithm>

namespace convpool {

namespace {

bool winograd_suits(const Conv2dGeometry& g, int64_t stride, int vector_floats) {
  const WindowAxis &R = g.rows, &C = g.cols;
  return R.kernel == 3 && C.kernel == 3 && R.stride == stride && C.stride == stride &&
         R.dilation == 1 && C.dilation == 1 && g.groups == 1 && g.in_channels >= 16 &&
         g.out_channels >= 16 && R.pad_before <= 2 && C.pad_before <= 2 && g.batch > 0 &&
         g.in_plane() > 0 &&
         g.in_channels < (int64_t(1) << 23) &&  // gathered offsets stay in int32
         int64_t(vector_floats) * std::max(g.in_plane(), g.out_plane()) < (int64_t(1) << 31);
}

}  // namespace

bool winograd_forward_supports(const Conv2dGeometry& g, int vector_floats) {
  return winograd_suits(g, 1, vector_floats) || winograd_suits(g, 2, vector_floats);
}

// The input gradient's and weight gradient's patches read zero padding only.
bool winograd_grad_input_supports(const Conv2dGeometry& g, int vector_floats) {
  return g.zero_padded() && winograd_suits(g, 1, vector_floats);
}

bool winograd_grad_weight_supports(const Conv2dGeometry& g, int vector_floats) {
  return g.zero_padded() && winograd_suits(g, 1, vector_floats);
}

// Below 48 channels on either side the transforms outweigh the saved multiplications:
// `blocked` measured 1.2-1.4x faster at stride 1 with 32 channels and 2.3x with 16, at every
// map size from 28x28 to 256x256, forward and input gradient; from 48 they tie or Winograd
// wins. Stride 2 saves less (25 multiplies of 36): `blocked` was 1.1-1.45x faster with 64
// channels (56x56 and 112x112 inputs, batch 1 and 8), level at 80-96, and Winograd 1.15-1.4x
// faster from 128.
bool winograd_forward_chosen(const Conv2dGeometry& g, int) {
  return std::min(g.in_channels, g.out_channels) >= (g.rows.stride == 2 ? 96 : 48);
}

bool winograd_grad_input_chosen(const Conv2dGeometry& g, int) {
  return std::min(g.in_channels, g.out_channels) >= 48;
}

// Each thread sums its tiles into transformed weights of its own (64 bytes per channel
// pair): from about 128K channel pairs these leave L2, and `blocked` measured 1.4-1.7x
// faster (512x512 at 14x14 and 28x28, 256x512 at 28x28, batch 8); below, they tie or
// Winograd wins.
bool winograd_grad_weight_chosen(const Conv2dGeometry& g, int) {
  return g.in_channels * g.out_channels < (int64_t(1) << 17);
}

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>
#include <cmath>
#include <cstdint>

#include <omp.h>

#include "conv/padded_rows.h"
#include "conv/tap_tile.h"
#include "conv/winograd_transforms.h"
#include "common/simd_vec.h"
#include "common/threading.h"
#include "common/workspace.h"

namespace convpool::CONVPOOL_ISA {

namespace {

// One 3x3, stride-1 correlation of `in` (batch x C planes, zero padding pad_top/pad_left
// and whatever the output size implies after) into `out` (batch x K planes). Weight
// (k, c, s, t) is weights[k * k_stride + c * c_stride + 3 * s + t], or at 8 - (3 * s + t)
// when `flipped`.
struct WinogradProblem {
  int64_t batch = 0, in_channels = 0, out_channels = 0;
  const float* in = nullptr;
  int64_t in_rows = 0, in_cols = 0, pad_top = 0, pad_left = 0;
  PaddingMode mode = PaddingMode::zeros;  // what the padding of `in` holds
  float* out = nullptr;
  int64_t out_rows = 0, out_cols = 0;
  const float* bias = nullptr;
  const float* weights = nullptr;
  int64_t k_stride = 0, c_stride = 0;
  bool flipped = false;
};

// B^T d B for the V 4x4 patches of a row of tiles whose first column is `col`: rows[r]
// are the four input rows, zero-padded, and patch l covers columns col + 2l .. col + 2l
// + 3. Splitting each row's columns into even and odd lanes lines the patches up lane by
// lane.
inline void transform_patches(const float* const rows[4], int64_t col, vec v[kPoints]) {
  vec d[kPoints];
  for (int r = 0; r < 4; ++r) {
    const vec a = load(rows[r] + col), b = load(rows[r] + col + V);          // columns 2l, 2l + 1
    const vec c = load(rows[r] + col + 2), e = load(rows[r] + col + V + 2);  // 2l + 2, 2l + 3
    d[r * 4 + 0] = even_lanes(a, b);
    d[r * 4 + 1] = odd_lanes(a, b);
    d[r * 4 + 2] = even_lanes(c, e);
    d[r * 4 + 3] = odd_lanes(c, e);
  }
  transform_patch(d, v);
}

// Columns start + 4l + phase (l < V) of `row`, for the four phases: one split of 4V
// consecutive columns into evens and odds, and of those again.
inline void split_by_four(const float* row, vec phase[4]) {
  const vec a = load(row), b = load(row + V), c = load(row + 2 * V), e = load(row + 3 * V);
  const vec even_ab = even_lanes(a, b), odd_ab = odd_lanes(a, b);
  const vec even_ce = even_lanes(c, e), odd_ce = odd_lanes(c, e);
  phase[0] = even_lanes(even_ab, even_ce);
  phase[1] = even_lanes(odd_ab, odd_ce);
  phase[2] = odd_lanes(even_ab, even_ce);
  phase[3] = odd_lanes(odd_ab, odd_ce);
}

// B^T d B for the V 5x5 patches of a row of tiles from column `col` (patch l covers
// columns col + 4l .. col + 4l + 4 of the five rows), the patches lined up lane by lane.
inline void transform_patches_stride2(const float* const rows[5], int64_t col, vec v[kMaxPoints]) {
  vec d[5][5];  // [row][column of the patch]
  for (int r = 0; r < 5; ++r) {
    vec next[4];
    split_by_four(rows[r] + col, d[r]);
    split_by_four(rows[r] + col + 4, next);
    d[r][4] = next[0];
  }
  transform_patch_stride2(&d[0][0], v);
}

// The two tilings: a 2x2 output tile from a patch of `patch` x `patch` inputs, tiles
// `step` inputs apart.
struct Stride1 {
  static constexpr int points = kPoints, patch = 4, step = 2;
  static void kernels(const vec g[3][3], vec* u) { transform_kernels(g, u); }
  static void patches(const float* const* rows, int64_t col, vec* v) { transform_patches(rows, col, v); }
  static void output(const vec* m, vec y[4]) { transform_output(m, y); }
};
struct Stride2 {
  static constexpr int points = kMaxPoints, patch = 5, step = 4;
  static void kernels(const vec g[3][3], vec* u) { transform_kernels_stride2(g, u); }
  static void patches(const float* const* rows, int64_t col, vec* v) { transform_patches_stride2(rows, col, v); }
  static void output(const vec* m, vec y[4]) { transform_output_stride2(m, y); }
};

// Z = A q A^T, the adjoint of the output transform, for the 2x2 output-gradient tiles q of
// V channels at once (q[a * 2 + e] holds row a, column e), A = [[1, 0], [1, 1], [1, -1], [0, -1]].
inline void transform_gradient_lanes(const vec q[4], vec z[kPoints]) {
  vec t[4][2];
  for (int e = 0; e < 2; ++e) {
    t[0][e] = q[e];
    t[1][e] = q[e] + q[2 + e];
    t[2][e] = q[e] - q[2 + e];
    t[3][e] = -q[2 + e];
  }
  for (int m = 0; m < 4; ++m) {
    z[m * 4 + 0] = t[m][0];
    z[m * 4 + 1] = t[m][0] + t[m][1];
    z[m * 4 + 2] = t[m][0] - t[m][1];
    z[m * 4 + 3] = -t[m][1];
  }
}

// Output (n, k, oy, ox) of `p` (stride `stride`) as the direct sum computes it: the bias,
// then each input channel's taps that lie inside the input, in the direct loop's order.
// Winograd's transforms mix the pixels of a whole patch into every transformed point, so
// a NaN or inf pixel reaches all four outputs of the tile and a large finite input can
// overflow float32 in a transform although no output does. Those outputs (and only
// they: extra terms can add non-finite values, never remove one) come out non-finite
// and are recomputed here; see docs/winograd-numerics.md.
float direct_output(const WinogradProblem& p, int64_t stride, int64_t n, int64_t k, int64_t oy,
                    int64_t ox) {
  float sum = p.bias ? p.bias[k] : 0.0f;
  for (int64_t c = 0; c < p.in_channels; ++c) {
    const float* plane = p.in + (n * p.in_channels + c) * p.in_rows * p.in_cols;
    const float* kernel = p.weights + k * p.k_stride + c * p.c_stride;
    for (int s = 0; s < 3; ++s) {
      const int64_t y = oy * stride - p.pad_top + s;
      if (y < 0 || y >= p.in_rows) continue;
      for (int t = 0; t < 3; ++t) {
        const int64_t x = ox * stride - p.pad_left + t;
        if (x < 0 || x >= p.in_cols) continue;
        sum += kernel[p.flipped ? 8 - (3 * s + t) : 3 * s + t] * plane[y * p.in_cols + x];
      }
    }
  }
  return sum;
}

// The convolution of `p` (3x3, stride Scheme::step / 2) by 2x2 output tiles.
template <class Scheme>
void winograd_tiles(const WinogradProblem& p) {
  constexpr int points = Scheme::points, patch = Scheme::patch, step = Scheme::step;
  const int64_t C = p.in_channels, K = p.out_channels;
  const int nb = weight_vectors(K);
  const int64_t B = int64_t(nb) * V, ob_count = ceil_div(K, B);
  const int ur_max = kMaxTile[nb];
  const int64_t tiles_h = ceil_div(p.out_rows, 2), tiles_w = ceil_div(p.out_cols, 2);
  const int64_t image_tiles = tiles_h * tiles_w, tiles = p.batch * image_tiles;

  // U as [point][output block][input channel][B], zero past the last output channel, one
  // (block, input channel) at a time: the B kernels are gathered V at a time, so that
  // each point's B floats are written together.
  const size_t u_size = size_t(points * ob_count * C * B);
  float* U = workspace(WorkspaceSlot::transformed_weights, u_size);
#pragma omp parallel for num_threads(threads_for(K * C * 16)) schedule(static)
  for (int64_t job = 0; job < ob_count * C; ++job) {
    const int64_t ob = job / C, c = job % C;
    for (int b = 0; b < nb; ++b) {
      const int64_t k0 = ob * B + b * V, valid = std::min<int64_t>(V, K - k0);
      lane_index index, in_range;
      for (int l = 0; l < V; ++l) {
        index[l] = int32_t(std::min<int64_t>(l, valid - 1) * p.k_stride);
        in_range[l] = l < valid ? -1 : 0;
      }
      const float* base = p.weights + k0 * p.k_stride + c * p.c_stride;
      vec g[3][3], u[points];
      for (int s = 0; s < 3; ++s)
        for (int t = 0; t < 3; ++t) {
          const vec taps = gather(base + (p.flipped ? 8 - (3 * s + t) : 3 * s + t), index);
          g[s][t] = in_range ? taps : vec{};
        }
      Scheme::kernels(g, u);
      for (int xi = 0; xi < points; ++xi) store(U + ((xi * ob_count + ob) * C + c) * B + b * V, u[xi]);
    }
  }

  // Tiles per block: a whole number of register tiles, the block's transformed input
  // (points x C x tiles floats) within about 256 KiB so that it stays in L2.
  const int64_t tile_block =
      ur_max * std::clamp<int64_t>((256 * 1024 / (4 * points)) / (C * ur_max), 1, 4);
  const int64_t v_stride = tile_block;
  const int64_t blocks = ceil_div(tiles, tile_block);
  const int64_t zero_tap = 0;
  // The input rows of a row of tiles, zero-padded: padded column x is input column
  // x - pad_left. A group of V patches from column x reads up to column x + 4V + 3.
  const int64_t row_length = step * tiles_w + 4 * V + 4;
  const int64_t copied_cols = std::min(p.in_cols, row_length - p.pad_left);
  // Every thread's buffers, allocated here: an allocation failure inside the parallel
  // region could not be reported.
  const int team = threads_for(tiles * C * K * 16);
  const size_t vb_size = size_t(points * C * v_stride);               // [point][c][tile]
  const size_t mb_size = size_t(points * ob_count * tile_block * B);  // [point][ob][tile][B]
  const size_t rows_size = size_t(patch * row_length);                 // zero outside the input
  const size_t block_size = static_cast<size_t>(tile_block);
  Array<float> vb_all(size_t(team) * vb_size), mb_all(size_t(team) * mb_size);
  Array<float> rows_all(size_t(team) * rows_size);
  const size_t stage_size = size_t(tile_block * 4 * B);  // [tile][a * 2 + e][B]
  Array<float> stage_all(size_t(team) * stage_size);
  Array<int64_t> tiles_all(size_t(team) * 3 * block_size);
#pragma omp parallel num_threads(team)
  {
    const size_t tid = static_cast<size_t>(omp_get_thread_num());
    float* const vb = vb_all.data() + tid * vb_size;
    float* const mb = mb_all.data() + tid * mb_size;
    float* const padded_rows = rows_all.data() + tid * rows_size;
    float* const stage = stage_all.data() + tid * stage_size;
    int64_t* const image = tiles_all.data() + tid * 3 * block_size;
    int64_t* const tile_row = image + block_size;
    int64_t* const tile_col = tile_row + block_size;
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t t0 = blk * tile_block, nt = std::min(tile_block, tiles - t0);
      for (int64_t tt = 0; tt < nt; ++tt) {
        const int64_t T = t0 + tt;
        image[tt] = T / image_tiles;
        tile_row[tt] = (T % image_tiles) / tiles_w;
        tile_col[tt] = T % tiles_w;
      }
      // The block's tiles, one run along a row of tiles at a time, V tiles at a time.
      for (int64_t tt = 0; tt < nt;) {
        const int64_t n = image[tt], ty = tile_row[tt], tx0 = tile_col[tt];
        const int64_t run = std::min(tiles_w - tx0, nt - tt);
        for (int64_t c = 0; c < C; ++c) {
          const float* plane = p.in + (n * C + c) * p.in_rows * p.in_cols;
          // The rows of the channel after next: a channel's transform is too short to
          // hide a fetch from memory, and planes apart defeat the hardware prefetcher.
          if (c + 2 < C)
            for (int r = 0; r < patch; ++r) {
              const int64_t y = step * ty + r - p.pad_top;
              if (y < 0 || y >= p.in_rows) continue;
              const float* ahead = plane + 2 * p.in_rows * p.in_cols + y * p.in_cols;
              for (int64_t k = 0; k < copied_cols; k += 16) __builtin_prefetch(ahead + k);
            }
          // With zero padding, columns from pad_left + copied_cols on stay zero from the
          // buffer's creation; the other modes fill the whole row.
          copy_padded_rows(plane, p.in_rows, p.in_cols, step * ty - p.pad_top, patch, p.pad_left,
                           p.mode == PaddingMode::zeros ? p.pad_left + copied_cols : row_length,
                           padded_rows, row_length, p.mode);
          const float* rows[patch];
          for (int r = 0; r < patch; ++r) rows[r] = padded_rows + r * row_length;
          float* vc = vb + c * v_stride + tt;
          for (int64_t x = 0; x < run; x += V) {
            vec v[points];
            Scheme::patches(rows, step * (tx0 + x), v);
            const int64_t lanes = std::min<int64_t>(V, run - x);
            for (int xi = 0; xi < points; ++xi) store_first(vc + xi * C * v_stride + x, v[xi], lanes);
          }
        }
        tt += run;
      }
      for (int xi = 0; xi < points; ++xi)
        for (int64_t ob = 0; ob < ob_count; ++ob)
          for (int64_t j0 = 0; j0 < nt; j0 += ur_max) {
            const int ur = int(std::min<int64_t>(ur_max, nt - j0));
            tap_tile_for(nb, 1, ur)(vb + xi * C * v_stride + j0, C, v_stride, &zero_tap, 1,
                                    U + (xi * ob_count + ob) * C * B,
                                    mb + ((xi * ob_count + ob) * tile_block + j0) * B);
          }
      // Back to outputs, a vector of B channels at a time, staged for the whole block and
      // then written channel by channel. Written tile by tile, each tile touched B output
      // planes: when a plane is a multiple of 4 KiB (224x224, 256x256) all their lines
      // fall in one L1 set and were evicted between neighbouring tiles (measured 0.7x
      // `blocked` at 224x224 and 0.3x at 256x256, 64 channels).
      for (int64_t ob = 0; ob < ob_count; ++ob) {
        const int64_t valid = std::min(B, K - ob * B);
        for (int64_t tt = 0; tt < nt; ++tt)
          for (int b = 0; b < nb; ++b) {
            vec m[points], yv[4];
            for (int xi = 0; xi < points; ++xi)
              m[xi] = load(mb + ((xi * ob_count + ob) * tile_block + tt) * B + b * V);
            Scheme::output(m, yv);
            for (int i = 0; i < 4; ++i) store(stage + (tt * 4 + i) * B + b * V, yv[i]);
          }
        for (int64_t o = 0; o < valid; ++o) {
          const float bias = p.bias ? p.bias[ob * B + o] : 0.0f;
          for (int64_t tt = 0; tt < nt; ++tt) {
            const int64_t n = image[tt], ty = tile_row[tt], tx = tile_col[tt];
            float* plane = p.out + (n * K + ob * B + o) * p.out_rows * p.out_cols;
            for (int a = 0; a < 2; ++a) {
              const int64_t oy = 2 * ty + a;
              if (oy >= p.out_rows) break;
              for (int e = 0; e < 2; ++e) {
                const int64_t ox = 2 * tx + e;
                if (ox >= p.out_cols) break;
                float value = stage[(tt * 4 + a * 2 + e) * B + o] + bias;
                if (!std::isfinite(value)) value = direct_output(p, step / 2, n, ob * B + o, oy, ox);
                plane[oy * p.out_cols + ox] = value;
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace

void winograd_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                      float* y) {
  WinogradProblem p;
  p.batch = g.batch;
  p.in_channels = g.in_channels;
  p.out_channels = g.out_channels;
  p.in = x;
  p.in_rows = g.rows.in_size;
  p.in_cols = g.cols.in_size;
  p.pad_top = g.rows.pad_before;
  p.pad_left = g.cols.pad_before;
  p.mode = g.padding_mode;
  p.out = y;
  p.out_rows = g.rows.out_size;
  p.out_cols = g.cols.out_size;
  p.bias = bias;
  p.weights = w;
  p.k_stride = 9 * g.in_channels;
  p.c_stride = 9;
  if (g.rows.stride == 2)
    winograd_tiles<Stride2>(p);
  else
    winograd_tiles<Stride1>(p);
}

// With stride 1 the input gradient is a 3x3 correlation of the output gradient with the
// kernel flipped and its channel axes swapped, padded by 2 - pad.
void winograd_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                         float* grad_x) {
  WinogradProblem p;
  p.batch = g.batch;
  p.in_channels = g.out_channels;
  p.out_channels = g.in_channels;
  p.in = grad_y;
  p.in_rows = g.rows.out_size;
  p.in_cols = g.cols.out_size;
  p.pad_top = 2 - g.rows.pad_before;
  p.pad_left = 2 - g.cols.pad_before;
  p.out = grad_x;
  p.out_rows = g.rows.in_size;
  p.out_cols = g.cols.in_size;
  p.weights = w;
  p.k_stride = 9;
  p.c_stride = 9 * g.in_channels;
  p.flipped = true;
  winograd_tiles<Stride1>(p);
}

// The weight gradient is the adjoint of the forward's transforms: with Z = A dY A^T per
// 2x2 output-gradient tile and V = B^T d B per 4x4 input patch, dW = G^T S G where
// S[k][c] = sum over tiles of Z_k (.) V_c: 16 matrix products whose shared dimension is
// the tiles. Each thread sums its own fixed range of tiles into its own S, and the
// partial sums are added in thread order, so a run is repeatable.
void winograd_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,
                          float* grad_w) {
  const int64_t C = g.in_channels, K = g.out_channels;
  const int64_t in_rows = g.rows.in_size, in_cols = g.cols.in_size;
  const int64_t out_rows = g.rows.out_size, out_cols = g.cols.out_size;
  const int64_t pad_top = g.rows.pad_before, pad_left = g.cols.pad_before;
  const int64_t in_plane = in_rows * in_cols, out_plane = out_rows * out_cols;
  const int nb = weight_vectors(K);
  const int64_t B = int64_t(nb) * V, kb_count = ceil_div(K, B), k_padded = kb_count * B;
  const int64_t c_padded = ceil_div(C, V) * V;
  const int ur_max = kMaxTile[nb];
  const int64_t tiles_h = ceil_div(out_rows, 2), tiles_w = ceil_div(out_cols, 2);
  const int64_t image_tiles = tiles_h * tiles_w, tiles = g.batch * image_tiles;
  // A block's transforms (16 x tiles x (C + K) floats) within about 1 MiB, and a number
  // of blocks that the threads share evenly (13 blocks on 2 threads would leave one idle
  // a thirteenth of the time).
  const int team = threads_for(tiles * C * K * 16);
  const int64_t largest_block = std::clamp<int64_t>((1 << 20) / (64 * (c_padded + k_padded)), 16, 256);
  const int64_t blocks = ceil_div(ceil_div(tiles, largest_block), team) * team;
  const int64_t tile_block = ceil_div(tiles, blocks);
  lane_index in_lanes, out_lanes;
  for (int l = 0; l < V; ++l) {
    in_lanes[l] = int32_t(l * in_plane);
    out_lanes[l] = int32_t(l * out_plane);
  }

  const size_t s_size = size_t(kPoints * c_padded * k_padded);  // S as [point][c][k]
  // Every thread's S and transform buffers, allocated here: an allocation failure inside
  // the parallel region could not be reported (the exception cannot leave it).
  const size_t vt_size = size_t(kPoints * tile_block * c_padded);      // [point][tile][c]
  const size_t zt_size = size_t(kPoints * kb_count * tile_block * B);  // [point][k block][tile][B]
  float* all_s = workspace(WorkspaceSlot::transformed_weights, size_t(team) * s_size);
  Array<float> all_vt(size_t(team) * vt_size), all_zt(size_t(team) * zt_size);
  Array<float*> partial(static_cast<size_t>(team));
#pragma omp parallel num_threads(team)
  {
    const int tid = omp_get_thread_num(), threads = omp_get_num_threads();
    float* S = all_s + size_t(tid) * s_size;
    std::fill(S, S + s_size, 0.0f);
    partial[size_t(tid)] = S;
    float* vt = all_vt.data() + size_t(tid) * vt_size;
    float* zt = all_zt.data() + size_t(tid) * zt_size;
    alignas(64) float tile[kMaxUr * 2 * V];
    const int64_t zero_tap = 0;
    for (int64_t blk = blocks * tid / threads; blk < blocks * (tid + 1) / threads; ++blk) {
      const int64_t t0 = blk * tile_block, nt = std::clamp<int64_t>(tiles - t0, 0, tile_block);
      for (int64_t tt = 0; tt < nt; ++tt) {
        const int64_t T = t0 + tt, n = T / image_tiles;
        const int64_t ty = (T % image_tiles) / tiles_w, tx = T % tiles_w;
        // The input patch, V channels at a time; positions in the padding read as zero.
        int64_t offset[kPoints];
        bool inside[kPoints];
        for (int r = 0; r < 4; ++r)
          for (int s = 0; s < 4; ++s) {
            const int64_t y = 2 * ty - pad_top + r, xx = 2 * tx - pad_left + s;
            inside[r * 4 + s] = y >= 0 && y < in_rows && xx >= 0 && xx < in_cols;
            offset[r * 4 + s] = y * in_cols + xx;
          }
        for (int64_t c0 = 0; c0 < C; c0 += V) {
          // Lanes past the last channel repeat it; their sums are never read.
          const lane_index index = C - c0 >= V ? in_lanes : min_lanes(in_lanes, int32_t((C - c0 - 1) * in_plane));
          const float* base = x + (n * C + c0) * in_plane;
          vec d[kPoints], v[kPoints];
          for (int i = 0; i < kPoints; ++i) d[i] = inside[i] ? gather(base + offset[i], index) : vec{};
          transform_patch(d, v);
          for (int xi = 0; xi < kPoints; ++xi) store(vt + (xi * tile_block + tt) * c_padded + c0, v[xi]);
        }
        // The output-gradient tile, V channels at a time; positions past the edge are zero.
        int64_t gy_offset[4];
        bool gy_inside[4];
        for (int a = 0; a < 2; ++a)
          for (int e = 0; e < 2; ++e) {
            const int64_t oy = 2 * ty + a, ox = 2 * tx + e;
            gy_inside[a * 2 + e] = oy < out_rows && ox < out_cols;
            gy_offset[a * 2 + e] = oy * out_cols + ox;
          }
        for (int64_t k0 = 0; k0 < K; k0 += V) {
          const lane_index index = K - k0 >= V ? out_lanes : min_lanes(out_lanes, int32_t((K - k0 - 1) * out_plane));
          const float* base = grad_y + (n * K + k0) * out_plane;
          vec q[4], z[kPoints];
          for (int i = 0; i < 4; ++i) q[i] = gy_inside[i] ? gather(base + gy_offset[i], index) : vec{};
          transform_gradient_lanes(q, z);
          const int64_t kb = k0 / B, lane0 = k0 % B;
          for (int xi = 0; xi < kPoints; ++xi)
            store(zt + ((xi * kb_count + kb) * tile_block + tt) * B + lane0, z[xi]);
        }
      }
      for (int xi = 0; xi < kPoints; ++xi)
        for (int64_t kb = 0; kb < kb_count; ++kb) {
          const float* z = zt + (xi * kb_count + kb) * tile_block * B;
          for (int64_t c0 = 0; c0 < C; c0 += ur_max) {
            const int ur = int(std::min<int64_t>(ur_max, C - c0));
            tap_tile_for(nb, 1, ur)(vt + xi * tile_block * c_padded + c0, nt, c_padded, &zero_tap, 1, z,
                                    tile);
            for (int j = 0; j < ur; ++j) {
              float* s = S + (xi * c_padded + c0 + j) * k_padded + kb * B;
              for (int b = 0; b < nb; ++b) store(s + b * V, load(s + b * V) + load(tile + j * B + b * V));
            }
          }
        }
    }
  }
  float* S = partial[0];
  for (int t = 1; t < team && partial[size_t(t)] != nullptr; ++t) {
    const float* other = partial[size_t(t)];
#pragma omp parallel for num_threads(threads_for(int64_t(s_size))) schedule(static)
    for (int64_t i = 0; i < int64_t(s_size); ++i) S[i] += other[i];
  }

  // dW = G^T S G, G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]], V output
  // channels at a time.
  const vec half = broadcast(0.5f);
#pragma omp parallel for num_threads(threads_for(K * C * 64)) schedule(static)
  for (int64_t c = 0; c < C; ++c)
    for (int64_t k0 = 0; k0 < K; k0 += V) {
      vec m[4][4], t[3][4], r[3][3];
      for (int xi = 0; xi < kPoints; ++xi) m[xi / 4][xi % 4] = load(S + (xi * c_padded + c) * k_padded + k0);
      for (int j = 0; j < 4; ++j) {
        t[0][j] = m[0][j] + half * (m[1][j] + m[2][j]);
        t[1][j] = half * (m[1][j] - m[2][j]);
        t[2][j] = half * (m[1][j] + m[2][j]) + m[3][j];
      }
      for (int i = 0; i < 3; ++i) {
        r[i][0] = t[i][0] + half * (t[i][1] + t[i][2]);
        r[i][1] = half * (t[i][1] - t[i][2]);
        r[i][2] = half * (t[i][1] + t[i][2]) + t[i][3];
      }
      const int64_t valid = std::min<int64_t>(V, K - k0);
      for (int64_t l = 0; l < valid; ++l)
        for (int i = 0; i < 3; ++i)
          for (int j = 0; j < 3; ++j) grad_w[((k0 + l) * C + c) * 9 + i * 3 + j] = r[i][j][l];
    }
}

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
