// Channels-last Winograd float32 convolution, compiled once per instruction set: 3x3,
// dilation-1, ungrouped, zero-padded layers with 16 or more channels each way. Stride 1:
// F(2x2, 3x3), forward and input gradient (the same convolution of grad_y with the kernel
// flipped and its channel roles exchanged); stride 2: forward.
//
// The arithmetic is that of the NCHW `winograd` (conv2d_winograd.cpp): a 2x2 output tile
// costs 16 multiplies per (input, output) channel pair instead of 36; the 4x4 input patch
// and the kernel are transformed (V = B^T d B, U = G g G^T), multiplied point by point and
// summed over input channels, and transformed back (Y = A^T M A). The transforms use only
// 0, +-1 and +-1/2, so float32 results stay within a few units in the last place of the
// direct sum, as in NCHW. With stride 2 the 3x3 kernel splits by the parity of its taps,
// F(2, 2) on the two-tap axes: 25 multiplies per 2x2 tile (of a 5x5 patch) instead of 36.
// What the layout changes is the data flow: a pixel's channels are contiguous, so
//   - the input transform loads V channels of each of the 16 (25) patch pixels with plain
//     vector loads and transforms V channels of one tile at once;
//   - each of the 16 (25) transformed points is a matrix product (tiles x C_in) x (C_in x
//     C_out) on transformed weights packed as [point][output block][C_in][block]; a
//     register tile of kTiles tiles x kVectors vectors of output channels broadcasts one
//     transformed input value per tile against a row of packed weights;
//   - the output transform turns V output channels of a tile into its four pixels, each a
//     contiguous store.
// Two ways to split the work (NhwcWinogradPlan): many tiles go in batches (a bounded
// workspace per thread: the batch's transformed input, and its products for one block of
// output channels), every block's kernels transformed once up front and the threads
// sharing the batches; few tiles (small maps), all in one batch, are transformed once and
// the threads share the output blocks, transforming each block's kernels just before use
// (building them all would cost more than the convolution). Each output's sum over input
// channels runs in the same order either way, so results do not depend on the thread
// count.
//
// Non-finite values follow the rule of docs/winograd-numerics.md: the transforms mix a
// whole patch into every transformed point, so a NaN or inf pixel reaches all four outputs
// of each tile whose patch holds it, and finite inputs near float32's limit can overflow
// inside a transform. Every output that comes out non-finite is recomputed as the direct
// sum of its window (taps in the padding skipped), exactly as the NCHW Winograd does.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the registry
// lines name both (registry/registry.cpp, the channels-last lists).
#include <cstdint>

#include "common/geometry.h"

namespace convpool {

namespace {  // internal linkage: each build keeps its own copy

// How a problem is split, for the predicates (the scratch it needs) and the kernels.
// Register tiles are 12 tiles x 2 vectors with 32 vector registers (AVX-512), else 6 x 2.
constexpr int64_t nhwc_winograd_register_tiles(int vector_floats) { return vector_floats == 16 ? 12 : 6; }

struct NhwcWinogradPlan {
  int64_t tiles = 0;       // 2x2 output tiles
  int64_t c_pad = 0;       // input channels padded to whole vectors
  int64_t block = 0;       // output channels of a register tile
  int64_t ob_count = 0;    // blocks of output channels
  int64_t most_tiles = 0;  // tiles of a batch: their transformed input about 1 MiB
  bool by_blocks = false;  // one batch holds every tile: threads share the output blocks
  // Floats of scratch: the transformed input of every tile and one block's transformed
  // kernels and products (by blocks), or the transformed kernels of every block.
  double scratch(int points, int64_t in_channels) const {
    return by_blocks ? double(points) * double(tiles * c_pad + in_channels * block + tiles * block)
                     : double(points) * double(in_channels) * double(ob_count * block);
  }
};

// For a correlation of an (N, rows, cols, in_channels) input into out_rows x out_cols x
// out_channels with `points` transformed points per 2x2 tile.
inline NhwcWinogradPlan nhwc_winograd_plan(int64_t batch, int64_t out_rows, int64_t out_cols,
                                           int64_t in_channels, int64_t out_channels, int points,
                                           int vector_floats) {
  NhwcWinogradPlan plan;
  const int64_t register_tiles = nhwc_winograd_register_tiles(vector_floats);
  plan.tiles = batch * ((out_rows + 1) / 2) * ((out_cols + 1) / 2);
  plan.c_pad = (in_channels + vector_floats - 1) / vector_floats * vector_floats;
  plan.block = 2 * int64_t(vector_floats);
  plan.ob_count = (out_channels + plan.block - 1) / plan.block;
  const int64_t batch_floats = int64_t(1) << 18;
  int64_t registers = batch_floats / (points * plan.c_pad) / register_tiles;
  registers = registers < 2 ? 2 : registers > 16 ? 16 : registers;
  plan.most_tiles = registers * register_tiles;
  plan.by_blocks = plan.tiles <= plan.most_tiles && plan.ob_count > 1;
  return plan;
}

}  // namespace

}  // namespace convpool

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
namespace convpool {

namespace {

// 3x3, stride `stride` on both axes, dilation 1, ungrouped, zero padding of at most 2
// before (the input gradient's padding before is 2 - pad), and enough channels each way
// for the transforms to pay off.
bool nhwc_winograd_suits(const Conv2dGeometry& g, int64_t stride) {
  const WindowAxis &R = g.rows, &C = g.cols;
  return g.zero_padded() && R.kernel == 3 && C.kernel == 3 && R.stride == stride && C.stride == stride &&
         R.dilation == 1 && C.dilation == 1 && g.groups == 1 && g.in_channels >= 16 &&
         g.out_channels >= 16 && R.pad_before <= 2 && C.pad_before <= 2 && g.batch > 0 &&
         g.in_channels < (int64_t(1) << 23) &&  // gathered weight offsets stay in int32
         g.in_plane() > 0 && g.out_plane() > 0;
}

// The scratch (the transformed kernels of every output block, up to 25/9 of the weights,
// or on small maps every tile's transformed input) stays within what the operands hold.
bool forward_scratch_fits(const Conv2dGeometry& g, int points, int vector_floats) {
  const NhwcWinogradPlan plan = nhwc_winograd_plan(g.batch, g.rows.out_size, g.cols.out_size,
                                                   g.in_channels, g.out_channels, points, vector_floats);
  return scratch_within_operands(g, plan.scratch(points, g.in_channels));
}

}  // namespace

bool nhwc_winograd_forward_supports(const Conv2dGeometry& g, int vector_floats) {
  return (nhwc_winograd_suits(g, 1) && forward_scratch_fits(g, 16, vector_floats)) ||
         (nhwc_winograd_suits(g, 2) && forward_scratch_fits(g, 25, vector_floats));
}

// The same correlation on grad_y, its channel roles exchanged.
bool nhwc_winograd_grad_input_supports(const Conv2dGeometry& g, int vector_floats) {
  const NhwcWinogradPlan plan = nhwc_winograd_plan(g.batch, g.rows.in_size, g.cols.in_size,
                                                   g.out_channels, g.in_channels, 16, vector_floats);
  return nhwc_winograd_suits(g, 1) && scratch_within_operands(g, plan.scratch(16, g.out_channels));
}

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include <omp.h>

#include "common/simd_vec.h"
#include "common/threading.h"
#include "common/workspace.h"
#include "conv/winograd_transforms.h"

namespace convpool::CONVPOOL_ISA {

namespace {


// Register tiles of kTiles tiles x kVectors vectors of output channels. Two vectors wide
// and many tiles tall: each packed weight row loaded serves kTiles tiles, and a block's
// packed weights (C_in x 2V floats) stay in L1 for C_in up to a few hundred while every
// register tile of the batch passes over them.
// 24 accumulators of 32 registers (AVX-512), 12 of 16.
constexpr int kTiles = int(nhwc_winograd_register_tiles(V)), kVectors = 2;
constexpr int64_t kBlock = int64_t(kVectors) * V;  // output channels of one register tile

// One 3x3, stride-1 channels-last correlation of `in` (batch x in_rows x in_cols x
// in_channels, zero padding pad_top/pad_left before and whatever the output size implies
// after) into `out` (batch x out_rows x out_cols x out_channels). Weight (k, c, s, t) is
// weights[k * k_stride + c * c_stride + 3 * s + t], or at 8 - (3 * s + t) when `flipped`.
struct Problem {
  int64_t batch = 0, in_channels = 0, out_channels = 0;
  const float* in = nullptr;
  int64_t in_rows = 0, in_cols = 0, pad_top = 0, pad_left = 0;
  float* out = nullptr;
  int64_t out_rows = 0, out_cols = 0;
  const float* bias = nullptr;
  const float* weights = nullptr;
  int64_t k_stride = 0, c_stride = 0;
  bool flipped = false;
  float weight(int64_t k, int64_t c, int s, int t) const {
    return weights[k * k_stride + c * c_stride + (flipped ? 8 - (3 * s + t) : 3 * s + t)];
  }
};

inline vec load_first(const float* p, int64_t n) {
#if defined(CONVPOOL_ISA_avx512)
  return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p);
#else
  vec v = vec{};
  for (int64_t l = 0; l < n; ++l) v[l] = p[l];
  return v;
#endif
}

// The two tilings: a 2x2 output tile from a patch x patch input patch, `stride` apart.
struct Stride1 {
  static constexpr int points = kPoints, patch = 4, stride = 1;
  static void kernels(const vec g[3][3], vec* u) { transform_kernels(g, u); }
  static void patches(const vec* d, vec* v) { transform_patch(d, v); }
  static void output(const vec* m, vec y[4]) { transform_output(m, y); }
};
struct Stride2 {
  static constexpr int points = kMaxPoints, patch = 5, stride = 2;
  static void kernels(const vec g[3][3], vec* u) { transform_kernels_stride2(g, u); }
  static void patches(const vec* d, vec* v) { transform_patch_stride2(d, v); }
  static void output(const vec* m, vec y[4]) { transform_output_stride2(m, y); }
};

inline bool any_non_finite(vec v) {
  const vec zero = v - v;  // NaN exactly in the lanes where v is NaN or inf
  for (int l = 0; l < V; ++l)
    if (zero[l] != 0.0f) return true;
  return false;
}

// Output (n, oy, ox, k) as the direct sum computes it: the bias, then each input
// channel's taps that lie inside the input, rows then columns (the `direct` loop's
// order). Used where the Winograd result is not finite (docs/winograd-numerics.md).
float direct_output(const Problem& p, int64_t stride, int64_t n, int64_t k, int64_t oy,
                    int64_t ox) {
  float sum = p.bias ? p.bias[k] : 0.0f;
  const int64_t C = p.in_channels;
  for (int64_t c = 0; c < C; ++c)
    for (int s = 0; s < 3; ++s) {
      const int64_t y = oy * stride - p.pad_top + s;
      if (y < 0 || y >= p.in_rows) continue;
      for (int t = 0; t < 3; ++t) {
        const int64_t x = ox * stride - p.pad_left + t;
        if (x < 0 || x >= p.in_cols) continue;
        sum += p.weight(k, c, s, t) * p.in[((n * p.in_rows + y) * p.in_cols + x) * C + c];
      }
    }
  return sum;
}

// m[j][o] = sum over c < channels of v[j * v_stride + c] * u[c * kBlock + o], for the
// T tiles j of a register tile and the B * V output channels o of its block.
template <int T, int B>
void point_tile(const float* v, int64_t v_stride, int64_t channels, const float* u, float* m) {
  vec acc[T][B];
  for (int j = 0; j < T; ++j)
    for (int b = 0; b < B; ++b) acc[j][b] = vec{};
  for (int64_t c = 0; c < channels; ++c) {
    vec wv[B];
    for (int b = 0; b < B; ++b) wv[b] = load(u + c * kBlock + b * V);
    for (int j = 0; j < T; ++j) {
      const vec xv = broadcast(v[j * v_stride + c]);
      for (int b = 0; b < B; ++b) acc[j][b] += xv * wv[b];
    }
  }
  for (int j = 0; j < T; ++j)
    for (int b = 0; b < B; ++b) store(m + j * kBlock + b * V, acc[j][b]);
}

static_assert(kVectors == 2, "point_tile_any instantiates one and two vectors");

template <int T>
void point_tile_vectors(int vectors, const float* v, int64_t v_stride, int64_t channels,
                        const float* u, float* m) {
  if (vectors == 1) point_tile<T, 1>(v, v_stride, channels, u, m);
  else point_tile<T, 2>(v, v_stride, channels, u, m);
}

// point_tile for 1 <= tiles <= kTiles tiles of 1 or 2 vectors.
template <int... I>
void point_tile_dispatch(std::integer_sequence<int, I...>, int tiles, int vectors, const float* v,
                         int64_t v_stride, int64_t channels, const float* u, float* m) {
  ((tiles == I + 1 ? point_tile_vectors<I + 1>(vectors, v, v_stride, channels, u, m) : void()), ...);
}

void point_tile_any(int tiles, int vectors, const float* v, int64_t v_stride, int64_t channels,
                    const float* u, float* m) {
  point_tile_dispatch(std::make_integer_sequence<int, kTiles>{}, tiles, vectors, v, v_stride,
                      channels, u, m);
}

// The tiling of one problem: 2x2 output tiles numbered image by image, row by row.
struct Tiling {
  int64_t C, K, c_pad, ob_count, tiles_w, image_tiles, tiles;
  explicit Tiling(const Problem& p)
      : C(p.in_channels), K(p.out_channels), c_pad((C + V - 1) / V * V),
        ob_count((K + kBlock - 1) / kBlock), tiles_w((p.out_cols + 1) / 2),
        image_tiles((p.out_rows + 1) / 2 * tiles_w), tiles(p.batch * image_tiles) {}
};

// The transformed kernels of output block ob and input channel c: point xi's kBlock
// floats at dst + xi * point_stride, zero past the last output channel.
template <class Scheme>
void transform_weights(const Problem& p, const Tiling& g, int64_t ob, int64_t c, float* dst,
                       int64_t point_stride) {
  for (int b = 0; b < kVectors; ++b) {
    const int64_t k0 = ob * kBlock + b * V, valid = std::clamp<int64_t>(g.K - k0, 0, V);
    vec taps[3][3], u[Scheme::points];
    if (valid == 0) {
      for (int s = 0; s < 3; ++s)
        for (int t = 0; t < 3; ++t) taps[s][t] = vec{};
    } else {
      // The V kernels' taps, gathered: lanes past the last output channel repeat it and
      // are then zeroed.
      lane_index index, in_range;
      for (int l = 0; l < V; ++l) {
        index[l] = int32_t(std::min<int64_t>(l, valid - 1) * p.k_stride);
        in_range[l] = l < valid ? -1 : 0;
      }
      const float* base = p.weights + k0 * p.k_stride + c * p.c_stride;
      for (int s = 0; s < 3; ++s)
        for (int t = 0; t < 3; ++t) {
          const vec gathered = gather(base + (p.flipped ? 8 - (3 * s + t) : 3 * s + t), index);
          taps[s][t] = in_range ? gathered : vec{};
        }
    }
    Scheme::kernels(taps, u);
    for (int xi = 0; xi < Scheme::points; ++xi) store(dst + xi * point_stride + b * V, u[xi]);
  }
}

// The transformed input of tiles [t0, t0 + nt): point xi of tile t0 + tt at
// vb + xi * v_stride + tt * c_pad, V channels of one tile at a time; pixels in the
// padding are 0.
template <class Scheme>
void transform_inputs(const Problem& p, const Tiling& g, int64_t t0, int64_t nt, float* vb,
                      int64_t v_stride) {
  constexpr int points = Scheme::points, patch = Scheme::patch, stride = Scheme::stride;
  for (int64_t tt = 0; tt < nt; ++tt) {
    const int64_t T = t0 + tt, n = T / g.image_tiles;
    const int64_t ty = (T % g.image_tiles) / g.tiles_w, tx = T % g.tiles_w;
    const float* pixel[points];
    for (int r = 0; r < patch; ++r)
      for (int s = 0; s < patch; ++s) {
        const int64_t y = 2 * stride * ty - p.pad_top + r, x = 2 * stride * tx - p.pad_left + s;
        const bool inside = y >= 0 && y < p.in_rows && x >= 0 && x < p.in_cols;
        pixel[r * patch + s] = inside ? p.in + ((n * p.in_rows + y) * p.in_cols + x) * g.C : nullptr;
      }
    float* vt = vb + tt * g.c_pad;
    for (int64_t c0 = 0; c0 < g.C; c0 += V) {
      const int64_t lanes = std::min<int64_t>(V, g.C - c0);
      vec d[points], v[points];
      for (int i = 0; i < points; ++i)
        d[i] = !pixel[i] ? vec{} : lanes == V ? load(pixel[i] + c0) : load_first(pixel[i] + c0, lanes);
      Scheme::patches(d, v);
      for (int xi = 0; xi < points; ++xi) store(vt + xi * v_stride + c0, v[xi]);
    }
  }
}

// The outputs of output block ob for tiles [t0, t0 + nt): the point products of their
// transformed input (as transform_inputs left it) with the block's transformed kernels
// (point xi's C x kBlock floats at u + xi * u_stride) into mb ([point][tile][kBlock]),
// then back to outputs, V channels of one tile at a time.
template <class Scheme>
void block_outputs(const Problem& p, const Tiling& g, int64_t ob, const float* u, int64_t u_stride,
                   int64_t t0, int64_t nt, const float* vb, int64_t v_stride, float* mb) {
  constexpr int points = Scheme::points, stride = Scheme::stride;
  const int64_t K = g.K, k0 = ob * kBlock, nk = std::min(kBlock, K - k0);
  const int vectors = int((nk + V - 1) / V);
  for (int xi = 0; xi < points; ++xi)
    for (int64_t j = 0; j < nt; j += kTiles) {
      const int width = int(std::min<int64_t>(kTiles, nt - j));
      point_tile_any(width, vectors, vb + xi * v_stride + j * g.c_pad, g.c_pad, g.C, u + xi * u_stride,
                     mb + (xi * nt + j) * kBlock);
    }
  for (int64_t tt = 0; tt < nt; ++tt) {
    const int64_t T = t0 + tt, n = T / g.image_tiles;
    const int64_t ty = (T % g.image_tiles) / g.tiles_w, tx = T % g.tiles_w;
    for (int b = 0; b < vectors; ++b) {
      const int64_t kb = k0 + b * V, lanes = std::min<int64_t>(V, K - kb);
      vec m[points], y[4];
      for (int xi = 0; xi < points; ++xi) m[xi] = load(mb + (xi * nt + tt) * kBlock + b * V);
      Scheme::output(m, y);
      const vec bias = !p.bias ? vec{} : lanes == V ? load(p.bias + kb) : load_first(p.bias + kb, lanes);
      for (int a = 0; a < 2; ++a) {
        const int64_t oy = 2 * ty + a;
        if (oy >= p.out_rows) break;
        for (int e = 0; e < 2; ++e) {
          const int64_t ox = 2 * tx + e;
          if (ox >= p.out_cols) break;
          vec value = y[a * 2 + e] + bias;
          if (any_non_finite(value))
            for (int64_t l = 0; l < lanes; ++l)
              if (!std::isfinite(value[l])) value[l] = direct_output(p, stride, n, kb + l, oy, ox);
          float* dst = p.out + ((n * p.out_rows + oy) * p.out_cols + ox) * K + kb;
          if (lanes == V) store(dst, value);
          else store_first(dst, value, lanes);
        }
      }
    }
  }
}

// Many tiles: every block's transformed kernels once, up front (U as [point][output
// block][input channel][kBlock]); the threads share the batches of tiles, and each batch
// runs every output block over its transformed input.
template <class Scheme>
void winograd_by_batches(const Problem& p, const Tiling& g, int64_t most_tiles) {
  constexpr int points = Scheme::points;
  const int64_t C = g.C;
  const int64_t u_stride = g.ob_count * C * kBlock;
  float* U = workspace(WorkspaceSlot::transformed_weights, size_t(points * u_stride));
#pragma omp parallel for num_threads(threads_for(g.K * C * 16)) schedule(static)
  for (int64_t job = 0; job < g.ob_count * C; ++job) {
    const int64_t ob = job / C, c = job % C;
    transform_weights<Scheme>(p, g, ob, c, U + (ob * C + c) * kBlock, u_stride);
  }
  // Tiles per batch: whole register tiles, within most_tiles, and enough batches for
  // every thread.
  const int team = threads_for(g.tiles * C * g.K * 16);
  const int64_t share = (g.tiles + team - 1) / team;
  const int64_t batch_tiles = std::min(most_tiles, (share + kTiles - 1) / kTiles * kTiles);
  const int64_t batches = (g.tiles + batch_tiles - 1) / batch_tiles;
  // Every thread's buffers, allocated here: an allocation failure inside the parallel
  // region could not be reported.
  const size_t vb_size = size_t(points * batch_tiles * g.c_pad);  // [point][tile][c]
  const size_t mb_size = size_t(points * batch_tiles * kBlock);   // [point][tile][kBlock]
  Array<float> vb_all(size_t(team) * vb_size), mb_all(size_t(team) * mb_size);
#pragma omp parallel num_threads(team)
  {
    const size_t tid = static_cast<size_t>(omp_get_thread_num());
    float* const vb = vb_all.data() + tid * vb_size;
    float* const mb = mb_all.data() + tid * mb_size;
#pragma omp for schedule(static)
    for (int64_t bt = 0; bt < batches; ++bt) {
      const int64_t t0 = bt * batch_tiles, nt = std::min(batch_tiles, g.tiles - t0);
      transform_inputs<Scheme>(p, g, t0, nt, vb, batch_tiles * g.c_pad);
      for (int64_t ob = 0; ob < g.ob_count; ++ob)
        block_outputs<Scheme>(p, g, ob, U + ob * C * kBlock, u_stride, t0, nt, vb,
                              batch_tiles * g.c_pad, mb);
    }
  }
}

// Few tiles (a small map, batch 1): every tile's transformed input once, shared; the
// threads share the output blocks, each transforming its block's kernels just before
// using them. The weights are read once and no buffer of every transformed kernel is
// built (it would be larger than the weights, touched once, and dominate the call).
template <class Scheme>
void winograd_by_blocks(const Problem& p, const Tiling& g) {
  constexpr int points = Scheme::points;
  const int64_t C = g.C, nt = g.tiles;
  const int team = int(std::min<int64_t>(threads_for(g.tiles * C * g.K * 16), g.ob_count));
  const size_t ub_size = size_t(points * C * kBlock);  // [point][c][kBlock]
  const size_t mb_size = size_t(points * nt * kBlock);  // [point][tile][kBlock]
  Array<float> vb(size_t(points * nt * g.c_pad));       // [point][tile][c]
  Array<float> ub_all(size_t(team) * ub_size), mb_all(size_t(team) * mb_size);
#pragma omp parallel num_threads(team)
  {
    const size_t tid = static_cast<size_t>(omp_get_thread_num());
    float* const ub = ub_all.data() + tid * ub_size;
    float* const mb = mb_all.data() + tid * mb_size;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < nt; ++t) transform_inputs<Scheme>(p, g, t, 1, vb.data() + t * g.c_pad, nt * g.c_pad);
#pragma omp for schedule(static)
    for (int64_t ob = 0; ob < g.ob_count; ++ob) {
      for (int64_t c = 0; c < C; ++c)
        transform_weights<Scheme>(p, g, ob, c, ub + c * kBlock, C * kBlock);
      block_outputs<Scheme>(p, g, ob, ub, C * kBlock, 0, nt, vb.data(), nt * g.c_pad, mb);
    }
  }
}

// The convolution of `p` (3x3, stride Scheme::stride) by 2x2 output tiles. The sum over
// input channels of each output runs in the same order on either path.
template <class Scheme>
void winograd_tiles(const Problem& p) {
  const Tiling g(p);
  const NhwcWinogradPlan plan = nhwc_winograd_plan(p.batch, p.out_rows, p.out_cols, p.in_channels,
                                                   p.out_channels, Scheme::points, V);
  if (plan.by_blocks)
    winograd_by_blocks<Scheme>(p, g);
  else
    winograd_by_batches<Scheme>(p, g, plan.most_tiles);
}

}  // namespace

void nhwc_winograd_forward(const Conv2dGeometry& g, const float* x, const float* w,
                           const float* bias, float* y) {
  Problem p;
  p.batch = g.batch;
  p.in_channels = g.in_channels;
  p.out_channels = g.out_channels;
  p.in = x;
  p.in_rows = g.rows.in_size;
  p.in_cols = g.cols.in_size;
  p.pad_top = g.rows.pad_before;
  p.pad_left = g.cols.pad_before;
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

// At stride 1 the input gradient is a 3x3 correlation of the output gradient with the
// kernel flipped and its channel axes exchanged, padded by 2 - pad before.
void nhwc_winograd_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                              float* grad_x) {
  Problem p;
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

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
