// Channel-blocked direct convolution over a batch-reduce of (input channel, kh, kw).
//
// A register tile holds NO output channels x NR vectors of output pixels. The input of one
// picture is copied once, zero padded and split into stride phases, so that every tap of
// every stride and dilation reads a contiguous run of pixels; the weights are read in
// place (a broadcast per output channel and tap), so there is nothing to pack or cache.
// Batch 1 splits (output-channel block x pixel tile) across threads; larger batches give
// each thread whole pictures.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the
// registry lines name both (registry/registry.cpp).
#include <cstdint>

#include "common/geometry.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
#include <algorithm>
#include <cmath>

#include "common/threading.h"

namespace convpool {

namespace {

// The channel-blocked engine's cases: >= 16 channels each way per group, zero padding
// (the copy below pads with zeros), and scratch (one picture's input, zero padded and
// split into stride phases, as the kernels copy it) bounded by the operands. `rows` and
// `cols` are the axes of the correlation it runs.
bool brgemm_suits(const Conv2dGeometry& g, int64_t reduce_channels, int64_t out_channels,
                  const WindowAxis& rows, int64_t out_rows, const WindowAxis& cols,
                  int64_t out_cols) {
  if (!(g.zero_padded() && reduce_channels >= 16 && out_channels >= 16 && g.batch > 0 &&
        out_rows > 0 && out_cols > 0 && g.in_plane() > 0))
    return false;
  auto phased = [](const WindowAxis& a, int64_t out) {
    const double extent =
        double(out - 1) * double(a.stride) + double(a.kernel - 1) * double(a.dilation) + 1;
    return std::ceil(extent / double(a.stride)) * double(a.stride);
  };
  // One phased picture, or one per thread when the threads take whole pictures.
  const double copies = std::min(double(g.batch) * double(g.groups), double(num_threads()));
  return scratch_within_operands(
      g, copies * double(reduce_channels) * phased(rows, out_rows) * phased(cols, out_cols) + 4096);
}

}  // namespace

// Where the forward pass beat both `blocked` and `winograd` (CPU time per call at batch 1
// and 8, docs/direct-conv.md): every dilated layer (Winograd does not take them; `blocked`
// copies 2 x dilation + 1 rows per output row), column strides above 2 (which `blocked`
// does not take), strided layers with many weights (>= 512K: 3x3 from 256 channels up,
// where Winograd's strided tiles waste most), and layers with many weights (>= 64K) and
// few output pixels (7x7 maps at batch 1, stride-2 layers up to 14x14 outputs at batch 8),
// where Winograd's per-call weight transform and blocked's 7-pixel tiles cost most.
// Elsewhere (stride 1 on larger maps, 1x1 layers) Winograd or `blocked` stays ahead.
bool brgemm_forward_supports(const Conv2dGeometry& g, int) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const double pixels = double(g.batch) * double(g.out_plane());
  const double weights = double(g.out_channels) * double(g.in_channels_per_group()) *
                         double(g.kernel_plane());
  const bool strided = R.stride > 1 || C.stride > 1;
  const bool few_pixels = weights >= 65536 && (pixels <= 64 || (strided && pixels <= 400));
  const bool wins = R.dilation > 1 || C.dilation > 1 || C.stride > 2 ||
                    (strided && weights >= 524288) || few_pixels;
  return wins && brgemm_suits(g, g.in_channels_per_group(), g.out_channels_per_group(), R,
                              R.out_size, C, C.out_size);
}

// Any stride: one correlation of the output gradient per stride phase, each reading the
// output gradient with the margins its taps need (the scratch below). Where it was
// measured faster than `blocked` and `winograd` (docs/direct-conv.md): dilated layers, and
// strided layers with many weights (>= 512K) and many output pixels (batch 8: 3x3
// 256->512 at 28x28 ahead, at batch 1 behind).
bool brgemm_grad_input_supports(const Conv2dGeometry& g, int) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const double pixels = double(g.batch) * double(g.out_plane());
  const double weights = double(g.out_channels) * double(g.in_channels_per_group()) *
                         double(g.kernel_plane());
  const bool strided = R.stride > 1 || C.stride > 1;
  const bool wins = R.dilation > 1 || C.dilation > 1 || (strided && weights >= 524288 && pixels > 400);
  if (!(wins && g.zero_padded() && g.out_channels_per_group() >= 16 && g.in_channels_per_group() >= 16 &&
        g.batch > 0 && g.in_plane() > 0 && g.out_plane() > 0))
    return false;
  auto phase_extent = [](const WindowAxis& a) {
    return std::ceil(double(a.in_size) / double(a.stride)) +
           double(a.kernel - 1) * double(a.dilation) / double(a.stride) + 2;
  };
  const double copies = std::min(double(g.batch) * double(g.groups), double(num_threads()));
  return scratch_within_operands(g, copies * double(g.out_channels_per_group()) *
                                            phase_extent(g.rows) * phase_extent(g.cols) + 4096);
}

// The weight gradient: the forward's phased input and the output gradient laid out on the
// same pixel grid, the whole batch at once (the scratch below). Measured slower than
// `blocked` (0.6-0.75x, docs/direct-conv.md), so it comes after it.
bool brgemm_grad_weight_supports(const Conv2dGeometry& g, int) {
  const WindowAxis &R = g.rows, &C = g.cols;
  if (!(g.zero_padded() && g.in_channels_per_group() >= 16 &&
        g.out_channels_per_group() >= 16 && g.batch > 0 && g.out_plane() > 0 && g.in_plane() > 0))
    return false;
  // The whole batch of one group: its phased input and its output gradient on that grid.
  auto phased = [](const WindowAxis& a) {
    const double extent =
        double(a.out_size - 1) * double(a.stride) + double(a.kernel - 1) * double(a.dilation) + 1;
    return std::ceil(extent / double(a.stride)) * double(a.stride);
  };
  const double grid = double(R.out_size) * (phased(C) / double(C.stride) + 1) + 64;
  return scratch_within_operands(
      g, double(g.batch) * (double(g.in_channels_per_group()) * phased(R) * phased(C) +
                            double(g.out_channels_per_group()) * grid) + 4096);
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

// The register tile: kNO output channels x kNR vectors of pixels, plus kNR input vectors
// and one broadcast weight, within the register file. Each step of the reduction loads
// kNR + kNO values for kNR x kNO FMAs.
#if defined(CONVPOOL_ISA_avx512)
constexpr int kNO = 6, kNR = 4;
#else
constexpr int kNO = 6, kNR = 2;
#endif
constexpr int kTileFloats = kNO * kNR * V;

// Cache budgets (Correlation::run). L2: the input of a band of pixel tiles, and the
// weights of a group of output-channel blocks, both read many times while a thread works
// through the band. L1: one tile's input for a chunk of input channels, read once per
// output-channel block of the group before the next chunk replaces it.
constexpr double kBandBytes = 512 * 1024;
constexpr double kGroupBytes = 1024 * 1024;
constexpr double kChunkBytes = 16 * 1024;
constexpr int64_t kMaxGroupBlocks = 16;

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// One vector of output pixels. Its lanes read consecutive virtual pixels of the phased
// input from `in`; lane l goes to output offset `out + l` for l < lanes, or, when lanes is
// 0, to lane_table[table + l] (-1: not an output pixel).
struct Slot {
  int64_t in = 0, out = 0, table = 0;
  int lanes = 0;
};

// The batch-reduce microkernel over one chunk of input channels. Contract, for o < NO,
// r < NR and lanes l < V, with acc[o][r] the V floats at partial + (o * kNR + r) * V
// (taken as 0 when `first`):
//   acc[o][r][l] += sum_{c < channels, u < ntaps}
//       wp[(c * ntaps + u) * kNO + o] * in[c * channel_stride + taps[u] + slot_in[r] + l]
// The partial sums live in registers for the whole chunk and in `partial` (L1) between
// chunks, so that the chunk's input is reused by every output-channel block of a group.
// The weights are packed (Correlation::pack): one contiguous run per chunk, the kNO
// weights of one step side by side. With `ahead` set, each step also prefetches what the
// same step of the next chunk (`ahead` floats on) reads: the first block of a group
// fetches the tile's input, later blocks find it in L1.
template <int NO, int NR>
void brgemm_tile(const float* in, int64_t channels, int64_t channel_stride, const int64_t* taps,
                 int ntaps, const float* wp, const int64_t* slot_in, int64_t ahead, bool first,
                 float* partial) {
  vec acc[NO][NR];
  for (int o = 0; o < NO; ++o)
    for (int r = 0; r < NR; ++r) acc[o][r] = first ? vec{} : load(partial + (o * kNR + r) * V);
  const float* src[NR];
  for (int r = 0; r < NR; ++r) src[r] = in + slot_in[r];
  for (int64_t c = 0; c < channels; ++c) {
    for (int u = 0; u < ntaps; ++u, wp += kNO) {
      const int64_t at = taps[u];
      vec xv[NR];
      for (int r = 0; r < NR; ++r) xv[r] = load(src[r] + at);
      if (ahead)
        for (int r = 0; r < NR; ++r) __builtin_prefetch(src[r] + at + ahead);
      for (int o = 0; o < NO; ++o) {
        const vec wv = broadcast(wp[o]);
        for (int r = 0; r < NR; ++r) acc[o][r] += wv * xv[r];
      }
    }
    for (int r = 0; r < NR; ++r) src[r] += channel_stride;
  }
  for (int o = 0; o < NO; ++o)
    for (int r = 0; r < NR; ++r) store(partial + (o * kNR + r) * V, acc[o][r]);
}

using TileFn = void (*)(const float*, int64_t, int64_t, const int64_t*, int, const float*,
                        const int64_t*, int64_t, bool, float*);

template <int NO, int... R>
constexpr std::array<TileFn, kNR + 1> tiles_for(std::integer_sequence<int, R...>) {
  return {nullptr, &brgemm_tile<NO, R + 1>...};
}

template <int... O>
constexpr std::array<std::array<TileFn, kNR + 1>, kNO + 1> tile_table(std::integer_sequence<int, O...>) {
  return {std::array<TileFn, kNR + 1>{}, tiles_for<O + 1>(std::make_integer_sequence<int, kNR>{})...};
}

// kTiles[no][nr] for the tails of output channels and pixels.
const std::array<std::array<TileFn, kNR + 1>, kNO + 1> kTiles =
    tile_table(std::make_integer_sequence<int, kNO>{});

// One tap of a correlation: it reads the (zero-padded) source at (row, col) from each
// output pixel's origin and multiplies weight plane entry k.
struct Tap {
  int64_t row = 0, col = 0, k = 0;
};

// A correlation, per image n, group g, output channel o < cout_g and pixel (a, b) with
// a < out_rows, b < out_cols:
//   out[n, g*cout_g + o, row0 + a*row_step, col0 + b*col_step] = bias[g*cout_g + o] + sum_{c < cin_g, tap}
//       w[g*w_group_stride + o*w_out_stride + c*w_channel_stride + tap.k]
//       * src[n, g*cin_g + c, a*sr + tap.row - pad_top, b*sc + tap.col - pad_left]
// where out planes are plane_rows x plane_cols and src pixels outside the source read as
// zero (pad_top and pad_left may be negative: a crop). Tap rows and columns are >= 0.
struct Correlation {
  int64_t batch = 0, groups = 1, cin_g = 0, cout_g = 0;
  const float* src = nullptr;
  int64_t src_channels = 0, src_rows = 0, src_cols = 0, pad_top = 0, pad_left = 0;
  int64_t sr = 1, sc = 1;
  Array<Tap> taps;
  const float* w = nullptr;
  int64_t w_group_stride = 0, w_out_stride = 0, w_channel_stride = 0;
  const float* bias = nullptr;
  float* out = nullptr;
  int64_t out_channels = 0, out_rows = 0, out_cols = 0;
  int64_t plane_rows = 0, plane_cols = 0, row0 = 0, col0 = 0, row_step = 1, col_step = 1;

  int64_t reach_rows() const {
    int64_t m = 0;
    for (const Tap& t : taps) m = std::max(m, t.row);
    return m;
  }
  int64_t reach_cols() const {
    int64_t m = 0;
    for (const Tap& t : taps) m = std::max(m, t.col);
    return m;
  }
  // The phased input of one channel: sr x sc planes of hq x wq pixels, plane (pr, pc)
  // holding the padded input's pixels (a*sr + pr, b*sc + pc). Every tap then reads
  // consecutive pixels of one plane whatever the stride and dilation.
  int64_t hq() const { return ceil_div((out_rows - 1) * sr + reach_rows() + 1, sr); }
  int64_t wq() const { return ceil_div((out_cols - 1) * sc + reach_cols() + 1, sc); }
  int64_t out_offset(int64_t a, int64_t b) const {
    return (row0 + a * row_step) * plane_cols + col0 + b * col_step;
  }

  void copy_phased(const float* plane, float* dst, int64_t Hq, int64_t Wq) const {
    for (int64_t pr = 0; pr < sr; ++pr)
      for (int64_t pc = 0; pc < sc; ++pc) {
        // Columns b with 0 <= b*sc + pc - pad_left < src_cols come from the input.
        const int64_t b0 = std::clamp<int64_t>(-floor_div(pc - pad_left, sc), 0, Wq);
        const int64_t b1 = std::clamp<int64_t>(-floor_div(pc - pad_left - src_cols, sc), b0, Wq);
        float* d = dst + (pr * sc + pc) * Hq * Wq;
        for (int64_t a = 0; a < Hq; ++a, d += Wq) {
          const int64_t row = a * sr + pr - pad_top;
          if (row < 0 || row >= src_rows) {
            std::fill(d, d + Wq, 0.0f);
            continue;
          }
          std::fill(d, d + b0, 0.0f);
          const float* s = plane + row * src_cols + b0 * sc + pc - pad_left;
          if (sc == 1) {
            std::copy(s, s + (b1 - b0), d + b0);
          } else {
            for (int64_t b = b0; b < b1; ++b, s += sc) d[b] = *s;
          }
          std::fill(d + b1, d + Wq, 0.0f);
        }
      }
  }

  // Vectors of pixels: along each output row (no lane reads a column past the row), or,
  // when rows are short, along the phased planes' rows, which wrap through the
  // (wq - out_cols) columns that hold no output pixel: fewer vectors for 7x7 maps.
  void make_slots(int64_t Wq, Array<Slot>& slots, Array<int64_t>& lane_table) const {
    const int64_t row_vectors = out_rows * ceil_div(out_cols, V);
    const int64_t flat_pixels = (out_rows - 1) * Wq + out_cols;
    const bool flat = ceil_div(flat_pixels, V) < row_vectors;
    auto lanes_through_table = [&](Slot& s, auto output_of) {
      s.lanes = 0;
      s.table = int64_t(lane_table.size());
      for (int64_t l = 0; l < V; ++l) lane_table.push_back(output_of(l));
    };
    if (!flat) {
      for (int64_t oh = 0; oh < out_rows; ++oh)
        for (int64_t c0 = 0; c0 < out_cols; c0 += V) {
          Slot s;
          s.in = oh * Wq + c0;
          const int64_t n = std::min<int64_t>(V, out_cols - c0);
          if (col_step == 1) {
            s.out = out_offset(oh, c0);
            s.lanes = int(n);
          } else {
            lanes_through_table(s, [&](int64_t l) { return l < n ? out_offset(oh, c0 + l) : -1; });
          }
          slots.push_back(s);
        }
      return;
    }
    for (int64_t p0 = 0; p0 < flat_pixels; p0 += V) {
      Slot s;
      s.in = p0;
      const int64_t oh = p0 / Wq, ow = p0 % Wq;
      if (ow + V <= out_cols && col_step == 1) {
        s.out = out_offset(oh, ow);
        s.lanes = V;
      } else {
        lanes_through_table(s, [&](int64_t l) {
          const int64_t p = p0 + l, h = p / Wq, c = p % Wq;
          return h < out_rows && c < out_cols ? out_offset(h, c) : int64_t(-1);
        });
      }
      slots.push_back(s);
    }
  }

  // Block `block` (group-major) of the weights as the microkernel reads them:
  // dst[(c * ntaps + u) * kNO + o], zero for output channels past the group's.
  void pack(int64_t block, int64_t ob_count, float* dst) const {
    const int64_t grp = block / ob_count, first_o = (block % ob_count) * kNO;
    const int no = int(std::min<int64_t>(kNO, cout_g - first_o));
    const float* wg = w + grp * w_group_stride + first_o * w_out_stride;
    const int64_t K = int64_t(taps.size());
    for (int64_t c = 0; c < cin_g; ++c)
      for (int64_t u = 0; u < K; ++u, dst += kNO) {
        const float* wc = wg + c * w_channel_stride + taps[size_t(u)].k;
        for (int o = 0; o < kNO; ++o) dst[o] = o < no ? wc[o * w_out_stride] : 0.0f;
      }
  }

  void run() const {
    const int64_t Hq = hq(), Wq = wq(), phase_plane = Hq * Wq;
    const int64_t channel_stride = sr * sc * phase_plane;
    const int64_t K = int64_t(taps.size());
    const int64_t out_plane = plane_rows * plane_cols;

    Array<int64_t> tap_at(static_cast<size_t>(K));
    int64_t max_tap = 0;
    for (int64_t u = 0; u < K; ++u) {
      const Tap& t = taps[size_t(u)];
      const int64_t at = ((t.row % sr) * sc + t.col % sc) * phase_plane + (t.row / sr) * Wq + t.col / sc;
      tap_at[size_t(u)] = at;
      max_tap = std::max(max_tap, at);
    }

    Array<Slot> slots;
    Array<int64_t> lane_table;
    make_slots(Wq, slots, lane_table);
    const int64_t nslots = int64_t(slots.size()), ntiles = ceil_div(nslots, kNR);
    const int64_t ob_count = ceil_div(cout_g, kNO);

    // Two-level blocking. Bands of pixel tiles whose input stays in L2, and groups of
    // output-channel blocks whose weights stay in L2: a unit of work is one tile and one
    // group. Within a unit, the input channels come in chunks whose tile input stays in
    // L1 while every block of the group reads it, the partial sums parked in L1 between
    // chunks. Units run band by band, group by group: consecutive units of a thread share
    // the group's weights and the band's input.
    const double input_bytes = double(cin_g) * double(channel_stride) * sizeof(float);
    const int64_t band_tiles = std::clamp<int64_t>(
        int64_t(double(ntiles) * kBandBytes / std::max(input_bytes, 1.0)), 1, ntiles);
    const double block_weight_bytes = double(kNO) * double(cin_g) * double(K) * sizeof(float);
    const int64_t group_blocks = std::clamp<int64_t>(
        int64_t(kGroupBytes / std::max(block_weight_bytes, 1.0)), 1, std::min(kMaxGroupBlocks, ob_count));
    const int64_t group_count = ceil_div(ob_count, group_blocks);
    const int64_t chunk = std::clamp<int64_t>(
        int64_t(kChunkBytes / (double(K) * kNR * V * sizeof(float))), 1, cin_g);
    const int64_t units = group_count * ntiles;

    // Reads reach max_tap + the last vector's end past a channel's start; the last
    // channel's overhang is zeroed slack.
    const int64_t reach = max_tap + slots[size_t(nslots - 1)].in + V;
    const int64_t slack = std::max<int64_t>(0, reach - channel_stride);
    const size_t buffer_size = size_t(cin_g * channel_stride + slack);
    // Packed once per call, for every picture of the batch: [group][block][c][tap][kNO].
    const int64_t block_floats = cin_g * K * kNO;
    float* packed = workspace(WorkspaceSlot::transformed_weights, size_t(groups * ob_count * block_floats));

    const int64_t pictures = batch * groups;
    const int team = threads_for_tasks(std::max(units, pictures),
                                       batch * groups * cout_g * out_rows * out_cols * cin_g * K);
    // With pictures for every thread, each thread runs whole (picture, group) pairs on a
    // phased copy of its own: no barrier per picture. Split across threads, each picture
    // costs two barriers, and a barrier costs a time slice whenever another process holds
    // the other core (batch 8, 2 threads on the loaded machine: 0.5x PyTorch forward and
    // 0.26x input gradient, whose stride phases make four times the barriers).
    const bool whole_pictures = team > 1 && (pictures % team == 0 || pictures >= 4 * team);
    const int buffers = whole_pictures ? team : 1;
    float* buffer = workspace(WorkspaceSlot::padded_input, size_t(buffers) * buffer_size);
    for (int b = 0; b < buffers; ++b)
      std::fill(buffer + b * buffer_size + cin_g * channel_stride, buffer + (b + 1) * buffer_size, 0.0f);
    // Every thread's partial sums, allocated here: an allocation failure inside the
    // parallel region could not be reported.
    const size_t partial_size = size_t(group_blocks * kTileFloats);
    Array<float> partials(size_t(team) * partial_size);

    // One unit of work (one pixel tile, one group of output-channel blocks) of picture n,
    // group grp, whose phased input is `phased`.
    auto run_unit = [&](int64_t n, int64_t grp, int64_t unit, const float* phased, float* partial) {
      const int64_t band = unit / (group_count * band_tiles), rest = unit % (group_count * band_tiles);
      const int64_t tiles_here = std::min(band_tiles, ntiles - band * band_tiles);
      const int64_t group = rest / tiles_here, tile = band * band_tiles + rest % tiles_here;
      const int64_t first_ob = group * group_blocks;
      const int64_t last_ob = std::min(ob_count, first_ob + group_blocks);
      const int64_t first_slot = tile * kNR;
      const int nr = int(std::min<int64_t>(kNR, nslots - first_slot));
      int64_t slot_in[kNR];
      for (int r = 0; r < nr; ++r) slot_in[r] = slots[size_t(first_slot + r)].in;
      const float* w_group = packed + grp * ob_count * block_floats;
      for (int64_t c0 = 0; c0 < cin_g; c0 += chunk) {
        const int64_t channels = std::min(chunk, cin_g - c0);
        const int64_t ahead = c0 + chunk < cin_g ? chunk * channel_stride : 0;
        for (int64_t ob = first_ob; ob < last_ob; ++ob) {
          const int no = int(std::min<int64_t>(kNO, cout_g - ob * kNO));
          kTiles[no][nr](phased + c0 * channel_stride, channels, channel_stride, tap_at.data(),
                         int(K), w_group + ob * block_floats + c0 * K * kNO, slot_in,
                         ob == first_ob ? ahead : 0, c0 == 0,
                         partial + (ob - first_ob) * kTileFloats);
        }
      }
      for (int64_t ob = first_ob; ob < last_ob; ++ob) {
        const int no = int(std::min<int64_t>(kNO, cout_g - ob * kNO));
        const int64_t first_out = grp * cout_g + ob * kNO;
        const float* sums = partial + (ob - first_ob) * kTileFloats;
        float* block = out + (n * out_channels + first_out) * out_plane;
        for (int o = 0; o < no; ++o) {
          const vec b = broadcast(bias ? bias[first_out + o] : 0.0f);
          float* dst = block + o * out_plane;
          for (int r = 0; r < nr; ++r) {
            const Slot& s = slots[size_t(first_slot + r)];
            const vec sum = load(sums + (o * kNR + r) * V);
            const vec v = bias ? sum + b : sum;
            if (s.lanes == V) {
              store(dst + s.out, v);
            } else if (s.lanes > 0) {
              store_first(dst + s.out, v, s.lanes);
            } else {
              for (int l = 0; l < V; ++l) {
                const int64_t at = lane_table[size_t(s.table + l)];
                if (at >= 0) dst[at] = v[l];
              }
            }
          }
        }
      }
    };
    auto copy_picture = [&](int64_t n, int64_t grp, int64_t c, float* phased) {
      copy_phased(src + (n * src_channels + grp * cin_g + c) * src_rows * src_cols,
                  phased + c * channel_stride, Hq, Wq);
    };

#pragma omp parallel num_threads(team)
    {
      const int tid = omp_get_thread_num();
      float* const partial = partials.data() + size_t(tid) * partial_size;
#pragma omp for schedule(static)
      for (int64_t block = 0; block < groups * ob_count; ++block) pack(block, ob_count, packed + block * block_floats);
      if (whole_pictures) {
        float* const phased = buffer + size_t(tid) * buffer_size;
#pragma omp for schedule(static)
        for (int64_t picture = 0; picture < pictures; ++picture) {
          const int64_t n = picture / groups, grp = picture % groups;
          for (int64_t c = 0; c < cin_g; ++c) copy_picture(n, grp, c, phased);
          for (int64_t unit = 0; unit < units; ++unit) run_unit(n, grp, unit, phased, partial);
        }
      } else {
        for (int64_t n = 0; n < batch; ++n)
          for (int64_t grp = 0; grp < groups; ++grp) {
#pragma omp for schedule(static)
            for (int64_t c = 0; c < cin_g; ++c) copy_picture(n, grp, c, buffer);
#pragma omp for schedule(static)
            for (int64_t unit = 0; unit < units; ++unit) run_unit(n, grp, unit, buffer, partial);
          }
      }
    }
  }
};

// ---------------------------------------------------------------------------------------
// The weight gradient: the pixels are the reduction. The output gradient of one picture
// is copied onto the pixel grid of the phased input (pixel (a, b) at a * wq + b, zero in
// the columns that hold no output pixel), so that every (input channel, tap) pair reads
// one contiguous run of the phased input against one contiguous run of the output
// gradient, the same runs the forward's vectors read.
#if defined(CONVPOOL_ISA_avx512)
constexpr int kWO = 6, kWJ = 4;
#else
constexpr int kWO = 3, kWJ = 3;
#endif

// Contract, for o < NO and j < NJ: sums[o * kWJ + j] = sum_{n < pictures, p < steps * V}
//     gy[n * gy_picture + o * gy_stride + p] * x[j][n * x_picture + p]
// The sums run over every picture in registers: one horizontal sum per weight and call.
template <int NO, int NJ>
void weight_tile(const float* gy, int64_t gy_stride, int64_t gy_picture, const float* const* x,
                 int64_t x_picture, int64_t pictures, int64_t steps, float* sums) {
  vec acc[NO][NJ];
  for (int o = 0; o < NO; ++o)
    for (int j = 0; j < NJ; ++j) acc[o][j] = vec{};
  for (int64_t n = 0; n < pictures; ++n) {
    const float* src[NJ];
    for (int j = 0; j < NJ; ++j) src[j] = x[j] + n * x_picture;
    const float* g = gy + n * gy_picture;
    for (int64_t p = 0; p < steps * V; p += V) {
      vec xv[NJ];
      for (int j = 0; j < NJ; ++j) xv[j] = load(src[j] + p);
      for (int o = 0; o < NO; ++o) {
        const vec gv = load(g + o * gy_stride + p);
        for (int j = 0; j < NJ; ++j) acc[o][j] += gv * xv[j];
      }
    }
  }
  for (int o = 0; o < NO; ++o)
    for (int j = 0; j < NJ; ++j) sums[o * kWJ + j] = horizontal_sum(acc[o][j]);
}

using WeightTileFn = void (*)(const float*, int64_t, int64_t, const float* const*, int64_t,
                                    int64_t, int64_t, float*);

template <int NO, int... J>
constexpr std::array<WeightTileFn, kWJ + 1> weight_tiles_for(std::integer_sequence<int, J...>) {
  return {nullptr, &weight_tile<NO, J + 1>...};
}

template <int... O>
constexpr std::array<std::array<WeightTileFn, kWJ + 1>, kWO + 1> weight_tile_table(std::integer_sequence<int, O...>) {
  return {std::array<WeightTileFn, kWJ + 1>{}, weight_tiles_for<O + 1>(std::make_integer_sequence<int, kWJ>{})...};
}

// kWeightTiles[no][nj] for the tails of output channels and (input channel, tap) pairs.
const std::array<std::array<WeightTileFn, kWJ + 1>, kWO + 1> kWeightTiles =
    weight_tile_table(std::make_integer_sequence<int, kWO>{});

// Input channels whose phased input of one picture stays in L2 while every output-channel
// block of a thread passes over it.
constexpr double kWeightGroupBytes = 512 * 1024;

// grad_w[g*cout_g + o, c, tap.k] = sum_{n, a, b} grad_y[n, g*cout_g + o, a, b] * (the input `job`
// reads for output pixel (a, b) through tap, channel c): `job` is the forward correlation.
// The whole batch of a group is copied first (scratch the size of the operands), so that
// every weight is one sum over all pictures, held in registers. Each weight belongs to
// one (output-channel block, input-channel group) unit, each unit to one thread:
// deterministic, and no scratch per thread.
void accumulate_weight_gradient(const Correlation& job, const float* grad_y, float* grad_w) {
  const int64_t Hq = job.hq(), Wq = job.wq(), phase_plane = Hq * Wq;
  const int64_t channel_stride = job.sr * job.sc * phase_plane;
  const int64_t K = int64_t(job.taps.size()), cin_g = job.cin_g, cout_g = job.cout_g;
  const int64_t rows = job.out_rows, cols = job.out_cols, out_plane = rows * cols;
  const int64_t batch = job.batch;
  Array<int64_t> tap_at(static_cast<size_t>(K));
  int64_t max_tap = 0;
  for (int64_t u = 0; u < K; ++u) {
    const Tap& t = job.taps[size_t(u)];
    tap_at[size_t(u)] = ((t.row % job.sr) * job.sc + t.col % job.sc) * phase_plane +
                        (t.row / job.sr) * Wq + t.col / job.sc;
    max_tap = std::max(max_tap, tap_at[size_t(u)]);
  }
  // Pixel (a, b) at a * Wq + b; the runs end at a whole vector, zero past the last pixel.
  const int64_t run = ceil_div((rows - 1) * Wq + cols, V) * V, steps = run / V;
  const int64_t slack = std::max<int64_t>(0, max_tap + run - channel_stride);
  const int64_t x_picture = cin_g * channel_stride, gy_picture = cout_g * run;
  const size_t x_size = size_t(batch * x_picture + slack);
  float* x_phased = workspace(WorkspaceSlot::padded_input, x_size + size_t(batch * gy_picture));
  float* gy_grid = x_phased + x_size;
  std::fill(x_phased + batch * x_picture, x_phased + x_size, 0.0f);

  const int64_t ob_count = ceil_div(cout_g, kWO), pairs = cin_g * K;
  const double channel_bytes = double(batch) * double(channel_stride) * sizeof(float);
  const int64_t group_channels =
      std::clamp<int64_t>(int64_t(kWeightGroupBytes / std::max(channel_bytes, 1.0)), 1, cin_g);
  const int64_t channel_groups = ceil_div(cin_g, group_channels);
  const int64_t units = channel_groups * ob_count;
  const int team = threads_for_tasks(units, batch * job.groups * cout_g * out_plane * pairs);
#pragma omp parallel num_threads(team)
  for (int64_t grp = 0; grp < job.groups; ++grp) {
#pragma omp for schedule(static)
    for (int64_t plane = 0; plane < batch * (cin_g + cout_g); ++plane) {
      const int64_t n = plane / (cin_g + cout_g), c = plane % (cin_g + cout_g);
      if (c < cin_g) {
        job.copy_phased(job.src + (n * job.src_channels + grp * cin_g + c) * job.src_rows * job.src_cols,
                        x_phased + n * x_picture + c * channel_stride, Hq, Wq);
        continue;
      }
      const float* g_plane = grad_y + (n * job.out_channels + grp * cout_g + c - cin_g) * out_plane;
      float* d = gy_grid + n * gy_picture + (c - cin_g) * run;
      std::fill(d, d + run, 0.0f);
      for (int64_t a = 0; a < rows; ++a) std::copy(g_plane + a * cols, g_plane + (a + 1) * cols, d + a * Wq);
    }
    // Units run group by group: consecutive units of a thread share the group's input.
#pragma omp for schedule(static)
    for (int64_t unit = 0; unit < units; ++unit) {
      const int64_t cg = unit / ob_count, ob = unit % ob_count;
      const int64_t first_o = ob * kWO, no = std::min<int64_t>(kWO, cout_g - first_o);
      const int64_t first_pair = cg * group_channels * K;
      const int64_t last_pair = std::min(cin_g, (cg + 1) * group_channels) * K;
      float* gw = grad_w + (grp * cout_g + first_o) * pairs;
      for (int64_t j0 = first_pair; j0 < last_pair; j0 += kWJ) {
        const int nj = int(std::min<int64_t>(kWJ, last_pair - j0));
        const float* xs[kWJ];
        for (int j = 0; j < nj; ++j) {
          const int64_t pair = j0 + j, c = pair / K, u = pair % K;
          xs[j] = x_phased + c * channel_stride + tap_at[size_t(u)];
        }
        float sums[kWO * kWJ];
        kWeightTiles[no][nj](gy_grid + first_o * run, run, gy_picture, xs, x_picture, batch, steps,
                             sums);
        for (int64_t o = 0; o < no; ++o)
          for (int j = 0; j < nj; ++j) {
            const int64_t pair = j0 + j;
            gw[o * pairs + (pair / K) * K + job.taps[size_t(pair % K)].k] = sums[o * kWJ + j];
          }
      }
    }
  }
}

}  // namespace

void brgemm_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                    float* y) {
  const WindowAxis &R = g.rows, &C = g.cols;
  Correlation job;
  job.batch = g.batch;
  job.groups = g.groups;
  job.cin_g = g.in_channels_per_group();
  job.cout_g = g.out_channels_per_group();
  job.src = x;
  job.src_channels = g.in_channels;
  job.src_rows = R.in_size;
  job.src_cols = C.in_size;
  job.pad_top = R.pad_before;
  job.pad_left = C.pad_before;
  job.sr = R.stride;
  job.sc = C.stride;
  for (int64_t i = 0; i < R.kernel; ++i)
    for (int64_t j = 0; j < C.kernel; ++j) job.taps.push_back({i * R.dilation, j * C.dilation, i * C.kernel + j});
  const int64_t K = g.kernel_plane();
  job.w = w;
  job.w_group_stride = job.cout_g * job.cin_g * K;
  job.w_out_stride = job.cin_g * K;
  job.w_channel_stride = K;
  job.bias = bias;
  job.out = y;
  job.out_channels = g.out_channels;
  job.out_rows = job.plane_rows = R.out_size;
  job.out_cols = job.plane_cols = C.out_size;
  job.run();
}

// The weight gradient over the forward correlation's phased input (accumulate_weight_gradient).
void brgemm_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y, float* grad_w) {
  const WindowAxis &R = g.rows, &C = g.cols;
  Correlation job;
  job.batch = g.batch;
  job.groups = g.groups;
  job.cin_g = g.in_channels_per_group();
  job.cout_g = g.out_channels_per_group();
  job.src = x;
  job.src_channels = g.in_channels;
  job.src_rows = R.in_size;
  job.src_cols = C.in_size;
  job.pad_top = R.pad_before;
  job.pad_left = C.pad_before;
  job.sr = R.stride;
  job.sc = C.stride;
  for (int64_t i = 0; i < R.kernel; ++i)
    for (int64_t j = 0; j < C.kernel; ++j) job.taps.push_back({i * R.dilation, j * C.dilation, i * C.kernel + j});
  job.out_channels = g.out_channels;
  job.out_rows = job.plane_rows = R.out_size;
  job.out_cols = job.plane_cols = C.out_size;
  accumulate_weight_gradient(job, grad_y, grad_w);
}

// The input gradient, one correlation of the output gradient per stride phase (ry, rx):
// input pixels (ry + a*sy, rx + b*sx) receive exactly the taps whose offsets are whole
// multiples of the stride (conv/stride_phases.h), each reading the output gradient at a
// fixed offset from (a, b), with input and output channels swapped. Phases no tap reaches
// (a dilation that is a multiple of the stride) are exactly zero.
void brgemm_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
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
      Correlation job;
      job.batch = g.batch;
      job.groups = g.groups;
      job.cin_g = g.out_channels_per_group();
      job.cout_g = g.in_channels_per_group();
      job.src = grad_y;
      job.src_channels = g.out_channels;
      job.src_rows = R.out_size;
      job.src_cols = C.out_size;
      // Output-gradient pixel (a + offset) is padded pixel (a + offset - lowest).
      job.pad_top = -lowest_row;
      job.pad_left = -lowest_col;
      for (const PhaseTap& rt : row_taps)
        for (const PhaseTap& ct : col_taps)
          job.taps.push_back({rt.offset - lowest_row, ct.offset - lowest_col,
                              rt.kernel_index * C.kernel + ct.kernel_index});
      job.w = w;
      job.w_group_stride = job.cout_g * job.cin_g * K;
      job.w_out_stride = K;
      job.w_channel_stride = job.cout_g * K;
      job.out = grad_x;
      job.out_channels = g.in_channels;
      job.out_rows = rows;
      job.out_cols = cols;
      job.plane_rows = R.in_size;
      job.plane_cols = C.in_size;
      job.row0 = ry;
      job.col0 = rx;
      job.row_step = R.stride;
      job.col_step = C.stride;
      job.run();
    }
}

}  // namespace convpool::CONVPOOL_ISA

#endif  // CONVPOOL_PREDICATES_ONLY
