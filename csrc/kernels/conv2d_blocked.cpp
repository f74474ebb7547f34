// Register-blocked float32 convolution, compiled once per instruction set (with each
// ISA's flags into namespaces avx512, avx2, baseline).
//
// Forward and input gradient share one engine, a "tap convolution": a tile of output
// pixels x 16-32 output channels lives in vector registers while the engine walks the
// input channels and kernel taps, broadcasting one input value against a vector of
// packed weights. The input gradient is the same engine on the output gradient with
// the kernel transposed and flipped, one pass per stride phase. The weight gradient uses
// the same register tile with pixels as the reduction axis.
// GCC vector extensions give each build its native vector width.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the
// registry line names both (registry/registry.cpp).
#include <cstdint>

#include "common/geometry.h"

namespace convpool {

// The most output channels per group a row tile of the blocked engine holds.
constexpr int64_t kBlockedMaxRowChannels = 8;
// Whether the blocked engine puts its vectors along output rows (row tiles) for
// `out_channels` outputs per group over rows of `cols` pixels; the predicates and the
// kernels ask the same (defined in the predicate section).
bool blocked_rows_suit(int64_t out_channels, int64_t cols, int vector_floats);

// How the blocked weight gradient divides its work. The gradient is cut into regions
// (a group's run of output-channel blocks x a run of its input channels, every tap), each
// small enough to stay in L2 while the pixels stream past; each region is summed over
// `slices` contiguous shares of the (image, output row) pairs, one partial per share,
// added in share order: the split depends on the shapes alone, never on the threads.
// Asked by the predicate and the kernels alike (defined in the predicate section).
struct BlockedWeightPlan {
  int64_t block = 0;            // output channels per register tile (1 or 2 vectors)
  int64_t out_blocks = 0;       // blocks of `block` output channels per group
  int64_t region_blocks = 0;    // output blocks per region
  int64_t region_channels = 0;  // input channels per region
  int64_t regions = 0;          // regions in all groups
  int64_t slices = 0;           // shares of the (image, output row) pairs
  // The input packed channels-last with its zero padding: rows x columns per plane; an
  // axis with a 1-wide kernel keeps only the pixels its windows read (its stride is 1).
  int64_t packed_rows = 0, packed_cols = 0;
  double scratch_floats = 0;    // the slices' partials
};
BlockedWeightPlan blocked_weight_plan(const Conv2dGeometry& g, int vector_floats);

// The output rows a blocked weight-gradient task packs at a time (`rows`) and multiplies
// at a time (`sub_rows`), and the floats of a thread's chunk buffers.
struct BlockedWeightChunks {
  int64_t rows = 0, sub_rows = 0;
  double x_floats = 0, gy_floats = 0;
};
BlockedWeightChunks blocked_weight_chunks(const Conv2dGeometry& g, const BlockedWeightPlan& p);

}  // namespace convpool

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
#include <algorithm>
#include <cmath>

#include "common/threading.h"

namespace convpool {

namespace {

// The extent of the input rows (or columns) the windows of axis `a` read, padding included.
double read_extent(const WindowAxis& a) {
  return double(a.out_size - 1) * double(a.stride) + double(a.dilation) * double(a.kernel - 1) + 1;
}

// Rows (or columns) of the output gradient, zero margins included, that the blocked input
// gradient's stride phases read (as conv2d_blocked.cpp builds it).
double gradient_rows(const WindowAxis& a) {
  int64_t lowest = 0, highest = 0;
  // Phases from in_size on hold no input pixel (and a stride may be near 2**62).
  for (int64_t phase = 0; phase < std::min(a.stride, a.in_size); ++phase)
    for (int64_t k = 0; k < a.kernel; ++k) {
      const int64_t shift = phase + a.pad_before - k * a.dilation;  // = offset * stride
      const int64_t rest = ((shift % a.stride) + a.stride) % a.stride;
      if (rest != 0) continue;
      const int64_t offset = (shift - rest) / a.stride;
      lowest = std::min(lowest, offset);
      highest = std::max(highest, offset);
    }
  const int64_t in_phase_rows = (a.in_size + a.stride - 1) / a.stride;
  return double(-lowest) + double(std::max(a.out_size, in_phase_rows + highest));
}


}  // namespace

bool blocked_rows_suit(int64_t out_channels, int64_t cols, int vector_floats) {
  return out_channels <= kBlockedMaxRowChannels && out_channels * 2 <= vector_floats &&
         cols * 2 >= vector_floats;
}

bool blocked_forward_supports(const Conv2dGeometry& g, int vector_floats) {
  // With one input channel per group the plane filter beats channel tiles; the row kernel
  // beats both from two output channels per group on (measured: LeNet's first layer 2.3x,
  // a single-channel picture filter or a depthwise layer 0.5x-0.8x).
  const bool rows = g.cols.stride == 1 && g.out_channels_per_group() >= 2 &&
                    blocked_rows_suit(g.out_channels_per_group(), g.cols.out_size, vector_floats);
  const bool tiles = g.out_channels_per_group() >= 4 && g.in_channels_per_group() >= 2;
  if (!(g.cols.stride <= 2 && (rows || tiles) && g.batch > 0 && g.rows.out_size > 0 &&
        g.cols.out_size > 0 && g.in_plane() > 0))
    return false;
  // The padded copy blocked_forward makes, bounded by the operands (padding that few
  // windows read goes to `direct`, which needs no copy): whole padded planes for the row
  // kernel, a window of rows per thread for channel tiles.
  const WindowAxis &R = g.rows, &C = g.cols;
  const double rows_read = read_extent(R), cols_read = read_extent(C);
  if (C.stride == 1 && blocked_rows_suit(g.out_channels_per_group(), C.out_size, vector_floats))
    return scratch_within_operands(g, double(g.batch) * double(g.in_channels) * rows_read *
                                          cols_read);
  if (R.pad_before == 0 && C.pad_before == 0 && rows_read <= double(R.in_size) &&
      cols_read <= double(C.in_size))
    return true;  // reads the input in place
  const double window_rows = double(R.kernel - 1) * double(R.dilation) + 1;
  return scratch_within_operands(
      g, double(num_threads()) * double(g.in_channels_per_group()) * window_rows * cols_read);
}

bool blocked_grad_input_supports(const Conv2dGeometry& g, int vector_floats) {
  if (!g.zero_padded()) return false;  // the padded output gradient is folded by nothing
  const bool rows = g.rows.stride == 1 && g.cols.stride == 1 &&
                    blocked_rows_suit(g.in_channels_per_group(), g.cols.in_size, vector_floats);
  if (!((rows || g.in_channels_per_group() >= 4) && g.batch > 0 && g.in_plane() > 0))
    return false;
  // The output gradient with the zero margins every stride phase reads.
  return scratch_within_operands(g, double(g.batch) * double(g.out_channels) *
                                        gradient_rows(g.rows) * gradient_rows(g.cols));
}

// A region's share of the gradient (4 bytes a float) stays within half of a 2 MB L2,
// beside the chunk of input rows and output gradient it is multiplied with.
constexpr double kWeightRegionFloats = 256.0 * 1024;
// Enough tasks (regions x slices) for two threads to end close together.
constexpr int64_t kWeightTasks = 8;

// The extent of axis `a` in the packed input: every padded pixel the windows read, or,
// with a 1-wide kernel, only the pixels they read.
int64_t packed_extent(const WindowAxis& a) {
  return a.kernel == 1 ? a.out_size : int64_t(read_extent(a));
}

BlockedWeightPlan blocked_weight_plan(const Conv2dGeometry& g, int vector_floats) {
  BlockedWeightPlan p;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t K = g.kernel_plane();
  p.block = (cout_g > vector_floats ? 2 : 1) * int64_t(vector_floats);
  p.out_blocks = (cout_g + p.block - 1) / p.block;
  const double per_block = double(p.block) * double(K) * double(cin_g);
  if (per_block <= kWeightRegionFloats) {
    // Every input channel, as many output blocks as fit, in runs of even length.
    const int64_t most = int64_t(kWeightRegionFloats / per_block);
    const int64_t runs = (p.out_blocks + most - 1) / most;
    p.region_blocks = (p.out_blocks + runs - 1) / runs;
    p.region_channels = cin_g;
  } else {
    // One output block, the input channels in runs of even length.
    p.region_blocks = 1;
    const int64_t most = std::max<int64_t>(
        1, int64_t(kWeightRegionFloats / (double(p.block) * double(K))));
    const int64_t runs = (cin_g + most - 1) / most;
    p.region_channels = (cin_g + runs - 1) / runs;
  }
  p.regions = g.groups * ((p.out_blocks + p.region_blocks - 1) / p.region_blocks) *
              ((cin_g + p.region_channels - 1) / p.region_channels);
  p.packed_rows = packed_extent(g.rows);
  p.packed_cols = packed_extent(g.cols);
  const int64_t row_pairs = std::max<int64_t>(1, g.batch * g.rows.out_size);
  p.slices = std::min(row_pairs, std::max<int64_t>(1, (kWeightTasks + p.regions - 1) / p.regions));
  const double partial = double(g.groups) * double(p.out_blocks) * per_block;
  // Fewer slices where their partials would take more than half the scratch bound (the
  // threads' chunk buffers need the rest).
  while (p.slices > 1 && !scratch_within_operands(g, 2 * double(p.slices) * partial)) --p.slices;
  p.scratch_floats = double(p.slices) * partial;
  return p;
}

// A task packs its input rows and output gradient a chunk of output rows at a time, the
// chunk within a quarter of L2 (packing fewer rows repeats the window's extra rows more
// often), and multiplies them a sub-chunk at a time, the sub-chunk's output gradient for
// one block in L1 while every tap and input channel of the region passes over it.
constexpr double kChunkFloats = 128.0 * 1024;
constexpr double kSubChunkFloats = 4096;

BlockedWeightChunks blocked_weight_chunks(const Conv2dGeometry& g, const BlockedWeightPlan& p) {
  const WindowAxis& R = g.rows;
  const double out_rows = double(std::max<int64_t>(1, R.out_size)), cols = double(g.cols.out_size);
  const double step = R.kernel == 1 ? 1 : double(R.stride);
  const double tap_step = R.kernel == 1 ? 0 : double(R.dilation);
  const double x_row = double(p.packed_cols) * double(p.region_channels);
  const double gy_row = double(p.region_blocks) * cols * double(p.block);
  BlockedWeightChunks c;
  c.rows = int64_t(std::clamp(std::floor(kChunkFloats / (step * x_row + gy_row)), 1.0, out_rows));
  c.sub_rows = int64_t(std::clamp(std::floor(kSubChunkFloats / (double(p.block) * cols)), 1.0,
                                  double(c.rows)));
  c.x_floats = (double(c.rows - 1) * step + double(R.kernel - 1) * tap_step + 1) * x_row;
  c.gy_floats = double(c.rows) * gy_row;
  return c;
}

bool blocked_grad_weight_supports(const Conv2dGeometry& g, int vector_floats) {
  if (!g.zero_padded()) return false;  // its channels-last packing pads with zeros
  if (!(g.out_channels_per_group() >= 4 && g.batch > 0 && g.out_plane() > 0)) return false;
  const BlockedWeightPlan plan = blocked_weight_plan(g, vector_floats);
  const BlockedWeightChunks chunks = blocked_weight_chunks(g, plan);
  return scratch_within_operands(
      g, plan.scratch_floats + double(num_threads()) * (chunks.x_floats + chunks.gy_floats));
}

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "conv/padded_rows.h"
#include "conv/tap_tile.h"
#include "common/simd_vec.h"
#include "common/threading.h"
#include "common/workspace.h"

#include <omp.h>

namespace convpool::CONVPOOL_ISA {

namespace {

// Copies planes of (rows x cols) into planes (followed by V zeros of slack) of (padded_rows x padded_cols), pixel (r, c)
// going to (r + top, c + left); everything else is padded by `mode` (copy_padded_rows).
// top/left may be negative (crop).
const float* padded_planes(const float* src, int64_t planes, int64_t rows, int64_t cols,
                           int64_t top, int64_t left, int64_t padded_rows, int64_t padded_cols,
                           PaddingMode mode) {
  const size_t size = size_t(planes * padded_rows * padded_cols);
  float* dst = workspace(WorkspaceSlot::padded_input, size + V);
  std::fill(dst + size, dst + size + V, 0.0f);  // slack for vector loads past the last row
#pragma omp parallel for num_threads(threads_for(planes * padded_rows * padded_cols)) schedule(static)
  for (int64_t p = 0; p < planes; ++p)
    copy_padded_rows(src + p * rows * cols, rows, cols, -top, padded_rows, left, padded_cols,
                     dst + p * padded_rows * padded_cols, padded_cols, mode);
  return dst;
}

// ---------------------------------------------------------------------------------------
// The row microkernel, for tap convolutions with few output channels: vectors run along
// an output row (V pixels) and NR rows x NO output channels stay in registers, so no
// vector lane is spent on output channels that do not exist. Contract, for o < NO,
// r < NR and lanes l < V:
//   out[o * out_channel_stride + r * out_row_stride + l] =
//     bias[o] + sum_{c, t} w[(c * ntaps + t) * NO + o] * in[c * channel_stride + taps[t] + r * in_row_stride + l]
// storing only the first `lanes` of each row.
template <int NO, int NR>
void row_tile(const float* in, int64_t channels, int64_t channel_stride, const int64_t* taps,
              int ntaps, int64_t in_row_stride, const float* w, const float* bias, float* out,
              int64_t out_channel_stride, int64_t out_row_stride, int lanes) {
  vec acc[NO][NR];
  for (int o = 0; o < NO; ++o)
    for (int r = 0; r < NR; ++r) acc[o][r] = broadcast(bias ? bias[o] : 0.0f);
  for (int64_t c = 0; c < channels; ++c) {
    const float* in_c = in + c * channel_stride;
    for (int t = 0; t < ntaps; ++t, w += NO) {
      vec xv[NR];
      for (int r = 0; r < NR; ++r) xv[r] = load(in_c + taps[t] + r * in_row_stride);
      for (int o = 0; o < NO; ++o) {
        const vec wv = broadcast(w[o]);
        for (int r = 0; r < NR; ++r) acc[o][r] += wv * xv[r];
      }
    }
  }
  for (int o = 0; o < NO; ++o)
    for (int r = 0; r < NR; ++r) {
      float* dst = out + o * out_channel_stride + r * out_row_stride;
      if (lanes == V) {
        store(dst, acc[o][r]);
      } else {
        for (int l = 0; l < lanes; ++l) dst[l] = acc[o][r][l];
      }
    }
}

constexpr int kMaxRowChannels = int(kBlockedMaxRowChannels);
// Rows per tile for NO output channels: NO x NR accumulators plus the NR input vectors
// and a broadcast within the register file.
constexpr int row_tile_rows(int no) {
  return std::max(1, std::min(8, (kVectorRegisters - 2) / (no + 1)));
}

using RowTileFn = void (*)(const float*, int64_t, int64_t, const int64_t*, int, int64_t,
                           const float*, const float*, float*, int64_t, int64_t, int);

template <int NO, int... R>
constexpr std::array<RowTileFn, 9> row_tiles_for(std::integer_sequence<int, R...>) {
  return {nullptr, (R + 1 <= row_tile_rows(NO) ? &row_tile<NO, std::min(R + 1, row_tile_rows(NO))> : nullptr)...};
}

template <int... O>
constexpr std::array<std::array<RowTileFn, 9>, kMaxRowChannels + 1> row_tile_table(std::integer_sequence<int, O...>) {
  return {std::array<RowTileFn, 9>{}, row_tiles_for<O + 1>(std::make_integer_sequence<int, 8>{})...};
}

// kRowTiles[NO][NR]
const std::array<std::array<RowTileFn, 9>, kMaxRowChannels + 1> kRowTiles =
    row_tile_table(std::make_integer_sequence<int, kMaxRowChannels>{});

// ---------------------------------------------------------------------------------------
// A tap convolution: for every image n, group g and output position (r, c) < (rows, cols)
//   out[n, g*cout_g + o, row0 + r*row_step, col0 + c*col_step]
//     = bias + sum_{i < cin_g, t} packed[g][o-block][i][t][o] * in[n, g*cin_g + i, r*in_row_step*in_cols + c*in_col_step + taps[t]]
// where `in` holds (in_rows x in_cols) planes padded so that every read is inside, or,
// when `source` is set, is a virtual padding of `source` (source_rows x source_cols planes
// at offset pad_top, pad_left) whose rows each task copies as it needs them.
struct TapConvolution {
  int64_t batch = 0, groups = 1, cin_g = 0, cout_g = 0;
  const float* in = nullptr;
  int64_t in_channels = 0, in_rows = 0, in_cols = 0, in_row_step = 1, in_col_step = 1;
  const float* source = nullptr;
  int64_t source_rows = 0, source_cols = 0, pad_top = 0, pad_left = 0;
  PaddingMode source_mode = PaddingMode::zeros;
  int64_t window_rows = 0;  // padded rows one output row reads
  Array<int64_t> taps;
  Array<float> packed;  // [g][ob][i][t][NB * V]
  int nb = 1;
  float* out = nullptr;
  int64_t out_channels = 0, out_rows = 0, out_cols = 0;
  int64_t rows = 0, cols = 0, row0 = 0, col0 = 0, row_step = 1, col_step = 1;
  const float* bias = nullptr;
  // Vectors along output rows (row_tile) instead of output channels (tap_tile): for few
  // output channels per group, contiguous rows, and an input with slack past its end.
  bool by_rows = false;

  static bool rows_suit(int64_t cout_g, int64_t cols) { return blocked_rows_suit(cout_g, cols, V); }

  int64_t block() const { return by_rows ? cout_g : int64_t(nb) * V; }
  int64_t out_blocks() const { return ceil_div(cout_g, block()); }

  // Packs weight(g, o, i, t) for o < cout_g, i < cin_g, t < taps.size().
  template <typename WeightAt>
  void pack(WeightAt weight_at) {
    const int64_t ob_count = out_blocks(), B = block(), T = int64_t(taps.size());
    packed.assign(size_t(groups * ob_count * cin_g * T * B), 0.0f);
    float* p = packed.data();
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t ob = 0; ob < ob_count; ++ob)
        for (int64_t i = 0; i < cin_g; ++i)
          for (int64_t t = 0; t < T; ++t, p += B)
            for (int64_t o = 0; o < B && ob * B + o < cout_g; ++o) p[o] = weight_at(g, ob * B + o, i, t);
  }

  void run() const {
    if (by_rows) return run_by_rows();
    const int64_t ob_count = out_blocks(), B = block(), T = int64_t(taps.size());
    const int ur_max = kMaxTile[nb];
    const int64_t tasks = batch * groups * ob_count * rows;
    const bool weights_in_l2 = int64_t(packed.size() / size_t(groups)) * int64_t(sizeof(float)) <= 512 * 1024;
    const int64_t in_plane = in_rows * in_cols, out_plane = out_rows * out_cols;
    // (a picture's rows x channel blocks are tasks of their own: batch 1 uses every thread
    // where each gets kGrainWork or more)
    const int team = threads_for_tasks(tasks, tasks * cols * cin_g * T * B);
    // With a virtual padding, each thread's rows of the current (image, group, output
    // row), which consecutive tasks of one output block share: a few rows per channel stay
    // in L1/L2 where a padded copy of the whole input would go through memory twice.
    // Allocated here: an allocation failure inside the parallel region could not be reported.
    const size_t window_size = source ? size_t(cin_g * window_rows * in_cols) : 0;
    Array<float> windows(size_t(team) * window_size);
#pragma omp parallel num_threads(team)
    {
      alignas(64) float tile[kMaxUr * 2 * V];
      float* const window = windows.data() + size_t(omp_get_thread_num()) * window_size;
      int64_t window_key = -1;
#pragma omp for schedule(static)
      for (int64_t task = 0; task < tasks; ++task) {
        // Consecutive tasks share what is costlier to fetch again: the packed weights of
        // one output block when they are large, else the input rows of one output row.
        int64_t r, ob, rest;
        if (weights_in_l2) {
          ob = task % ob_count;
          r = (task / ob_count) % rows;
          rest = task / ob_count / rows;
        } else {
          r = task % rows;
          ob = (task / rows) % ob_count;
          rest = task / rows / ob_count;
        }
        const int64_t g = rest % groups, n = rest / groups;
        const float* in_row = window;
        int64_t channel_stride = window_rows * in_cols;
        if (!source) {
          in_row = in + (n * in_channels + g * cin_g) * in_plane + r * in_row_step * in_cols;
          channel_stride = in_plane;
        } else if (const int64_t key = rest * rows + r; key != window_key) {
          copy_window(n * in_channels + g * cin_g, r * in_row_step, window);
          window_key = key;
        }
        const float* w = packed.data() + (g * ob_count + ob) * cin_g * T * B;
        const int64_t valid = std::min(B, cout_g - ob * B);
        const int64_t first_out = g * cout_g + ob * B;
        float* out_row = out + (n * out_channels + first_out) * out_plane + (row0 + r * row_step) * out_cols + col0;
        for (int64_t c0 = 0; c0 < cols; c0 += ur_max) {
          const int ur = int(std::min<int64_t>(ur_max, cols - c0));
          tap_tile_for(nb, in_col_step, ur)(in_row + c0 * in_col_step, cin_g, channel_stride, taps.data(),
                                            int(T), w, tile);
          for (int64_t o = 0; o < valid; ++o) {
            const float b = bias ? bias[first_out + o] : 0.0f;
            float* dst = out_row + o * out_plane + c0 * col_step;
            for (int j = 0; j < ur; ++j) dst[j * col_step] = tile[j * B + o] + b;
          }
        }
      }
    }
  }

  // Padded rows first_row .. first_row + window_rows - 1 of the cin_g planes from
  // `first_plane` of `source`, as cin_g x window_rows x in_cols floats.
  void copy_window(int64_t first_plane, int64_t first_row, float* dst) const {
    for (int64_t i = 0; i < cin_g; ++i)
      copy_padded_rows(source + (first_plane + i) * source_rows * source_cols, source_rows, source_cols,
                       first_row - pad_top, window_rows, pad_left, in_cols,
                       dst + i * window_rows * in_cols, in_cols, source_mode);
  }

  void run_by_rows() const {
    const int64_t T = int64_t(taps.size());
    const int no = int(cout_g), nr_max = row_tile_rows(no);
    const int64_t row_groups = ceil_div(rows, nr_max), col_vectors = ceil_div(cols, V);
    const int64_t tasks = batch * groups * row_groups;
    const int64_t in_plane = in_rows * in_cols, out_plane = out_rows * out_cols;
#pragma omp parallel for num_threads(threads_for_tasks(tasks, tasks * nr_max * cols * cin_g * T * no)) schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t rg = task % row_groups, ng = task / row_groups;
      const int64_t g = ng % groups, n = ng / groups;
      const int64_t r0 = rg * nr_max;
      const int nr = int(std::min<int64_t>(nr_max, rows - r0));
      const float* in_base = in + (n * in_channels + g * cin_g) * in_plane + r0 * in_row_step * in_cols;
      const float* w = packed.data() + g * cin_g * T * no;
      float* out_base = out + (n * out_channels + g * cout_g) * out_plane + (row0 + r0 * row_step) * out_cols + col0;
      for (int64_t cv = 0; cv < col_vectors; ++cv) {
        const int lanes = int(std::min<int64_t>(V, cols - cv * V));
        kRowTiles[no][nr](in_base + cv * V, cin_g, in_plane, taps.data(), int(T), in_row_step * in_cols, w,
                          bias ? bias + g * cout_g : nullptr, out_base + cv * V, out_plane,
                          row_step * out_cols, lanes);
      }
    }
  }
};

// Rows (or columns) of the input that the forward pass reads, from the first padded one.
int64_t read_extent(const WindowAxis& a) { return (a.out_size - 1) * a.stride + a.dilation * (a.kernel - 1) + 1; }

}  // namespace

void blocked_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                     float* y) {
  const WindowAxis &R = g.rows, &C = g.cols;
  TapConvolution job;
  job.batch = g.batch;
  job.groups = g.groups;
  job.cin_g = g.in_channels_per_group();
  job.cout_g = g.out_channels_per_group();
  job.nb = weight_vectors(job.cout_g);
  job.by_rows = C.stride == 1 && TapConvolution::rows_suit(job.cout_g, C.out_size);

  // Padding becomes real values (zeros, or the pixels a non-zero mode repeats) so that
  // the microkernel never tests bounds (and the row kernel finds slack past the last row).
  const int64_t rows_read = read_extent(R), cols_read = read_extent(C);
  job.in = x;
  job.in_rows = R.in_size;
  job.in_cols = C.in_size;
  if (job.by_rows || R.pad_before > 0 || C.pad_before > 0 || rows_read > R.in_size ||
      cols_read > C.in_size) {
    job.in_rows = rows_read;
    job.in_cols = cols_read;
    if (job.by_rows) {
      job.in = padded_planes(x, g.batch * g.in_channels, R.in_size, C.in_size, R.pad_before,
                             C.pad_before, job.in_rows, job.in_cols, g.padding_mode);
    } else {
      job.source = x;
      job.source_rows = R.in_size;
      job.source_cols = C.in_size;
      job.pad_top = R.pad_before;
      job.pad_left = C.pad_before;
      job.source_mode = g.padding_mode;
      job.window_rows = (R.kernel - 1) * R.dilation + 1;
    }
  }
  job.in_channels = g.in_channels;
  job.in_row_step = R.stride;
  job.in_col_step = C.stride;
  for (int64_t s = 0; s < R.kernel; ++s)
    for (int64_t t = 0; t < C.kernel; ++t)
      job.taps.push_back(s * R.dilation * job.in_cols + t * C.dilation);

  const int64_t cin_g = job.cin_g, cout_g = job.cout_g, K = g.kernel_plane();
  job.pack([&](int64_t grp, int64_t o, int64_t i, int64_t t) {
    return w[((grp * cout_g + o) * cin_g + i) * K + t];
  });

  job.out = y;
  job.out_channels = g.out_channels;
  job.out_rows = job.rows = R.out_size;
  job.out_cols = job.cols = C.out_size;
  job.bias = bias;
  job.run();
}

namespace {

// The taps of one axis that reach input positions r, r + stride, r + 2 * stride, ...:
// tap k reads output position a + offset for input position r + a * stride.
struct PhaseTap {
  int64_t kernel_index, offset;
};

Array<PhaseTap> phase_taps(const WindowAxis& a, int64_t phase) {
  Array<PhaseTap> taps;
  for (int64_t k = 0; k < a.kernel; ++k) {
    const int64_t shift = phase + a.pad_before - k * a.dilation;  // = offset * stride
    if (((shift % a.stride) + a.stride) % a.stride == 0)
      taps.push_back({k, (shift - ((shift % a.stride) + a.stride) % a.stride) / a.stride});
  }
  return taps;
}

// Zero margins around the output gradient so that every phase's reads are inside.
struct GradientMargins {
  int64_t before = 0, size = 0;
};

GradientMargins gradient_margins(const WindowAxis& a) {
  int64_t lowest = 0, highest = 0;
  // Phases from in_size on hold no input pixel (and a stride may be near 2**62).
  for (int64_t phase = 0; phase < std::min(a.stride, a.in_size); ++phase)
    for (const PhaseTap& tap : phase_taps(a, phase)) {
      lowest = std::min(lowest, tap.offset);
      highest = std::max(highest, tap.offset);
    }
  GradientMargins m;
  m.before = -lowest;
  m.size = m.before + std::max(a.out_size, ceil_div(a.in_size, a.stride) + highest);
  return m;
}

}  // namespace

// Input gradient as a tap convolution of the output gradient with the transposed,
// flipped kernel, once per stride phase (ry, rx): input pixels ry + a*sy, rx + b*sx
// receive exactly the taps whose offsets are whole multiples of the stride.
void blocked_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                        float* grad_x) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const GradientMargins mr = gradient_margins(R), mc = gradient_margins(C);
  // A copy only where the phases read outside the output gradient (not for 1x1 kernels).
  const bool by_rows = R.stride == 1 && C.stride == 1 &&
                       TapConvolution::rows_suit(g.in_channels_per_group(), C.in_size);
  const bool inside = !by_rows && mr.before == 0 && mc.before == 0 && mr.size == R.out_size &&
                      mc.size == C.out_size;
  const float* padded = inside ? grad_y
                               : padded_planes(grad_y, g.batch * g.out_channels, R.out_size,
                                               C.out_size, mr.before, mc.before, mr.size, mc.size,
                                               PaddingMode::zeros);
  const int64_t conv_cin_g = g.in_channels_per_group(), conv_cout_g = g.out_channels_per_group();
  const int64_t K = g.kernel_plane();
  for (int64_t ry = 0; ry < std::min(R.stride, R.in_size); ++ry) {
    for (int64_t rx = 0; rx < std::min(C.stride, C.in_size); ++rx) {
      const Array<PhaseTap> row_taps = phase_taps(R, ry), col_taps = phase_taps(C, rx);
      TapConvolution job;
      job.batch = g.batch;
      job.groups = g.groups;
      job.cin_g = conv_cout_g;
      job.cout_g = conv_cin_g;
      job.nb = weight_vectors(job.cout_g);
      job.by_rows = by_rows;
      job.in = padded;
      job.in_channels = g.out_channels;
      job.in_rows = mr.size;
      job.in_cols = mc.size;
      Array<int64_t> kernel_taps;
      for (const PhaseTap& rt : row_taps)
        for (const PhaseTap& ct : col_taps) {
          job.taps.push_back((rt.offset + mr.before) * mc.size + ct.offset + mc.before);
          kernel_taps.push_back(rt.kernel_index * C.kernel + ct.kernel_index);
        }
      if (job.taps.empty()) {
        // No window reads these pixels (dilation a multiple of the stride): their gradient
        // is exactly 0, whatever the weights and output gradient hold.
        const int64_t phase_rows = ceil_div(R.in_size - ry, R.stride);
#pragma omp parallel for num_threads(threads_for(g.batch * g.in_channels * g.in_plane())) schedule(static)
        for (int64_t plane = 0; plane < g.batch * g.in_channels; ++plane)
          for (int64_t a = 0; a < phase_rows; ++a) {
            float* row = grad_x + plane * g.in_plane() + (ry + a * R.stride) * C.in_size;
            for (int64_t b = rx; b < C.in_size; b += C.stride) row[b] = 0.0f;
          }
        continue;
      }
      job.pack([&](int64_t grp, int64_t o, int64_t i, int64_t t) {
        return w[((grp * conv_cout_g + i) * conv_cin_g + o) * K + kernel_taps[size_t(t)]];
      });
      job.out = grad_x;
      job.out_channels = g.in_channels;
      job.out_rows = R.in_size;
      job.out_cols = C.in_size;
      job.rows = ceil_div(R.in_size - ry, R.stride);
      job.cols = ceil_div(C.in_size - rx, C.stride);
      job.row0 = ry;
      job.col0 = rx;
      job.row_step = R.stride;
      job.col_step = C.stride;
      job.run();
    }
  }
}

namespace {

// ---------------------------------------------------------------------------------------
// The weight-gradient microkernel. Contract, for j < UR input channels and o < NB * V:
//   tile[j][o] += sum_{r < rows, c < cols} x[r * x_row_step + c * x_col_step + j] * gy[r * gy_row_step + c * NB * V + o]
// x is channels-last (channels contiguous), gy is pixels x (NB * V) output channels.
template <int NB, int UR>
void weight_tile(const float* x, int64_t x_row_step, int64_t x_col_step, const float* gy,
                 int64_t gy_row_step, int64_t rows, int64_t cols, float* tile) {
  vec acc[UR][NB];
  for (int j = 0; j < UR; ++j)
    for (int b = 0; b < NB; ++b) acc[j][b] = load(tile + (j * NB + b) * V);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xp = x + r * x_row_step;
    const float* gp = gy + r * gy_row_step;
    for (int64_t c = 0; c < cols; ++c, xp += x_col_step, gp += NB * V) {
      vec gv[NB];
      for (int b = 0; b < NB; ++b) gv[b] = load(gp + b * V);
      for (int j = 0; j < UR; ++j) {
        const vec xv = broadcast(xp[j]);
        for (int b = 0; b < NB; ++b) acc[j][b] += xv * gv[b];
      }
    }
  }
  for (int j = 0; j < UR; ++j)
    for (int b = 0; b < NB; ++b) store(tile + (j * NB + b) * V, acc[j][b]);
}

using WeightTileFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, int64_t,
                              int64_t, float*);

template <int NB, int... I>
constexpr std::array<WeightTileFn, sizeof...(I) + 1> weight_tiles(std::integer_sequence<int, I...>) {
  return {nullptr, &weight_tile<NB, I + 1>...};
}

const std::array<WeightTileFn, kMaxTile[1] + 1> kWeightTiles1 =
    weight_tiles<1>(std::make_integer_sequence<int, kMaxTile[1]>{});
const std::array<WeightTileFn, kMaxTile[2] + 1> kWeightTiles2 =
    weight_tiles<2>(std::make_integer_sequence<int, kMaxTile[2]>{});

// dst[p * dst_stride + i] = src[i * src_stride + p] for i < channels, p < pixels:
// planes to channels-last, in V x V blocks transposed in registers where V is 16.
void to_channels_last(const float* src, int64_t src_stride, int64_t channels, int64_t pixels,
                      float* dst, int64_t dst_stride) {
  // Channel blocks outermost: 16 planes are read front to back at a time, streams the
  // prefetcher follows (pixel blocks outermost touched every plane per block: 3x slower).
  constexpr int64_t kBlock = 16;
  for (int64_t i0 = 0; i0 < channels; i0 += kBlock) {
    const int64_t i1 = std::min(channels, i0 + kBlock);
    for (int64_t p0 = 0; p0 < pixels; p0 += kBlock) {
      const int64_t p1 = std::min(pixels, p0 + kBlock);
      if (V == kBlock && p1 - p0 == V && i1 - i0 == V) {
        vec block[V];
        for (int64_t i = 0; i < V; ++i) block[i] = load(src + (i0 + i) * src_stride + p0);
        transpose(block);
        for (int64_t p = 0; p < V; ++p) store(dst + (p0 + p) * dst_stride + i0, block[p]);
        continue;
      }
#if defined(CONVPOOL_ISA_avx512)
      if (i1 - i0 == V) {
        // A row's last pixels: masked loads read nothing past them.
        const __mmask16 first = __mmask16((1u << (p1 - p0)) - 1);
        vec block[V];
        for (int64_t i = 0; i < V; ++i)
          block[i] = _mm512_maskz_loadu_ps(first, src + (i0 + i) * src_stride + p0);
        transpose(block);
        for (int64_t p = 0; p < p1 - p0; ++p) store(dst + (p0 + p) * dst_stride + i0, block[p]);
        continue;
      }
#endif
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t p = p0; p < p1; ++p) dst[p * dst_stride + i] = src[i * src_stride + p];
    }
  }
}

// dst[p * dst_stride + i] = src[i * src_stride + p * step] for i < channels, p < pixels:
// a strided row of planes to channels-last.
void strided_to_channels_last(const float* src, int64_t src_stride, int64_t step,
                              int64_t channels, int64_t pixels, float* dst, int64_t dst_stride) {
  for (int64_t i = 0; i < channels; ++i)
    for (int64_t p = 0; p < pixels; ++p) dst[p * dst_stride + i] = src[i * src_stride + p * step];
}

// How output position o of axis `a` maps into the packed input: the packed index of its
// window's first tap is o * step; packed index q holds input pixel q * scale - a.pad_before
// (zero outside the input). A 1-wide kernel keeps only the pixels it reads.
struct PackedAxis {
  int64_t size, step, scale, tap_step;
};

PackedAxis packed_axis(const WindowAxis& a, int64_t size) {
  if (a.kernel == 1) return {size, 1, a.stride, 0};
  return {size, a.stride, 1, a.dilation};
}

// One packed input row: input row `sr` of the planes at `src` (or zeros when it is outside
// the `in_rows` rows) as `cols.size` pixels x `channels`.
void pack_input_row(const float* src, int64_t plane, int64_t channels, int64_t sr,
                    int64_t in_rows, const WindowAxis& C, const PackedAxis& cols, float* dst) {
  const int64_t width = cols.size * channels;
  if (sr < 0 || sr >= in_rows) {
    std::fill(dst, dst + width, 0.0f);
    return;
  }
  // Packed columns [lo, hi) read input column q * scale - pad_before inside the input.
  const int64_t lo = std::min(cols.size, ceil_div(C.pad_before, cols.scale));
  const int64_t hi =
      std::max(lo, std::min(cols.size, ceil_div(C.pad_before + C.in_size, cols.scale)));
  std::fill(dst, dst + lo * channels, 0.0f);
  std::fill(dst + hi * channels, dst + width, 0.0f);
  const float* first = src + sr * C.in_size + lo * cols.scale - C.pad_before;
  if (cols.scale == 1)
    to_channels_last(first, plane, channels, hi - lo, dst + lo * channels, channels);
  else
    strided_to_channels_last(first, plane, cols.scale, channels, hi - lo, dst + lo * channels,
                             channels);
}

// `tile` for j < count (count <= the largest tile for nb): the weight tile with `count`
// rows of broadcasts.
void weight_tile_rows(int nb, int count, const float* x, int64_t x_row_step, int64_t x_col_step,
                      const float* gy, int64_t gy_row_step, int64_t rows, int64_t cols,
                      float* tile) {
  const WeightTileFn fn = nb == 1 ? kWeightTiles1[size_t(count)] : kWeightTiles2[size_t(count)];
  fn(x, x_row_step, x_col_step, gy, gy_row_step, rows, cols, tile);
}

}  // namespace

// Weight gradient: pixels are the reduction axis, a GEMM grad_w = grad_y . x^T per tap
// over the batch's pixels. The gradient is cut into regions that stay in L2
// (BlockedWeightPlan); a task is one region summed over one slice of the (image, output
// row) pairs. It packs a chunk of rows at a time, just before use and into L2: the input's
// rows (channels-last, zero padded) for the region's input channels, and the output
// gradient as pixels x block for its output blocks. Every task writes a partial of its
// own; the slices' partials are added in slice order, so the bits do not depend on the
// thread count.
void blocked_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,
                         float* grad_w) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const BlockedWeightPlan plan = blocked_weight_plan(g, V);
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int nb = int(plan.block / V);
  const int64_t B = plan.block, ob_count = plan.out_blocks;
  const int64_t K = g.kernel_plane(), OH = R.out_size, OW = C.out_size, P = OH * OW;
  const PackedAxis pr = packed_axis(R, plan.packed_rows), pc = packed_axis(C, plan.packed_cols);
  const int64_t IB = plan.region_channels, OBR = plan.region_blocks;
  const BlockedWeightChunks chunks = blocked_weight_chunks(g, plan);
  const size_t x_floats = size_t(chunks.x_floats), chunk_floats = x_floats + size_t(chunks.gy_floats);
  const int64_t partial_size = g.groups * ob_count * K * cin_g * B;

  const int64_t tasks = plan.slices * plan.regions;
  const int64_t work = g.batch * P * cin_g * cout_g * K;
  const int threads = threads_for_tasks(tasks, work);
  // Every buffer, allocated here: an allocation failure inside the parallel region could
  // not be reported.
  Array<float> partials(size_t(plan.slices * partial_size));
  Array<float> buffers(size_t(threads) * chunk_floats);

  const int64_t region_obs = ceil_div(ob_count, OBR);
  const int64_t region_ibs = ceil_div(cin_g, IB);
  // With one run of input channels and undilated columns, a row of taps' channels lie
  // side by side in the packed input as in the partial: one run of kw x cin_g broadcasts.
  const bool merge_taps = region_ibs == 1 && (pc.tap_step == 1 || C.kernel == 1);
  const int ur_max = kMaxTile[nb];
  // Packed rows that are whole input rows, one after the other.
  const bool whole_rows = pr.scale == 1 && pc.scale == 1 && C.pad_before == 0 &&
                          pc.size == C.in_size;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t task = 0; task < tasks; ++task) {
    float* const xc = buffers.data() + size_t(omp_get_thread_num()) * chunk_floats;
    float* const gyc = xc + x_floats;
    const int64_t slice = task / plan.regions, region = task % plan.regions;
    const int64_t grp = region / (region_obs * region_ibs);
    const int64_t ob0 = region / region_ibs % region_obs * OBR;
    const int64_t ob1 = std::min(ob_count, ob0 + OBR);
    const int64_t i0 = region % region_ibs * IB;
    const int64_t i1 = std::min(cin_g, i0 + IB), channels = i1 - i0;
    float* const partial = partials.data() + slice * partial_size;
    // The partial's floats of (block ob, tap k, channel i): ((grp, ob, k), i, lane).
    auto at = [&](int64_t ob, int64_t k, int64_t i) {
      return partial + (((grp * ob_count + ob) * K + k) * cin_g + i) * B;
    };
    for (int64_t ob = ob0; ob < ob1; ++ob)
      for (int64_t k = 0; k < K; ++k) std::fill(at(ob, k, i0), at(ob, k, i1), 0.0f);
    // Runs of broadcasts along one tap row (merged) or one tap, split into even tiles.
    const int64_t run = merge_taps ? C.kernel * channels : channels;
    const int64_t tiles = ceil_div(run, ur_max);
    const int64_t x_pixel = channels;  // the chunk's packed pixels hold the region's channels
    int64_t begin, end;
    split_range(g.batch * OH, plan.slices, slice, &begin, &end);
    while (begin < end) {
      const int64_t n = begin / OH, oh = begin % OH;
      const int64_t rows = std::min({chunks.rows, end - begin, OH - oh});
      const int64_t x_rows = (rows - 1) * pr.step + (R.kernel - 1) * pr.tap_step + 1;
      // Pack the chunk: x as [packed row][packed col][channel of the run], grad_y as
      // [output block][pixel][B], zero beyond the group's channels.
      const float* src = x + (n * g.in_channels + grp * cin_g + i0) * g.in_plane();
      const int64_t first_row = oh * pr.step * pr.scale - R.pad_before;
      if (whole_rows && first_row >= 0 && first_row + x_rows <= R.in_size) {
        // Whole input rows, all inside: one run of each plane, the longest stream there is.
        to_channels_last(src + first_row * C.in_size, g.in_plane(), channels,
                         x_rows * C.in_size, xc, channels);
      } else {
        for (int64_t q = 0; q < x_rows; ++q)
          pack_input_row(src, g.in_plane(), channels, first_row + q * pr.scale, R.in_size, C, pc,
                         xc + q * pc.size * channels);
      }
      for (int64_t ob = ob0; ob < ob1; ++ob) {
        float* dst = gyc + (ob - ob0) * chunks.rows * OW * B;
        const int64_t valid = std::min(B, cout_g - ob * B);
        if (valid < B) std::fill(dst, dst + rows * OW * B, 0.0f);
        to_channels_last(grad_y + ((n * g.out_channels + grp * cout_g + ob * B) * OH + oh) * OW,
                         P, valid, rows * OW, dst, B);
      }
      for (int64_t r0 = 0; r0 < rows; r0 += chunks.sub_rows) {
        const int64_t sub = std::min(chunks.sub_rows, rows - r0);
        for (int64_t ob = ob0; ob < ob1; ++ob) {
          const float* gy = gyc + ((ob - ob0) * chunks.rows + r0) * OW * B;
          // One tile of (taps x channels) accumulators over the sub-chunk's pixels.
          auto tile = [&](int64_t s, int64_t t, int64_t j) {
            int64_t j0, j1;
            split_range(run, tiles, j, &j0, &j1);
            const float* x_tap = xc + (r0 * pr.step + s * pr.tap_step) * pc.size * channels +
                                 t * pc.tap_step * x_pixel + j0;
            weight_tile_rows(nb, int(j1 - j0), x_tap, pr.step * pc.size * channels,
                             pc.step * x_pixel, gy, OW * B, sub, OW,
                             at(ob, s * C.kernel + t, merge_taps ? 0 : i0) + j0 * B);
          };
          if (merge_taps) {
            for (int64_t s = 0; s < R.kernel; ++s)
              for (int64_t j = 0; j < tiles; ++j) tile(s, 0, j);
          } else {
            // Channels outermost: a tile's channels of the sub-chunk stay in L1 for every tap.
            for (int64_t j = 0; j < tiles; ++j)
              for (int64_t s = 0; s < R.kernel; ++s)
                for (int64_t t = 0; t < C.kernel; ++t) tile(s, t, j);
          }
        }
      }
      begin += rows;
    }
  }

  // Add the slices' partials into the first in slice order (in runs along memory, one
  // per task), then unpack it to (C_out, C_in/groups, kh, kw).
  float* const total = partials.data();
  if (plan.slices > 1) {
    constexpr int64_t kRun = 4096;
#pragma omp parallel for num_threads(threads_for(plan.slices * partial_size)) schedule(static)
    for (int64_t r = 0; r < ceil_div(partial_size, kRun); ++r) {
      const int64_t e0 = r * kRun, e1 = std::min(partial_size, e0 + kRun);
      for (int64_t slice = 1; slice < plan.slices; ++slice) {
        const float* part = total + slice * partial_size;
        for (int64_t e = e0; e < e1; ++e) total[e] += part[e];
      }
    }
  }
#pragma omp parallel for num_threads(threads_for(partial_size)) schedule(static)
  for (int64_t co = 0; co < g.out_channels; ++co) {
    const int64_t grp = co / cout_g, o = co % cout_g, ob = o / B, lane = o % B;
    for (int64_t i = 0; i < cin_g; ++i)
      for (int64_t k = 0; k < K; ++k)
        grad_w[(co * cin_g + i) * K + k] =
            total[(((grp * ob_count + ob) * K + k) * cin_g + i) * B + lane];
  }
}

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
