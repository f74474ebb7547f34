// Few-input-channel float32 convolution, compiled once per instruction set: the first layer of most networks (1-4 input channels per
// group, e.g. 3 -> 64 with an 11x11 stride-4, 7x7 stride-2 or 3x3 stride-2 kernel).
//
// Forward: vectors run along output channels. A register tile of output pixels x one or
// two vectors of output channels walks the (input channel, kh, kw) taps, broadcasting one
// input value per pixel against vectors of packed weights (any stride: a broadcast reads
// any address); the tile is transposed in registers and stored as contiguous pixels per
// channel. Input gradient: one pass per stride phase, each a stride-1 correlation of the
// output gradient with the phase's taps, vectors along input-gradient columns, all input
// channels of a group in registers; the phases' columns are interleaved in registers.
//
// With 1-4 input channels a channel-blocked tile has almost
// nothing to reduce over per pixel, and vectors along input channels would be mostly
// empty: the forward pass puts the many output channels in the vector lanes instead,
// the input gradient puts input-gradient columns there.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the
// registry line names both (registry/registry.cpp).
#include <cstdint>

#include "common/geometry.h"

namespace convpool {

constexpr int64_t kFewChannelsMaxInputChannels = 4;
// The forward tiles are instantiated per column stride (their broadcasts use immediate
// offsets); the input gradient's phase weights and buffers grow with the stride.
constexpr int64_t kFewChannelsMaxStride = 4;

}  // namespace convpool

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------

namespace convpool {

bool few_channels_forward_supports(const Conv2dGeometry& g, int) {
  return g.in_channels_per_group() >= 1 &&
         g.in_channels_per_group() <= kFewChannelsMaxInputChannels &&
         g.out_channels_per_group() >= 8 && g.rows.stride <= kFewChannelsMaxStride &&
         g.cols.stride <= kFewChannelsMaxStride && g.batch > 0 && g.rows.out_size > 0 &&
         g.cols.out_size > 0 && g.in_plane() > 0;
}

bool few_channels_grad_input_supports(const Conv2dGeometry& g, int) {
  // The padded output gradient is folded by nothing: zero padding only.
  return g.zero_padded() && g.in_channels_per_group() >= 1 &&
         g.in_channels_per_group() <= kFewChannelsMaxInputChannels &&
         g.rows.stride <= kFewChannelsMaxStride && g.cols.stride <= kFewChannelsMaxStride &&
         g.batch > 0 && g.in_plane() > 0;
}

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>
#include <cstdint>

#include "common/simd_vec.h"
#include "common/threading.h"
#include "conv/padded_rows.h"
#include "conv/stride_phases.h"

namespace convpool::CONVPOOL_ISA {

namespace {

// ---------------------------------------------------------------------------------------
// Forward microkernel: UR output pixels (columns j * CS of `in`) x NB * V output channels.
//   y[o][j] = bias[o] + sum_{c < channels, t < ntaps} w[(c * ntaps + t) * NB * V + o] * in[c * channel_stride + taps[t] + j * CS]
// stored as out[o * out_channel_stride + j] for o < channels_out, j < pixels (<= UR).
template <int CS, int UR, int NB>
void pixel_tile(const float* in, int64_t channels, int64_t channel_stride, const int64_t* taps,
                int64_t ntaps, const float* w, const float* bias, float* out,
                int64_t out_channel_stride, int64_t channels_out, int64_t pixels) {
  vec acc[UR][NB];
  for (int b = 0; b < NB; ++b) {
    const vec init = load(bias + b * V);
    for (int j = 0; j < UR; ++j) acc[j][b] = init;
  }
  for (int64_t c = 0; c < channels; ++c) {
    const float* in_c = in + c * channel_stride;
    for (int64_t t = 0; t < ntaps; ++t, w += NB * V) {
      vec wv[NB];
      for (int b = 0; b < NB; ++b) wv[b] = load(w + b * V);
      const float* src = in_c + taps[t];
      for (int j = 0; j < UR; ++j) {
        const vec xv = broadcast(src[j * CS]);
        for (int b = 0; b < NB; ++b) acc[j][b] += xv * wv[b];
      }
    }
  }
  // Each vector of channels, transposed in registers: block[o] holds channel o's pixels.
  for (int b = 0; b < NB; ++b) {
    vec block[V];
    for (int j = 0; j < V; ++j) block[j] = j < UR ? acc[j][b] : vec{};
    transpose(block);
    for (int64_t o = 0; o < std::min<int64_t>(V, channels_out - b * V); ++o) {
      if (pixels == V) {
        store(out + (b * V + o) * out_channel_stride, block[o]);
      } else {
        store_first(out + (b * V + o) * out_channel_stride, block[o], pixels);
      }
    }
  }
}

using PixelTileFn = void (*)(const float*, int64_t, int64_t, const int64_t*, int64_t,
                             const float*, const float*, float*, int64_t, int64_t, int64_t);

// The register tiles: V pixels x one vector of channels, or, for more than V output
// channels, fewer pixels x two vectors, which loads 2 weights + UR inputs per 2 * UR FMAs
// instead of 1 + V per V, and fits 55-pixel rows better (4 tiles of 14).
#if defined(CONVPOOL_ISA_avx512)
constexpr int kWidePixels = 14;  // 28 accumulators, 2 weights of 32 registers
#elif defined(CONVPOOL_ISA_avx2)
constexpr int kWidePixels = 6;  // 12 accumulators, 2 weights of 16 registers
#else
constexpr int kWidePixels = V;  // a tile's pixels must fit one V x V transpose
#endif

struct ForwardTile {
  int pixels, vectors;
  PixelTileFn run;
};

template <int CS>
ForwardTile forward_tile_for_stride(bool wide) {
  if (wide) return {kWidePixels, 2, &pixel_tile<CS, kWidePixels, 2>};
  return {V, 1, &pixel_tile<CS, V, 1>};
}

// The tiles are instantiated for each column stride the predicate accepts.
static_assert(kFewChannelsMaxStride == 4, "forward_tile has a case per column stride");

ForwardTile forward_tile(int64_t column_stride, int64_t out_channels_per_group) {
  const bool wide = out_channels_per_group > V;
  switch (column_stride) {
    case 1: return forward_tile_for_stride<1>(wide);
    case 2: return forward_tile_for_stride<2>(wide);
    case 3: return forward_tile_for_stride<3>(wide);
    default: return forward_tile_for_stride<4>(wide);
  }
}

// Output rows per task: a few, so that one picture still makes several tasks per thread.
int64_t rows_per_task(int64_t rows, int64_t units) {
  const int64_t wanted = ceil_div(units, 8 * int64_t(num_threads()));
  return std::clamp<int64_t>(wanted, 1, std::min<int64_t>(8, std::max<int64_t>(rows, 1)));
}

// ---------------------------------------------------------------------------------------
// Input-gradient microkernel: NR rows x NO input channels of one stride phase, V
// consecutive phase columns each.
//   out[o * out_channel_stride + r * out_row_stride + l] =
//     sum_{q < q_count, t < ntaps} w[(q * ntaps + t) * NO + o] * in[q * q_stride + offsets[t] + r * row_stride + l]
template <int NO, int NR>
void phase_tile(const float* in, int64_t q_count, int64_t q_stride, int64_t row_stride,
                const int64_t* offsets, int64_t ntaps, const float* w, float* out,
                int64_t out_channel_stride, int64_t out_row_stride) {
  vec acc[NO][NR];
  for (int o = 0; o < NO; ++o)
    for (int r = 0; r < NR; ++r) acc[o][r] = vec{};
  for (int64_t q = 0; q < q_count; ++q) {
    const float* in_q = in + q * q_stride;
    for (int64_t t = 0; t < ntaps; ++t, w += NO) {
      vec wv[NO];
      for (int o = 0; o < NO; ++o) wv[o] = broadcast(w[o]);
      const float* src = in_q + offsets[t];
      for (int r = 0; r < NR; ++r) {
        const vec xv = load(src + r * row_stride);
        for (int o = 0; o < NO; ++o) acc[o][r] += wv[o] * xv;
      }
    }
  }
  for (int o = 0; o < NO; ++o)
    for (int r = 0; r < NR; ++r) store(out + o * out_channel_stride + r * out_row_stride, acc[o][r]);
}

// Rows per input-gradient tile for NO channels: NO x NR accumulators, NO weights and one
// input vector in the register file.
constexpr int phase_tile_rows(int no) { return std::max(1, std::min(8, (kVectorRegisters - no - 1) / no)); }

using PhaseTileFn = void (*)(const float*, int64_t, int64_t, int64_t, const int64_t*, int64_t,
                             const float*, float*, int64_t, int64_t);

template <int NO, int NR>
constexpr PhaseTileFn phase_tile_or_null() {
  if constexpr (NR <= phase_tile_rows(NO)) {
    return &phase_tile<NO, NR>;
  } else {
    return nullptr;
  }
}

template <int NO>
PhaseTileFn phase_tile_for_rows(int nr) {
  static constexpr PhaseTileFn table[9] = {
      nullptr, phase_tile_or_null<NO, 1>(), phase_tile_or_null<NO, 2>(), phase_tile_or_null<NO, 3>(),
      phase_tile_or_null<NO, 4>(), phase_tile_or_null<NO, 5>(), phase_tile_or_null<NO, 6>(),
      phase_tile_or_null<NO, 7>(), phase_tile_or_null<NO, 8>()};
  return table[nr];
}

PhaseTileFn phase_tile_for(int64_t no, int nr) {
  switch (no) {
    case 1: return phase_tile_for_rows<1>(nr);
    case 2: return phase_tile_for_rows<2>(nr);
    case 3: return phase_tile_for_rows<3>(nr);
    default: return phase_tile_for_rows<4>(nr);
  }
}

// The first 2V of the interleaved sequence a[0], b[0], a[1], b[1], ...: (low, high).
inline void zip(vec a, vec b, vec* low, vec* high) {
  lane_index lo, hi;
  for (int l = 0; l < V; ++l) {
    lo[l] = (l % 2 ? V : 0) + l / 2;
    hi[l] = (l % 2 ? V : 0) + V / 2 + l / 2;
  }
  *low = __builtin_shuffle(a, b, lo);
  *high = __builtin_shuffle(a, b, hi);
}

inline void store_clipped(float* dst, vec v, int64_t n) {
  if (n >= V) {
    store(dst, v);
  } else if (n > 0) {
    store_first(dst, v, n);
  }
}

// dst[b * stride + phase] = phases[phase][b] for dst indices below width: the column
// phases of one input-gradient row put back in place. Each phase row holds whole vectors
// (past its own length: values that land at or past `width`, never stored).
void interleave_columns(const float* const* phases, int64_t stride, int64_t width, float* dst) {
  if (stride == 1) {
    std::copy(phases[0], phases[0] + width, dst);
  } else if (stride == 2) {
    for (int64_t b = 0; 2 * b < width; b += V) {
      vec lo, hi;
      zip(load(phases[0] + b), load(phases[1] + b), &lo, &hi);
      const int64_t left = width - 2 * b;
      store_clipped(dst + 2 * b, lo, left);
      store_clipped(dst + 2 * b + V, hi, left - V);
    }
  } else if (stride == 4) {
    for (int64_t b = 0; 4 * b < width; b += V) {
      vec even_lo, even_hi, odd_lo, odd_hi, out[4];
      zip(load(phases[0] + b), load(phases[2] + b), &even_lo, &even_hi);
      zip(load(phases[1] + b), load(phases[3] + b), &odd_lo, &odd_hi);
      zip(even_lo, odd_lo, &out[0], &out[1]);
      zip(even_hi, odd_hi, &out[2], &out[3]);
      const int64_t left = width - 4 * b;
      for (int k = 0; k < 4; ++k) store_clipped(dst + 4 * b + k * V, out[k], left - k * V);
    }
  } else {
    for (int64_t i = 0; i < width; ++i) dst[i] = phases[i % stride][i / stride];
  }
}

// One (row phase, column phase) pair of the input gradient: its taps as offsets into the
// task's output-gradient rows, and the weights packed [group][q][tap][input channel].
struct Phase {
  Array<int64_t> offsets;
  Array<float> weights;
  int64_t ntaps = 0;
};

}  // namespace

void few_channels_forward(const Conv2dGeometry& g, const float* x, const float* w,
                          const float* bias, float* y) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t K = g.kernel_plane(), OH = R.out_size, OW = C.out_size;
  const ForwardTile tile = forward_tile(C.stride, cout_g);
  const int64_t B = tile.vectors * V, ob_count = ceil_div(cout_g, B);

  // Weights as [group][output block][input channel][tap][B], bias as [group][block][B];
  // lanes past the group's channels are zero.
  Array<float> packed(static_cast<size_t>(g.groups * ob_count * cin_g * K * B));
  Array<float> packed_bias(static_cast<size_t>(g.groups * ob_count * B));
  for (int64_t grp = 0; grp < g.groups; ++grp)
    for (int64_t q = 0; q < cout_g; ++q) {
      const int64_t ob = q / B, lane = q % B, co = grp * cout_g + q;
      if (bias) packed_bias[size_t((grp * ob_count + ob) * B + lane)] = bias[co];
      for (int64_t c = 0; c < cin_g; ++c)
        for (int64_t k = 0; k < K; ++k)
          packed[size_t((((grp * ob_count + ob) * cin_g + c) * K + k) * B + lane)] =
              w[(co * cin_g + c) * K + k];
    }

  // Each task copies the input rows its output rows read, padded, wide enough for
  // whole tiles of pixels, so that the kernel never tests bounds.
  const int64_t tiles = ceil_div(OW, int64_t(tile.pixels));
  const int64_t width = (tiles * tile.pixels - 1) * C.stride + (C.kernel - 1) * C.dilation + 1;
  const int64_t span = (R.kernel - 1) * R.dilation + 1;
  Array<int64_t> taps(static_cast<size_t>(K));
  for (int64_t s = 0; s < R.kernel; ++s)
    for (int64_t t = 0; t < C.kernel; ++t)
      taps[size_t(s * C.kernel + t)] = s * R.dilation * width + t * C.dilation;

  const int64_t block = rows_per_task(OH, g.batch * g.groups * OH);
  const int64_t blocks = ceil_div(OH, block), tasks = g.batch * g.groups * blocks;
  const int64_t window_rows = (block - 1) * R.stride + span;
#pragma omp parallel num_threads(threads_for(g.batch * OH * OW * cin_g * K * cout_g * g.groups))
  {
    Array<float> window(static_cast<size_t>(cin_g * window_rows * width));
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t blk = task % blocks, ng = task / blocks;
      const int64_t grp = ng % g.groups, n = ng / g.groups;
      const int64_t r0 = blk * block, rows = std::min(block, OH - r0);
      for (int64_t c = 0; c < cin_g; ++c)
        copy_padded_rows(x + (n * g.in_channels + grp * cin_g + c) * g.in_plane(), R.in_size,
                         C.in_size, r0 * R.stride - R.pad_before, (rows - 1) * R.stride + span,
                         C.pad_before, width, window.data() + c * window_rows * width, width,
                         g.padding_mode);
      for (int64_t ob = 0; ob < ob_count; ++ob) {
        const float* wb = packed.data() + (grp * ob_count + ob) * cin_g * K * B;
        const float* bb = packed_bias.data() + (grp * ob_count + ob) * B;
        const int64_t valid = std::min<int64_t>(B, cout_g - ob * B);
        float* out = y + (n * g.out_channels + grp * cout_g + ob * B) * g.out_plane() + r0 * OW;
        for (int64_t r = 0; r < rows; ++r) {
          const float* in_row = window.data() + r * R.stride * width;
          for (int64_t t = 0; t < tiles; ++t) {
            const int64_t j0 = t * tile.pixels;
            tile.run(in_row + j0 * C.stride, cin_g, window_rows * width, taps.data(), K, wb, bb,
                     out + r * OW + j0, g.out_plane(), valid, std::min<int64_t>(tile.pixels, OW - j0));
          }
        }
      }
    }
  }
}

// grad_x[n, grp * cin_g + c, ry + a * sy, rx + b * sx] =
//   sum_{q, (s, os) in phase ry, (t, ot) in phase rx} w[grp * cout_g + q, c, s, t] * grad_y[n, grp * cout_g + q, a + os, b + ot]
// with grad_y zero outside its plane. A task is one image, group, row phase and block of
// that phase's rows: it copies the output-gradient rows the block reads, computes every
// column phase of NR rows at a time and interleaves them into grad_x's rows.
void few_channels_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                             float* grad_x) {
  const WindowAxis &R = g.rows, &C = g.cols;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t K = g.kernel_plane(), SY = R.stride, SX = C.stride;
  const int64_t W = C.in_size, H = R.in_size;

  Array<Array<PhaseTap>> row_phases(static_cast<size_t>(SY)), col_phases(static_cast<size_t>(SX));
  for (int64_t ry = 0; ry < SY; ++ry) row_phases[size_t(ry)] = phase_taps(R, ry);
  for (int64_t rx = 0; rx < SX; ++rx) col_phases[size_t(rx)] = phase_taps(C, rx);
  int64_t ot_min = 0, ot_max = 0;
  for (const auto& phase : col_phases)
    for (const PhaseTap& tap : phase) {
      ot_min = std::min(ot_min, tap.offset);
      ot_max = std::max(ot_max, tap.offset);
    }
  Array<int64_t> os_min(static_cast<size_t>(SY)), os_span(static_cast<size_t>(SY));  // per row phase
  for (int64_t ry = 0; ry < SY; ++ry) {
    int64_t lo = 0, hi = 0;
    const auto& taps = row_phases[size_t(ry)];
    if (!taps.empty()) lo = hi = taps[0].offset;
    for (const PhaseTap& tap : taps) {
      lo = std::min(lo, tap.offset);
      hi = std::max(hi, tap.offset);
    }
    os_min[size_t(ry)] = lo;
    os_span[size_t(ry)] = hi - lo;
  }
  int64_t max_span = 0;
  for (int64_t ry = 0; ry < SY; ++ry) max_span = std::max(max_span, os_span[size_t(ry)]);

  // Phase columns computed in whole vectors; buffer column k holds grad_y column k + ot_min.
  const int64_t phase_cols = ceil_div(phase_size(C, 0), V) * V;
  const int64_t width = phase_cols + ot_max - ot_min;

  Array<Phase> phases(static_cast<size_t>(SY * SX));
  for (int64_t ry = 0; ry < SY; ++ry)
    for (int64_t rx = 0; rx < SX; ++rx) {
      Phase& ph = phases[size_t(ry * SX + rx)];
      const auto &rt = row_phases[size_t(ry)], &ct = col_phases[size_t(rx)];
      ph.ntaps = int64_t(rt.size() * ct.size());
      ph.offsets.assign(size_t(ph.ntaps), 0);
      ph.weights.assign(size_t(g.groups * cout_g * ph.ntaps * cin_g), 0.0f);
      int64_t tap = 0;
      for (const PhaseTap& a : rt)
        for (const PhaseTap& b : ct) {
          ph.offsets[size_t(tap)] = (a.offset - os_min[size_t(ry)]) * width + (b.offset - ot_min);
          const int64_t k = a.kernel_index * C.kernel + b.kernel_index;
          for (int64_t grp = 0; grp < g.groups; ++grp)
            for (int64_t q = 0; q < cout_g; ++q)
              for (int64_t c = 0; c < cin_g; ++c)
                ph.weights[size_t(((grp * cout_g + q) * ph.ntaps + tap) * cin_g + c)] =
                    w[((grp * cout_g + q) * cin_g + c) * K + k];
          ++tap;
        }
    }

  const int nr_max = phase_tile_rows(int(cin_g));
  const int64_t rows_max = ceil_div(H, SY);  // rows of the largest row phase
  const int64_t units = g.batch * g.groups * H / std::max<int64_t>(nr_max, 1);
  const int64_t block = nr_max * std::clamp<int64_t>(units / (8 * int64_t(num_threads())), 1, 2);
  const int64_t blocks = ceil_div(rows_max, block);
  const int64_t tasks = g.batch * g.groups * SY * blocks;
  const int64_t buffer_rows = block + max_span;
#pragma omp parallel num_threads(threads_for(g.batch * g.in_channels * g.in_plane() * cout_g * K / (SY * SX)))
  {
    Array<float> buffer(static_cast<size_t>(cout_g * buffer_rows * width));
    // The column phases of NR rows: [rx][c][r][phase_cols].
    Array<float> tile(static_cast<size_t>(SX * cin_g * nr_max * phase_cols));
    Array<const float*> phase_rows(static_cast<size_t>(SX));
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t blk = task % blocks, rest = task / blocks;
      const int64_t ry = rest % SY, grp = (rest / SY) % g.groups, n = rest / SY / g.groups;
      const int64_t a0 = blk * block, rows = std::min(block, phase_size(R, ry) - a0);
      if (rows <= 0) continue;
      if (!row_phases[size_t(ry)].empty())
        for (int64_t q = 0; q < cout_g; ++q)
          copy_padded_rows(grad_y + (n * g.out_channels + grp * cout_g + q) * g.out_plane(),
                           R.out_size, C.out_size, a0 + os_min[size_t(ry)], rows + os_span[size_t(ry)],
                           -ot_min, width, buffer.data() + q * buffer_rows * width, width,
                           PaddingMode::zeros);
      for (int64_t r0 = 0; r0 < rows; r0 += nr_max) {
        const int nr = int(std::min<int64_t>(nr_max, rows - r0));
        const PhaseTileFn kernel = phase_tile_for(cin_g, nr);
        for (int64_t b = 0; b < phase_cols; b += V)
          for (int64_t rx = 0; rx < SX; ++rx) {
            const Phase& ph = phases[size_t(ry * SX + rx)];
            kernel(buffer.data() + r0 * width + b, cout_g, buffer_rows * width, width,
                   ph.offsets.data(), ph.ntaps, ph.weights.data() + grp * cout_g * ph.ntaps * cin_g,
                   tile.data() + rx * cin_g * nr_max * phase_cols + b, nr_max * phase_cols, phase_cols);
          }
        for (int64_t c = 0; c < cin_g; ++c)
          for (int r = 0; r < nr; ++r) {
            for (int64_t rx = 0; rx < SX; ++rx)
              phase_rows[size_t(rx)] = tile.data() + ((rx * cin_g + c) * nr_max + r) * phase_cols;
            float* dst = grad_x + (n * g.in_channels + grp * cin_g + c) * g.in_plane() +
                         (ry + (a0 + r0 + r) * SY) * W;
            interleave_columns(phase_rows.data(), SX, W, dst);
          }
      }
    }
  }
}

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
