// Dense float32 convolution on small output planes (up to 28x28) with many channels: the
// layers at the end of image networks (7x7-14x14 maps, 256-2048 channels).
//
// Each input plane is copied once, zero padded and split into stride phases, into a small
// plane of width Wq, so that output pixel (oh, ow) sits at flat position oh * Wq + ow and
// tap (kh, kw) reads flat position p + tap offset of one phase plane: the whole output
// plane is a few contiguous vectors of pixels (a 7x7 plane is 4 vectors of 16, 77% of
// the lanes used), whatever the stride and dilation. A register tile holds 6 output
// channels x up to 4 of these vectors; the weights are broadcast straight from the
// caller's array (6 weight rows streamed side by side), so nothing is packed per call:
// at batch 1 on a 7x7 map a 512 -> 512 3x3 layer has 9.4 MB of weights and only 231
// MFLOP, and one pass over the weights is the cost floor. Work units are (group of
// output-channel blocks, picture, pixel tile, block), groups outermost, so that a group's
// weights (1 MB) stay in L2 while every picture of the batch passes, and batch 1 splits
// the blocks across the threads.
//
// The input gradient is the same correlation of the output gradient, one per stride
// phase, with input and output channels swapped and the weights read in place in their
// transposed order. The weight gradient puts the output channels in the vector lanes
// (the output gradient transposed to pixel-major order) and broadcasts the phased input,
// so that summing over the few pixels of a small plane needs no horizontal sums; each
// weight belongs to one work unit, so the result does not depend on the thread count.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector width
// a parameter) and the kernels (compiled once per instruction set); the registry lines
// name both (registry/registry.cpp).
#include <cstdint>

#include "common/geometry.h"

namespace convpool {

// The most output pixels of one plane this path takes (28x28): above, a plane is dozens
// of vectors and the row-tiled kernels lose nothing to short rows.
constexpr int64_t kSmallPlanesMaxPixels = 28 * 28;

}  // namespace convpool

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
#include <cmath>

namespace convpool {

namespace {

// One phase plane's extent along an axis for `out` outputs (as the kernels copy it).
double phased_extent(const WindowAxis& a, int64_t out) {
  const double extent =
      double(out - 1) * double(a.stride) + double(a.kernel - 1) * double(a.dilation) + 1;
  return std::ceil(extent / double(a.stride));
}

// The engine's cases: one group, >= 16 channels each way, zero padding (the copies pad with
// zeros), a small output plane.
bool small_planes_case(const Conv2dGeometry& g) {
  return g.groups == 1 && g.zero_padded() && g.in_channels >= 16 && g.out_channels >= 16 &&
         g.batch > 0 && g.in_plane() > 0 && g.out_plane() > 0 &&
         g.out_plane() <= kSmallPlanesMaxPixels;
}

// The whole batch's phased input (forward, weight gradient).
double phased_input_floats(const Conv2dGeometry& g) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const double plane = double(R.stride * C.stride) * phased_extent(R, R.out_size) *
                       phased_extent(C, C.out_size);
  return double(g.batch) * double(g.in_channels) * plane + plane + 4096;
}

}  // namespace

// Where the forward pass beat `brgemm`, `winograd` and `blocked` (CPU time per call, one
// thread, 3x3 layers of 192-512 channels): at batch 1 on output planes up to 14x14 (7x7,
// 13x13, 14x14, stride 2 from 14x14 and 28x28: 1.05-1.75x), and at batch 8 on 7x7 outputs
// (1.1-1.3x). At batch 8 on 13x13-14x14 outputs Winograd (stride 1) and `brgemm` (stride
// 2) stay ahead, and on 28x28 outputs Winograd does.
bool small_planes_forward_chosen(const Conv2dGeometry& g, int) {
  const int64_t plane = g.out_plane();
  return plane <= 14 * 14 && (g.batch == 1 || plane <= 8 * 8);
}

bool small_planes_forward_supports(const Conv2dGeometry& g, int) {
  return small_planes_case(g) && scratch_within_operands(g, phased_input_floats(g));
}

// One correlation per stride phase; each phase's output (a phase of the input gradient)
// must be a small plane, and its input (the output gradient with the margins its taps
// reach) is copied for the whole batch. It measured no faster than `winograd` and
// `blocked` at stride 1 and 2-2.5x slower at stride 2 (four phases of few taps each), so
// the registry lists it last: it runs only when forced.
bool small_planes_grad_input_supports(const Conv2dGeometry& g, int) {
  const WindowAxis &R = g.rows, &C = g.cols;
  if (!(g.groups == 1 && g.zero_padded() && g.in_channels >= 16 && g.out_channels >= 16 &&
        g.batch > 0 && g.in_plane() > 0 && g.out_plane() > 0))
    return false;
  const double phase_rows = std::ceil(double(R.in_size) / double(R.stride));
  const double phase_cols = std::ceil(double(C.in_size) / double(C.stride));
  if (phase_rows * phase_cols > double(kSmallPlanesMaxPixels)) return false;
  auto extent = [](const WindowAxis& a, double phase) {
    return phase + std::ceil(double(a.kernel - 1) * double(a.dilation) / double(a.stride)) + 2;
  };
  const double plane = extent(R, phase_rows) * extent(C, phase_cols);
  return scratch_within_operands(g, double(g.batch) * double(g.out_channels) * plane + plane + 4096);
}

// Where the weight gradient beat `blocked` and `winograd` (CPU time per call, one thread,
// 3x3 layers of 192-512 channels): at batch 1 on 13x13 and 14x14 outputs (1.1-1.3x). On
// 7x7 outputs (4 pixel vectors per picture, 20% of them on no output pixel) and on 28x28
// outputs `blocked` or Winograd was ahead or level. Scratch: the phased input of the whole
// batch and the output gradient transposed onto its pixel grid (output channels rounded up
// to whole vectors of 16).
bool small_planes_grad_weight_chosen(const Conv2dGeometry& g, int) {
  return g.batch == 1 && g.out_plane() > 8 * 8 && g.out_plane() <= 14 * 14;
}

bool small_planes_grad_weight_supports(const Conv2dGeometry& g, int) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const double grid = double(R.out_size) * phased_extent(C, C.out_size);
  const double channels = std::ceil(double(g.out_channels) / 16.0) * 16.0;
  return small_planes_case(g) &&
         scratch_within_operands(g, phased_input_floats(g) + double(g.batch) * grid * channels);
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
#include "conv/stride_phases.h"

#include <omp.h>

namespace convpool::CONVPOOL_ISA {

namespace {

// The register tile: kNO output channels x kNR vectors of flat pixels, plus kNR input
// vectors and one broadcast weight, within the register file.
#if defined(CONVPOOL_ISA_avx512)
constexpr int kNO = 6, kNR = 4;
#else
constexpr int kNO = 6, kNR = 2;
#endif

// Weights of a group of output-channel blocks, read from L2 by every picture and tile.
constexpr double kGroupBytes = 1024 * 1024;

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The microkernel. Contract, for o < NO, r < NR and lanes l < V:
//   result[o * NR + r][l] = sum_{c < channels, u < ntaps}
//       w[o * w_out + c * w_channel + tap_k[u]] * in[c * channel_stride + tap_at[u] + r * V + l]
// Each weight is broadcast from the caller's array; the NO weight rows advance together.
template <int NO, int NR>
void plane_tile(const float* in, int64_t channels, int64_t channel_stride, const int64_t* tap_at,
                const int64_t* tap_k, int ntaps, const float* w, int64_t w_out, int64_t w_channel,
                vec* result) {
  vec acc[NO][NR];
  for (int o = 0; o < NO; ++o)
    for (int r = 0; r < NR; ++r) acc[o][r] = vec{};
  const float* wo[NO];
  for (int o = 0; o < NO; ++o) wo[o] = w + o * w_out;
  // At batch 1 each weight is read once per call, from memory: fetch each row's next
  // lines a few channels ahead (the row's own floats when they are consecutive, the next
  // channels' otherwise).
  const int64_t ahead = w_channel < 16 ? 64 : 4 * w_channel;
  for (int64_t c = 0; c < channels; ++c) {
    for (int o = 0; o < NO; ++o) __builtin_prefetch(wo[o] + ahead);
    for (int u = 0; u < ntaps; ++u) {
      const float* src = in + tap_at[u];
      const int64_t k = tap_k[u];
      vec xv[NR];
      for (int r = 0; r < NR; ++r) xv[r] = load(src + r * V);
      for (int o = 0; o < NO; ++o) {
        const vec wv = broadcast(wo[o][k]);
        for (int r = 0; r < NR; ++r) acc[o][r] += wv * xv[r];
      }
    }
    in += channel_stride;
    for (int o = 0; o < NO; ++o) wo[o] += w_channel;
  }
  for (int o = 0; o < NO; ++o)
    for (int r = 0; r < NR; ++r) result[o * NR + r] = acc[o][r];
}

using TileFn = void (*)(const float*, int64_t, int64_t, const int64_t*, const int64_t*, int,
                        const float*, int64_t, int64_t, vec*);

template <int NO, int... R>
constexpr std::array<TileFn, kNR + 1> tiles_for(std::integer_sequence<int, R...>) {
  return {nullptr, &plane_tile<NO, R + 1>...};
}

template <int... O>
constexpr std::array<std::array<TileFn, kNR + 1>, kNO + 1> tile_table(std::integer_sequence<int, O...>) {
  return {std::array<TileFn, kNR + 1>{}, tiles_for<O + 1>(std::make_integer_sequence<int, kNR>{})...};
}

// kTiles[no][nr] for the tails of output channels and pixel vectors.
const std::array<std::array<TileFn, kNR + 1>, kNO + 1> kTiles =
    tile_table(std::make_integer_sequence<int, kNO>{});

// One tap: it reads the zero-padded source at (row, col) from each output pixel's origin
// and multiplies weight plane entry k.
struct Tap {
  int64_t row = 0, col = 0, k = 0;
};

// The source planes of a correlation, zero padded and split into stride phases: per
// picture n and channel c, sr x sc phase planes of hq x wq pixels, phase (pr, pc) holding
// padded pixel (a * sr + pr, b * sc + pc), padded pixel (i, j) being source pixel
// (i - pad_top, j - pad_left) or zero outside the source (negative pads crop).
struct PhasedPlanes {
  const float* src = nullptr;
  int64_t channels = 0, rows = 0, cols = 0, pad_top = 0, pad_left = 0, sr = 1, sc = 1;
  int64_t hq = 0, wq = 0;

  int64_t phase_plane() const { return hq * wq; }
  int64_t channel_stride() const { return sr * sc * hq * wq; }
  // Where tap (row, col) of flat output position 0 reads, from its channel's start.
  int64_t offset(int64_t row, int64_t col) const {
    return ((row % sr) * sc + col % sc) * phase_plane() + (row / sr) * wq + col / sc;
  }

  // Source plane `plane` (picture-major: n * channels + c) into dst.
  void copy(int64_t plane, float* dst) const {
    const float* s_plane = src + plane * rows * cols;
    for (int64_t pr = 0; pr < sr; ++pr)
      for (int64_t pc = 0; pc < sc; ++pc) {
        // Columns b with 0 <= b * sc + pc - pad_left < cols come from the source.
        const int64_t b0 = std::clamp<int64_t>(-floor_div(pc - pad_left, sc), 0, wq);
        const int64_t b1 = std::clamp<int64_t>(-floor_div(pc - pad_left - cols, sc), b0, wq);
        float* d = dst + (pr * sc + pc) * hq * wq;
        for (int64_t a = 0; a < hq; ++a, d += wq) {
          const int64_t row = a * sr + pr - pad_top;
          if (row < 0 || row >= rows) {
            std::fill(d, d + wq, 0.0f);
            continue;
          }
          std::fill(d, d + b0, 0.0f);
          const float* s = s_plane + row * cols + b0 * sc + pc - pad_left;
          if (sc == 1) {
            std::copy(s, s + (b1 - b0), d + b0);
          } else {
            for (int64_t b = b0; b < b1; ++b, s += sc) d[b] = *s;
          }
          std::fill(d + b1, d + wq, 0.0f);
        }
      }
  }
};

// A correlation on small planes, for picture n, output channel o < cout and output pixel
// (a, b), a < out_rows, b < out_cols:
//   out[n, o, row0 + a * row_step, col0 + b * col_step] = bias[o] + sum_{c < cin, tap}
//       w[o * w_out + c * w_channel + tap.k] * padded source[n, c, a * sr + tap.row, b * sc + tap.col]
// where out planes are plane_rows x plane_cols.
struct PlaneCorrelation {
  int64_t batch = 0, cin = 0, cout = 0;
  PhasedPlanes source;
  Array<Tap> taps;
  const float* w = nullptr;
  int64_t w_out = 0, w_channel = 0;
  const float* bias = nullptr;
  float* out = nullptr;
  int64_t out_rows = 0, out_cols = 0, plane_rows = 0, plane_cols = 0;
  int64_t row0 = 0, col0 = 0, row_step = 1, col_step = 1;

  // Sizes the phase planes for the taps: every output pixel's taps inside one plane.
  void size_phases() {
    int64_t reach_rows = 0, reach_cols = 0;
    for (const Tap& t : taps) {
      reach_rows = std::max(reach_rows, t.row);
      reach_cols = std::max(reach_cols, t.col);
    }
    source.hq = ceil_div((out_rows - 1) * source.sr + reach_rows + 1, source.sr);
    source.wq = ceil_div((out_cols - 1) * source.sc + reach_cols + 1, source.sc);
  }

  void run() const {
    const int64_t Wq = source.wq, channel_stride = source.channel_stride();
    const int64_t K = int64_t(taps.size());
    const int64_t out_plane = plane_rows * plane_cols;
    Array<int64_t> tap_at(static_cast<size_t>(K)), tap_k(static_cast<size_t>(K));
    int64_t max_tap = 0;
    for (int64_t u = 0; u < K; ++u) {
      tap_at[size_t(u)] = source.offset(taps[size_t(u)].row, taps[size_t(u)].col);
      tap_k[size_t(u)] = taps[size_t(u)].k;
      max_tap = std::max(max_tap, tap_at[size_t(u)]);
    }
    // Flat output positions p = a * Wq + b; lanes on columns b >= out_cols hold no output.
    const int64_t flat = (out_rows - 1) * Wq + out_cols;
    const int64_t vectors = ceil_div(flat, V), ntiles = ceil_div(vectors, kNR);
    Array<int64_t> lane_out(static_cast<size_t>(vectors * V));
    for (int64_t p = 0; p < vectors * V; ++p) {
      const int64_t a = p / Wq, b = p % Wq;
      lane_out[size_t(p)] = a < out_rows && b < out_cols
                                ? (row0 + a * row_step) * plane_cols + col0 + b * col_step
                                : -1;
    }
    // The last channel's reads run past its end by up to the slack, zeroed.
    const int64_t picture_floats = cin * channel_stride;
    const int64_t slack = std::max<int64_t>(0, max_tap + vectors * V - channel_stride);
    const size_t buffer_size = size_t(batch * picture_floats + slack);
    float* buffer = workspace(WorkspaceSlot::padded_input, buffer_size);
    std::fill(buffer + batch * picture_floats, buffer + buffer_size, 0.0f);

    // Groups of output-channel blocks whose weights stay in L2, outermost; within a group,
    // picture by picture and tile by tile, every block of the group in turn, so that the
    // tile's input is read from L1 or L2 by each block and the group's weights from L2 by
    // every picture of the batch.
    const int64_t ob_count = ceil_div(cout, kNO);
    const double block_bytes = double(kNO) * double(cin) * double(K) * sizeof(float);
    const int64_t group_blocks =
        std::clamp<int64_t>(int64_t(kGroupBytes / block_bytes), 1, ob_count);
    const int64_t per_group = batch * ntiles * group_blocks;
    const int64_t units = ceil_div(ob_count, group_blocks) * per_group;
    const int team = threads_for_tasks(units, batch * cout * out_rows * out_cols * cin * K);
#pragma omp parallel num_threads(team)
    {
#pragma omp for schedule(static)
      for (int64_t plane = 0; plane < batch * cin; ++plane)
        source.copy(plane, buffer + plane * channel_stride);
#pragma omp for schedule(static)
      for (int64_t unit = 0; unit < units; ++unit) {
        const int64_t group = unit / per_group, rest = unit % per_group;
        const int64_t n = rest / (ntiles * group_blocks);
        const int64_t tile = rest / group_blocks % ntiles;
        const int64_t ob = group * group_blocks + rest % group_blocks;
        if (ob >= ob_count) continue;
        const int64_t first_o = ob * kNO, first_v = tile * kNR;
        const int no = int(std::min<int64_t>(kNO, cout - first_o));
        const int nr = int(std::min<int64_t>(kNR, vectors - first_v));
        vec result[kNO * kNR];
        kTiles[no][nr](buffer + n * picture_floats + first_v * V, cin, channel_stride,
                       tap_at.data(), tap_k.data(), int(K), w + first_o * w_out, w_out,
                       w_channel, result);
        for (int o = 0; o < no; ++o) {
          float* dst = out + (n * cout + first_o + o) * out_plane;
          const float b = bias ? bias[first_o + o] : 0.0f;
          for (int r = 0; r < nr; ++r) {
            const int64_t* lanes = lane_out.data() + (first_v + r) * V;
            const vec v = result[o * nr + r];
            for (int l = 0; l < V; ++l)
              if (lanes[l] >= 0) dst[lanes[l]] = v[l] + b;
          }
        }
      }
    }
  }
};

PhasedPlanes forward_source(const Conv2dGeometry& g, const float* x) {
  PhasedPlanes s;
  s.src = x;
  s.channels = g.in_channels;
  s.rows = g.rows.in_size;
  s.cols = g.cols.in_size;
  s.pad_top = g.rows.pad_before;
  s.pad_left = g.cols.pad_before;
  s.sr = g.rows.stride;
  s.sc = g.cols.stride;
  return s;
}

Array<Tap> forward_taps(const Conv2dGeometry& g) {
  Array<Tap> taps;
  for (int64_t i = 0; i < g.rows.kernel; ++i)
    for (int64_t j = 0; j < g.cols.kernel; ++j)
      taps.push_back({i * g.rows.dilation, j * g.cols.dilation, i * g.cols.kernel + j});
  return taps;
}

// ---------------------------------------------------------------------------------------
// The weight gradient: output channels in the lanes. The output gradient of each picture
// is transposed onto the phased input's flat pixel grid, gt[p][o] (p = a * Wq + b, zero
// rows for the columns that hold no output pixel, output channels padded to whole
// vectors), so that for each (input channel, tap) pair j
//   grad_w[o, pair j] = sum_{n, p} gt[n][p][o] * phased input[n][pair j's offset + p]
// is a vector FMA per pixel: one broadcast input value against kWV vectors of channels.
#if defined(CONVPOOL_ISA_avx512)
constexpr int kWJ = 12, kWV = 2;
#else
constexpr int kWJ = 6, kWV = 2;
#endif

// Phased input of a group of input channels (the whole batch), read from L2 by every
// block of output channels.
constexpr double kInputGroupBytes = 512 * 1024;

// Contract, for j < NJ, v < NV: acc[j * kWV + v] = sum_{n < pictures, p < pixels}
//     x[j][n * x_picture + p] * gt[n * gt_picture + p * gt_row + v * V + l]
template <int NJ, int NV>
void weight_tile(const float* gt, int64_t gt_row, int64_t gt_picture, const float* const* x,
                 int64_t x_picture, int64_t pictures, int64_t pixels, vec* result) {
  vec acc[NJ][NV];
  for (int j = 0; j < NJ; ++j)
    for (int v = 0; v < NV; ++v) acc[j][v] = vec{};
  for (int64_t n = 0; n < pictures; ++n) {
    const float* src[NJ];
    for (int j = 0; j < NJ; ++j) src[j] = x[j] + n * x_picture;
    const float* g = gt + n * gt_picture;
    for (int64_t p = 0; p < pixels; ++p, g += gt_row) {
      vec gv[NV];
      for (int v = 0; v < NV; ++v) gv[v] = load(g + v * V);
      for (int j = 0; j < NJ; ++j) {
        const vec xv = broadcast(src[j][p]);
        for (int v = 0; v < NV; ++v) acc[j][v] += xv * gv[v];
      }
    }
  }
  for (int j = 0; j < NJ; ++j)
    for (int v = 0; v < NV; ++v) result[j * kWV + v] = acc[j][v];
}

using WeightTileFn = void (*)(const float*, int64_t, int64_t, const float* const*, int64_t, int64_t,
                              int64_t, vec*);

template <int NJ, int... W>
constexpr std::array<WeightTileFn, kWV + 1> weight_tiles_for(std::integer_sequence<int, W...>) {
  return {nullptr, &weight_tile<NJ, W + 1>...};
}

template <int... J>
constexpr std::array<std::array<WeightTileFn, kWV + 1>, kWJ + 1> weight_tile_table(
    std::integer_sequence<int, J...>) {
  return {std::array<WeightTileFn, kWV + 1>{},
          weight_tiles_for<J + 1>(std::make_integer_sequence<int, kWV>{})...};
}

// kWeightTiles[nj][nv] for the tails of pairs and channel vectors.
const std::array<std::array<WeightTileFn, kWV + 1>, kWJ + 1> kWeightTiles =
    weight_tile_table(std::make_integer_sequence<int, kWJ>{});

}  // namespace

void small_planes_forward(const Conv2dGeometry& g, const float* x, const float* w,
                          const float* bias, float* y) {
  PlaneCorrelation job;
  job.batch = g.batch;
  job.cin = g.in_channels;
  job.cout = g.out_channels;
  job.source = forward_source(g, x);
  job.taps = forward_taps(g);
  job.w = w;
  job.w_out = g.in_channels * g.kernel_plane();
  job.w_channel = g.kernel_plane();
  job.bias = bias;
  job.out = y;
  job.out_rows = job.plane_rows = g.rows.out_size;
  job.out_cols = job.plane_cols = g.cols.out_size;
  job.size_phases();
  job.run();
}

// One correlation of the output gradient per stride phase (ry, rx): input pixels
// (ry + a * sy, rx + b * sx) receive the taps whose offsets are whole multiples of the
// stride (conv/stride_phases.h), input and output channels swapped, the weights read in
// place as w[o][i] transposed. Phases no tap reaches are zero.
void small_planes_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                             float* grad_x) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t K = g.kernel_plane();
  for (int64_t ry = 0; ry < std::min(R.stride, R.in_size); ++ry)
    for (int64_t rx = 0; rx < std::min(C.stride, C.in_size); ++rx) {
      const Array<PhaseTap> row_taps = phase_taps(R, ry), col_taps = phase_taps(C, rx);
      const int64_t rows = phase_size(R, ry), cols = phase_size(C, rx);
      if (row_taps.empty() || col_taps.empty()) {
#pragma omp parallel for num_threads(threads_for(g.batch * g.in_channels * rows * cols)) schedule(static)
        for (int64_t plane = 0; plane < g.batch * g.in_channels; ++plane)
          for (int64_t a = 0; a < rows; ++a) {
            float* row = grad_x + plane * g.in_plane() + (ry + a * R.stride) * C.in_size;
            for (int64_t b = 0; b < cols; ++b) row[rx + b * C.stride] = 0.0f;
          }
        continue;
      }
      int64_t lowest_row = 0, lowest_col = 0;
      for (const PhaseTap& t : row_taps) lowest_row = std::min(lowest_row, t.offset);
      for (const PhaseTap& t : col_taps) lowest_col = std::min(lowest_col, t.offset);
      PlaneCorrelation job;
      job.batch = g.batch;
      job.cin = g.out_channels;
      job.cout = g.in_channels;
      job.source.src = grad_y;
      job.source.channels = g.out_channels;
      job.source.rows = R.out_size;
      job.source.cols = C.out_size;
      // Output-gradient pixel (a + offset) is padded pixel (a + offset - lowest).
      job.source.pad_top = -lowest_row;
      job.source.pad_left = -lowest_col;
      for (const PhaseTap& rt : row_taps)
        for (const PhaseTap& ct : col_taps)
          job.taps.push_back({rt.offset - lowest_row, ct.offset - lowest_col,
                              rt.kernel_index * C.kernel + ct.kernel_index});
      job.w = w;
      job.w_out = K;
      job.w_channel = g.in_channels * K;
      job.out = grad_x;
      job.out_rows = rows;
      job.out_cols = cols;
      job.plane_rows = R.in_size;
      job.plane_cols = C.in_size;
      job.row0 = ry;
      job.col0 = rx;
      job.row_step = R.stride;
      job.col_step = C.stride;
      job.size_phases();
      job.run();
    }
}

void small_planes_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,
                              float* grad_w) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t batch = g.batch, cin = g.in_channels, cout = g.out_channels;
  const int64_t K = g.kernel_plane(), rows = R.out_size, cols = C.out_size;
  PlaneCorrelation job;  // the forward correlation, for its phased input
  job.source = forward_source(g, x);
  job.taps = forward_taps(g);
  job.out_rows = rows;
  job.out_cols = cols;
  job.size_phases();
  const PhasedPlanes& source = job.source;
  const int64_t Wq = source.wq, channel_stride = source.channel_stride();
  const int64_t flat = (rows - 1) * Wq + cols;
  Array<int64_t> tap_at(static_cast<size_t>(K));
  int64_t max_tap = 0;
  for (int64_t u = 0; u < K; ++u) {
    tap_at[size_t(u)] = source.offset(job.taps[size_t(u)].row, job.taps[size_t(u)].col);
    max_tap = std::max(max_tap, tap_at[size_t(u)]);
  }
  const int64_t x_picture = cin * channel_stride;
  const int64_t slack = std::max<int64_t>(0, max_tap + flat - channel_stride);
  const int64_t gt_row = ceil_div(cout, V) * V, gt_picture = flat * gt_row;
  const size_t x_size = size_t(batch * x_picture + slack);
  float* x_phased = workspace(WorkspaceSlot::padded_input, x_size + size_t(batch * gt_picture));
  float* gt = x_phased + x_size;
  std::fill(x_phased + batch * x_picture, x_phased + x_size, 0.0f);

  // Units: groups of input channels whose phased input stays in L2, outermost; within a
  // group, blocks of output channels (their part of gt read from L2), then blocks of pairs.
  const int64_t pairs = cin * K;
  const int64_t channel_blocks = ceil_div(gt_row, kWV * V), pair_blocks = ceil_div(pairs, kWJ);
  const double channel_bytes = double(batch) * double(channel_stride) * sizeof(float);
  const int64_t group_pair_blocks = std::clamp<int64_t>(
      int64_t(kInputGroupBytes / channel_bytes) * K / kWJ, 1, pair_blocks);
  const int64_t per_group = channel_blocks * group_pair_blocks;
  const int64_t units = ceil_div(pair_blocks, group_pair_blocks) * per_group;
  const int team = threads_for_tasks(units, batch * rows * cols * cout * pairs);
#pragma omp parallel num_threads(team)
  {
#pragma omp for schedule(static)
    for (int64_t plane = 0; plane < batch * cin; ++plane)
      source.copy(plane, x_phased + plane * channel_stride);
    // gt[n][p][o]: V output channels of one picture at a time, their rows read in step.
#pragma omp for schedule(static)
    for (int64_t task = 0; task < batch * (gt_row / V); ++task) {
      const int64_t n = task / (gt_row / V), o0 = task % (gt_row / V) * V;
      float* d = gt + n * gt_picture + o0;
      for (int64_t p = 0; p < flat; ++p) {
        const int64_t a = p / Wq, b = p % Wq;
        float* dp = d + p * gt_row;
        for (int64_t o = 0; o < V; ++o)
          dp[o] = (b < cols && o0 + o < cout) ? grad_y[((n * cout + o0 + o) * rows + a) * cols + b]
                                              : 0.0f;
      }
    }
#pragma omp for schedule(static)
    for (int64_t unit = 0; unit < units; ++unit) {
      const int64_t group = unit / per_group, rest = unit % per_group;
      const int64_t cb = rest / group_pair_blocks;
      const int64_t pb = group * group_pair_blocks + rest % group_pair_blocks;
      if (pb >= pair_blocks) continue;
      const int64_t first_j = pb * kWJ, o0 = cb * kWV * V;
      const int nj = int(std::min<int64_t>(kWJ, pairs - first_j));
      const int nv = int(std::min<int64_t>(kWV, (gt_row - o0) / V));
      const float* xs[kWJ];
      for (int j = 0; j < nj; ++j) {
        const int64_t pair = first_j + j;
        xs[j] = x_phased + (pair / K) * channel_stride + tap_at[size_t(pair % K)];
      }
      vec result[kWJ * kWV];
      kWeightTiles[nj][nv](gt + o0, gt_row, gt_picture, xs, x_picture, batch, flat, result);
      for (int j = 0; j < nj; ++j) {
        const int64_t pair = first_j + j;
        float* dst = grad_w + (pair / K) * K + job.taps[size_t(pair % K)].k;
        for (int v = 0; v < nv; ++v)
          for (int l = 0; l < V; ++l) {
            const int64_t o = o0 + v * V + l;
            if (o < cout) dst[o * pairs] = result[j * kWV + v][l];
          }
      }
    }
  }
}

}  // namespace convpool::CONVPOOL_ISA

#endif  // CONVPOOL_PREDICATES_ONLY
