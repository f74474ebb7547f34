// Channel-blocked direct convolution over a batch-reduce of (input channel, kh, kw).
//
// A register tile holds NO output channels x NR vectors of output pixels. The input of one
// picture is copied once, zero padded and split into stride phases, so that every tap of
// every stride and dilation reads a contiguous run of pixels; the weights are read in
// place (a broadcast per output channel and tap), so there is nothing to pack or cache.
// Batch 1 splits (output-channel block x pixel tile) across threads.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the
// registry lines name both (registry/registry.cpp).
#include <cstdint>

#include "common/geometry.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
#include <cmath>

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
  return scratch_within_operands(
      g, double(reduce_channels) * phased(rows, out_rows) * phased(cols, out_cols) + 4096);
}

}  // namespace

// Where the forward pass beat both `blocked` and `winograd` (CPU time per call at batch 1
// and 8, docs/direct-conv.md): dilations above 2 (Winograd does not take dilated layers;
// `blocked` copies 2 x dilation + 1 rows per output row and was still ahead at 2), column
// strides above 2 (which `blocked` does not take), and layers with many weights (>= 64K)
// and few output pixels (7x7 maps at batch 1, stride-2 layers up to 14x14 outputs at
// batch 8), where Winograd's per-call weight transform and blocked's 7-pixel tiles cost
// most. Elsewhere (stride 1 on larger maps) Winograd or `blocked` stays ahead.
bool brgemm_forward_supports(const Conv2dGeometry& g, int) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const double pixels = double(g.batch) * double(g.out_plane());
  const double weights = double(g.out_channels) * double(g.in_channels_per_group()) *
                         double(g.kernel_plane());
  const bool few_pixels = weights >= 65536 &&
                          (pixels <= 64 || ((R.stride > 1 || C.stride > 1) && pixels <= 400));
  const bool wins = R.dilation > 2 || C.dilation > 2 || C.stride > 2 || few_pixels;
  return wins && brgemm_suits(g, g.in_channels_per_group(), g.out_channels_per_group(), R,
                              R.out_size, C, C.out_size);
}

// Stride 1 only: the input gradient is one correlation of the output gradient. Measured
// no faster than `blocked` and `winograd` (docs/direct-conv.md), so it comes after them.
bool brgemm_grad_input_supports(const Conv2dGeometry& g, int) {
  return g.rows.stride == 1 && g.cols.stride == 1 &&
         brgemm_suits(g, g.out_channels_per_group(), g.in_channels_per_group(), g.rows,
                      g.rows.in_size, g.cols, g.cols.in_size);
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

// The register tile: kNO output channels x kNR vectors of pixels, plus kNR input vectors
// and one broadcast weight, within the register file. Each step of the reduction loads
// kNR + kNO values for kNR x kNO FMAs.
#if defined(CONVPOOL_ISA_avx512)
constexpr int kNO = 6, kNR = 4;
#else
constexpr int kNO = 6, kNR = 2;
#endif

// Input bytes of one band of pixel tiles (see Correlation::run): half of a core's L2.
constexpr double kBandBytes = 1 << 20;

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// One vector of output pixels. Its lanes read consecutive virtual pixels of the phased
// input from `in`; lane l goes to output offset `out + l` for l < lanes, or, when lanes is
// 0 (a vector spanning output rows), to lane_table[table + l] (-1: not an output pixel).
struct Slot {
  int64_t in = 0, out = 0, table = 0;
  int lanes = 0;
};

// The batch-reduce microkernel. Contract, for o < NO, r < NR and lanes l < V:
//   result[o * NR + r][l] = sum_{c < channels, u < ntaps}
//       w[o * w_out_stride + c * w_channel_stride + u] * in[c * channel_stride + taps[u] + slot_in[r] + l]
template <int NO, int NR>
void brgemm_tile(const float* in, int64_t channels, int64_t channel_stride, const int64_t* taps,
                 int ntaps, const float* w, int64_t w_out_stride, int64_t w_channel_stride,
                 const int64_t* slot_in, vec* result) {
  vec acc[NO][NR];
  for (int o = 0; o < NO; ++o)
    for (int r = 0; r < NR; ++r) acc[o][r] = vec{};
  const float* src[NR];
  for (int r = 0; r < NR; ++r) src[r] = in + slot_in[r];
  const float* wo[NO];
  for (int o = 0; o < NO; ++o) wo[o] = w + o * w_out_stride;
  for (int64_t c = 0; c < channels; ++c) {
    for (int u = 0; u < ntaps; ++u) {
      const int64_t at = taps[u];
      vec xv[NR];
      for (int r = 0; r < NR; ++r) xv[r] = load(src[r] + at);
      for (int o = 0; o < NO; ++o) {
        const vec wv = broadcast(wo[o][u]);
        for (int r = 0; r < NR; ++r) acc[o][r] += wv * xv[r];
      }
    }
    for (int r = 0; r < NR; ++r) src[r] += channel_stride;
    for (int o = 0; o < NO; ++o) wo[o] += w_channel_stride;
  }
  for (int o = 0; o < NO; ++o)
    for (int r = 0; r < NR; ++r) result[o * NR + r] = acc[o][r];
}

using TileFn = void (*)(const float*, int64_t, int64_t, const int64_t*, int, const float*,
                        int64_t, int64_t, const int64_t*, vec*);

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

// A correlation, per image n, group g, output channel o < cout_g and pixel (oh, ow):
//   out[n, g*cout_g + o, oh, ow] = bias[g*cout_g + o] + sum_{c < cin_g, kh, kw}
//       w[g*w_group_stride + o*w_out_stride + c*w_channel_stride + kh*KW + kw]
//       * src[n, g*cin_g + c, oh*sr - pad_top + kh'*dr, ow*sc - pad_left + kw'*dc]
// with (kh', kw') = (kh, kw), or (KH-1-kh, KW-1-kw) when `flip` is set; pixels outside src
// read as zero (pad_top and pad_left may be negative: a crop).
struct Correlation {
  int64_t batch = 0, groups = 1, cin_g = 0, cout_g = 0;
  const float* src = nullptr;
  int64_t src_channels = 0, src_rows = 0, src_cols = 0, pad_top = 0, pad_left = 0;
  int64_t sr = 1, sc = 1, dr = 1, dc = 1, kh = 1, kw = 1;
  bool flip = false;
  const float* w = nullptr;
  int64_t w_group_stride = 0, w_out_stride = 0, w_channel_stride = 0;
  const float* bias = nullptr;
  float* out = nullptr;
  int64_t out_channels = 0, out_rows = 0, out_cols = 0;

  // The phased input of one channel: sr x sc planes of hq x wq pixels, plane (pr, pc)
  // holding the padded input's pixels (a*sr + pr, b*sc + pc). Every tap then reads
  // consecutive pixels of one plane whatever the stride and dilation.
  int64_t hq() const { return ceil_div((out_rows - 1) * sr + (kh - 1) * dr + 1, sr); }
  int64_t wq() const { return ceil_div((out_cols - 1) * sc + (kw - 1) * dc + 1, sc); }

  void copy_phased(const float* plane, float* dst) const {
    const int64_t Hq = hq(), Wq = wq();
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

  void run() const {
    const int64_t Hq = hq(), Wq = wq(), phase_plane = Hq * Wq;
    const int64_t channel_stride = sr * sc * phase_plane;
    const int64_t K = kh * kw, out_plane = out_rows * out_cols;

    Array<int64_t> taps(static_cast<size_t>(K));
    int64_t max_tap = 0;
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) {
        const int64_t r = (flip ? kh - 1 - i : i) * dr, c = (flip ? kw - 1 - j : j) * dc;
        const int64_t at = ((r % sr) * sc + c % sc) * phase_plane + (r / sr) * Wq + c / sc;
        taps[size_t(i * kw + j)] = at;
        max_tap = std::max(max_tap, at);
      }

    // Vectors of pixels: along each output row (no lane reads a column past the row), or,
    // when rows are short, along the phased planes' rows, which wrap through the
    // (wq - out_cols) columns that hold no output pixel: fewer vectors for 7x7 maps.
    const int64_t row_vectors = out_rows * ceil_div(out_cols, V);
    const int64_t flat_pixels = (out_rows - 1) * Wq + out_cols;
    const bool flat = ceil_div(flat_pixels, V) < row_vectors;
    Array<Slot> slots;
    Array<int64_t> lane_table;
    if (!flat) {
      for (int64_t oh = 0; oh < out_rows; ++oh)
        for (int64_t c0 = 0; c0 < out_cols; c0 += V)
          slots.push_back({oh * Wq + c0, oh * out_cols + c0, 0, int(std::min<int64_t>(V, out_cols - c0))});
    } else {
      for (int64_t p0 = 0; p0 < flat_pixels; p0 += V) {
        Slot s;
        s.in = p0;
        const int64_t oh = p0 / Wq, ow = p0 % Wq;
        if (ow + V <= out_cols) {
          s.out = oh * out_cols + ow;
          s.lanes = V;
        } else {
          s.table = int64_t(lane_table.size());
          for (int64_t l = 0; l < V; ++l) {
            const int64_t p = p0 + l, h = p / Wq, c = p % Wq;
            lane_table.push_back(h < out_rows && c < out_cols ? h * out_cols + c : -1);
          }
        }
        slots.push_back(s);
      }
    }
    const int64_t nslots = int64_t(slots.size()), ntiles = ceil_div(nslots, kNR);
    const int64_t ob_count = ceil_div(cout_g, kNO);
    // Bands of pixel tiles whose input stays in L2 while every output-channel block
    // passes over it: the weights then stream once per band instead of the whole input
    // once per block (a 28x28 map of 512 channels is 2 MB).
    const double input_bytes = double(cin_g) * double(channel_stride) * sizeof(float);
    const int64_t band_tiles = std::clamp<int64_t>(
        int64_t(double(ntiles) * kBandBytes / std::max(input_bytes, 1.0)), 1, ntiles);
    const int64_t tasks = ob_count * ntiles;

    // Reads reach max_tap + the last vector's end past a channel's start; the last
    // channel's overhang is zeroed slack.
    const int64_t reach = max_tap + slots[size_t(nslots - 1)].in + V;
    const int64_t slack = std::max<int64_t>(0, reach - channel_stride);
    const size_t buffer_size = size_t(cin_g * channel_stride + slack);
    float* buffer = workspace(WorkspaceSlot::padded_input, buffer_size);
    std::fill(buffer + cin_g * channel_stride, buffer + buffer_size, 0.0f);

    const int team = threads_for_tasks(tasks, batch * groups * cout_g * out_plane * cin_g * K);
#pragma omp parallel num_threads(team)
    {
      for (int64_t n = 0; n < batch; ++n)
        for (int64_t grp = 0; grp < groups; ++grp) {
          const int64_t first_src = n * src_channels + grp * cin_g;
#pragma omp for schedule(static)
          for (int64_t c = 0; c < cin_g; ++c)
            copy_phased(src + (first_src + c) * src_rows * src_cols, buffer + c * channel_stride);
          // Within a band, output-channel blocks outermost: a thread's consecutive tasks
          // share the weights of one block.
#pragma omp for schedule(static)
          for (int64_t task = 0; task < tasks; ++task) {
            const int64_t band = task / (ob_count * band_tiles), rest = task % (ob_count * band_tiles);
            const int64_t tiles_here = std::min(band_tiles, ntiles - band * band_tiles);
            const int64_t ob = rest / tiles_here, tile = band * band_tiles + rest % tiles_here;
            const int64_t first_o = ob * kNO, first_slot = tile * kNR;
            const int no = int(std::min<int64_t>(kNO, cout_g - first_o));
            const int nr = int(std::min<int64_t>(kNR, nslots - first_slot));
            int64_t slot_in[kNR];
            for (int r = 0; r < nr; ++r) slot_in[r] = slots[size_t(first_slot + r)].in;
            vec result[kNO * kNR];
            kTiles[no][nr](buffer, cin_g, channel_stride, taps.data(), int(K),
                           w + grp * w_group_stride + first_o * w_out_stride, w_out_stride,
                           w_channel_stride, slot_in, result);
            const int64_t first_out = grp * cout_g + first_o;
            float* block = out + (n * out_channels + first_out) * out_plane;
            for (int o = 0; o < no; ++o) {
              const vec b = broadcast(bias ? bias[first_out + o] : 0.0f);
              float* dst = block + o * out_plane;
              for (int r = 0; r < nr; ++r) {
                const Slot& s = slots[size_t(first_slot + r)];
                const vec v = bias ? result[o * nr + r] + b : result[o * nr + r];
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
        }
    }
  }
};

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
  job.dr = R.dilation;
  job.dc = C.dilation;
  job.kh = R.kernel;
  job.kw = C.kernel;
  const int64_t K = g.kernel_plane();
  job.w = w;
  job.w_group_stride = job.cout_g * job.cin_g * K;
  job.w_out_stride = job.cin_g * K;
  job.w_channel_stride = K;
  job.bias = bias;
  job.out = y;
  job.out_channels = g.out_channels;
  job.out_rows = R.out_size;
  job.out_cols = C.out_size;
  job.run();
}

// Stride 1: the input gradient is the output gradient correlated with the flipped kernel,
// input and output channels swapped, padded by (kernel - 1) * dilation - pad_before (a
// crop where negative).
void brgemm_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                       float* grad_x) {
  const WindowAxis &R = g.rows, &C = g.cols;
  Correlation job;
  job.batch = g.batch;
  job.groups = g.groups;
  job.cin_g = g.out_channels_per_group();
  job.cout_g = g.in_channels_per_group();
  job.src = grad_y;
  job.src_channels = g.out_channels;
  job.src_rows = R.out_size;
  job.src_cols = C.out_size;
  job.pad_top = (R.kernel - 1) * R.dilation - R.pad_before;
  job.pad_left = (C.kernel - 1) * C.dilation - C.pad_before;
  job.dr = R.dilation;
  job.dc = C.dilation;
  job.kh = R.kernel;
  job.kw = C.kernel;
  job.flip = true;
  const int64_t K = g.kernel_plane();
  job.w = w;
  job.w_group_stride = job.cout_g * job.cin_g * K;
  job.w_out_stride = K;
  job.w_channel_stride = job.cout_g * K;
  job.out = grad_x;
  job.out_channels = g.in_channels;
  job.out_rows = R.in_size;
  job.out_cols = C.in_size;
  job.run();
}

}  // namespace convpool::CONVPOOL_ISA

#endif  // CONVPOOL_PREDICATES_ONLY
