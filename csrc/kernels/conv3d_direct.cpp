// Direct 3-D convolution, float32, NCDHW (direct3d): output channels in the vector lanes,
// a segment of one output row in registers, reducing over (C_in, kd, kh, kw) with no
// im2col. The weights are packed once per call so that the V (or 2V) output channels of
// one tap are one contiguous vector; the input is copied once into a zero-padded volume so
// that the inner loops carry no bounds checks.
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the registry
// lines name both (registry/registry.cpp, the 3-D list).
#include <cstdint>

#include "conv/conv3d.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
namespace convpool {

// Output channels fill at least half the vector lanes: fewer (depthwise layers) would
// leave most of each FMA idle, and the depth-gathered 2-D kernels serve them better.
bool direct3d_forward_supports(const Conv3dShape& s, int vector_floats) {
  return 2 * s.out_channels_per_group() >= vector_floats;
}
bool direct3d_grad_weight_supports(const Conv3dShape& s, int vector_floats) {
  return 2 * s.out_channels_per_group() >= vector_floats;
}

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>

#include "common/simd_vec.h"
#include "common/threading.h"
#include "common/workspace.h"

#include <omp.h>

namespace convpool::CONVPOOL_ISA {

namespace {

// Output pixels of a row segment held in registers, with CV vectors of channels each:
// CV * R accumulators, CV weight vectors and a broadcast fit the register file.
template <int CV>
constexpr int kRowPixels = kVectorRegisters == 32 ? (CV == 1 ? 14 : 12) : (CV == 1 ? 12 : 6);

// Tiles of one output row computed together, and the bytes of packed weights (a block of
// input channels) they share while in L1 cache: the weights of all 32 input channels of
// a 3x3x3 layer (110 KB) would otherwise stream from L2 once per tile.
constexpr int kSegmentTiles = 8;
constexpr int64_t kWeightBlockBytes = int64_t(24) << 10;

// Taps of the weight gradient held in registers, CV vectors of channels each.
template <int CV>
constexpr int kGradTaps = kVectorRegisters == 32 ? (CV == 1 ? 27 : 12) : (CV == 1 ? 12 : 6);

// Bytes of packed output gradient one pass over the tasks of a thread reads: a block of
// rows small enough to stay in L2 while every task of the thread reads it.
constexpr int64_t kGradRowBlockBytes = int64_t(128) << 10;

// The zero-padded input, sizes `padded` (depth, height, width); x itself when there is no
// padding. A few floats of slack follow it (none are read, the bounds are exact).
const float* padded_input(const Conv3dShape& s, const float* x, int64_t padded[3]) {
  bool any = false;
  for (int a = 0; a < 3; ++a) {
    padded[a] = s.in[a] + s.pad_before[a] + s.pad_after[a];
    any = any || s.pad_before[a] != 0 || s.pad_after[a] != 0;
  }
  if (!any) return x;
  const int64_t planes = s.batch * s.in_channels;
  const int64_t pd = padded[0], ph = padded[1], pw = padded[2];
  float* dst = workspace(WorkspaceSlot::padded_input, size_t(planes * pd * ph * pw));
  const int64_t d = s.in[0], h = s.in[1], w = s.in[2];
#pragma omp parallel for num_threads(threads_for(planes * pd * ph * pw)) schedule(static)
  for (int64_t p = 0; p < planes * pd; ++p) {
    const int64_t plane = p / pd, z = p % pd - s.pad_before[0];
    float* out = dst + p * ph * pw;
    if (z < 0 || z >= d) {
      std::fill(out, out + ph * pw, 0.0f);
      continue;
    }
    const float* in = x + (plane * d + z) * h * w;
    for (int64_t r = 0; r < ph; ++r) {
      float* row = out + r * pw;
      const int64_t y = r - s.pad_before[1];
      if (y < 0 || y >= h) {
        std::fill(row, row + pw, 0.0f);
        continue;
      }
      std::fill(row, row + s.pad_before[2], 0.0f);
      std::copy(in + y * w, in + (y + 1) * w, row + s.pad_before[2]);
      std::fill(row + s.pad_before[2] + w, row + pw, 0.0f);
    }
  }
  return dst;
}

// Offsets in the padded input of every tap (kd, kh, kw), in weight order.
Array<int64_t> tap_offsets(const Conv3dShape& s, const int64_t padded[3]) {
  Array<int64_t> offsets(size_t(s.kernel[0] * s.kernel[1] * s.kernel[2]));
  size_t t = 0;
  for (int64_t a = 0; a < s.kernel[0]; ++a)
    for (int64_t b = 0; b < s.kernel[1]; ++b)
      for (int64_t c = 0; c < s.kernel[2]; ++c)
        offsets[t++] = (a * s.dilation[0] * padded[1] + b * s.dilation[1]) * padded[2] +
                       c * s.dilation[2];
  return offsets;
}

// ---------------------------------------------------------------------------------------
// Forward

// R output pixels x CV vectors of output channels: acc[r][c] sums, over the input
// channels of the group and the taps, packed weight vector c of the tap times the input
// at pixel r. Unit: the width stride is 1 (then the pixels' offsets are constants of the
// instructions, not R more loads per tap).
template <int CV, int R, bool Unit>
void forward_tile(const float* x, int64_t channels, int64_t channel_stride,
                  const int64_t* offsets, int64_t taps, int64_t stride, const float* w,
                  float* result /* [R][CV * V] */, bool accumulate) {
  if constexpr (Unit) stride = 1;
  vec acc[R][CV];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < CV; ++c) acc[r][c] = accumulate ? load(result + (r * CV + c) * V) : vec{};
  for (int64_t ci = 0; ci < channels; ++ci) {
    const float* xc = x + ci * channel_stride;
    for (int64_t t = 0; t < taps; ++t, w += CV * V) {
      const float* xt = xc + offsets[t];
      vec wv[CV];
      for (int c = 0; c < CV; ++c) wv[c] = load(w + c * V);
#pragma GCC unroll 32
      for (int r = 0; r < R; ++r) {
        const vec xb = broadcast(xt[r * stride]);
        for (int c = 0; c < CV; ++c) acc[r][c] += wv[c] * xb;
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < CV; ++c) store(result + (r * CV + c) * V, acc[r][c]);
}

// forward_tile for the last `count` (< R) pixels of a row.
template <int CV, int R, bool Unit>
void forward_tail(int count, const float* x, int64_t channels, int64_t channel_stride,
                  const int64_t* offsets, int64_t taps, int64_t stride, const float* w,
                  float* result, bool accumulate) {
  if constexpr (R > 0) {
    if (count == R)
      forward_tile<CV, R, Unit>(x, channels, channel_stride, offsets, taps, stride, w, result,
                                accumulate);
    else
      forward_tail<CV, R - 1, Unit>(count, x, channels, channel_stride, offsets, taps, stride, w,
                                    result, accumulate);
  }
}

// Weights (C_out, C_in_g, taps) as [group][block][ci][tap][CV * V]: block b of a group
// holds its output channels b * CV * V ... (zeros past the group's last).
const float* pack_weights(const Conv3dShape& s, const float* w, int cv, int64_t blocks,
                          int64_t taps) {
  const int64_t lanes = cv * V, cin_g = s.in_channels_per_group();
  const int64_t cout_g = s.out_channels_per_group();
  const size_t size = size_t(s.groups * blocks * cin_g * taps * lanes);
  float* packed = workspace(WorkspaceSlot::transformed_weights, size);
  for (int64_t g = 0; g < s.groups; ++g)
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t ci = 0; ci < cin_g; ++ci)
        for (int64_t t = 0; t < taps; ++t) {
          float* dst = packed + (((g * blocks + b) * cin_g + ci) * taps + t) * lanes;
          for (int64_t l = 0; l < lanes; ++l) {
            const int64_t co = b * lanes + l;
            dst[l] = co < cout_g ? w[((g * cout_g + co) * cin_g + ci) * taps + t] : 0.0f;
          }
        }
  return packed;
}

// The tile `result` ([count][lanes]: the channels of a pixel contiguous) into the output,
// where a channel's pixels are contiguous (channels `channel_stride` apart), plus the bias
// (may be null): V x V blocks transposed in registers, each channel's pixels one (masked)
// store, instead of a scalar copy per value (measured: a third of the time of a conv1d
// with 12 input channels, whose tiles sum few products).
void store_tile(const float* result, int64_t lanes, int count, int64_t channels,
                const float* bias, float* out, int64_t channel_stride) {
  for (int p0 = 0; p0 < count; p0 += V) {
    const int pixels = std::min(V, count - p0);
    for (int64_t c0 = 0; c0 < channels; c0 += V) {
      vec block[V];
      for (int r = 0; r < V; ++r)
        block[r] = r < pixels ? load(result + (p0 + r) * lanes + c0) : vec{};
      transpose(block);  // block[j]: channel c0 + j at pixels p0 ...
      const int64_t count_c = std::min<int64_t>(V, channels - c0);
      for (int64_t j = 0; j < count_c; ++j) {
        const vec v = bias ? block[j] + broadcast(bias[c0 + j]) : block[j];
        store_first(out + (c0 + j) * channel_stride + p0, v, pixels);
      }
    }
  }
}

template <int CV, bool Unit>
void forward(const Conv3dShape& s, const float* x, const float* w, const float* bias,
             float* y) {
  constexpr int R = kRowPixels<CV>;
  constexpr int64_t lanes = CV * V;
  int64_t padded[3];
  const float* xp = padded_input(s, x, padded);
  const int64_t taps = s.kernel[0] * s.kernel[1] * s.kernel[2];
  const Array<int64_t> offsets = tap_offsets(s, padded);
  const int64_t cin_g = s.in_channels_per_group(), cout_g = s.out_channels_per_group();
  const int64_t blocks = (cout_g + lanes - 1) / lanes;
  const float* packed = pack_weights(s, w, CV, blocks, taps);
  const int64_t od = s.out[0], oh = s.out[1], ow = s.out[2];
  const int64_t plane = padded[0] * padded[1] * padded[2];
  const int64_t rows = s.batch * s.groups * blocks * od * oh;
  const int64_t work = rows * ow * lanes * cin_g * taps;
  const int64_t channel_block =
      std::max<int64_t>(1, kWeightBlockBytes / int64_t(taps * lanes * sizeof(float)));
  // Rows handed out a few at a time, not in one static share per thread: on a machine
  // shared with other processes, a thread that loses its core for a while would
  // otherwise hold up the whole call (each row is its own sum: the result is the same).
#pragma omp parallel for num_threads(threads_for_tasks(rows, work)) schedule(dynamic, 4)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t h = row % oh, d = row / oh % od, b = row / (oh * od) % blocks;
    const int64_t g = row / (oh * od * blocks) % s.groups, n = row / (oh * od * blocks * s.groups);
    const float* x_row = xp + (n * s.in_channels + g * cin_g) * plane +
                         (d * s.stride[0] * padded[1] + h * s.stride[1]) * padded[2];
    const float* w_block = packed + (g * blocks + b) * cin_g * taps * lanes;
    const int64_t co0 = b * lanes, count_co = std::min(lanes, cout_g - co0);
    float* y_row = y + ((n * s.out_channels + g * cout_g + co0) * od + d) * oh * ow + h * ow;
    // The row in segments of up to kSegmentTiles tiles; each block of input channels
    // runs over every tile of the segment while its packed weights are in L1 cache.
    alignas(64) float result[kSegmentTiles * R * lanes];
    for (int64_t s0 = 0; s0 < ow; s0 += kSegmentTiles * R) {
      const int64_t s1 = std::min(ow, s0 + kSegmentTiles * R);
      for (int64_t c0 = 0; c0 < cin_g; c0 += channel_block) {
        const int64_t channels = std::min(channel_block, cin_g - c0);
        const float* w_channels = w_block + c0 * taps * lanes;
        for (int64_t x0 = s0; x0 < s1; x0 += R) {
          const int count = int(std::min<int64_t>(R, s1 - x0));
          const float* x_seg = x_row + c0 * plane + x0 * s.stride[2];
          float* tile = result + (x0 - s0) * lanes;
          if (count == R)
            forward_tile<CV, R, Unit>(x_seg, channels, plane, offsets.data(), taps, s.stride[2],
                                      w_channels, tile, c0 > 0);
          else
            forward_tail<CV, R - 1, Unit>(count, x_seg, channels, plane, offsets.data(), taps,
                                          s.stride[2], w_channels, tile, c0 > 0);
        }
      }
      for (int64_t x0 = s0; x0 < s1; x0 += R)
        store_tile(result + (x0 - s0) * lanes, lanes, int(std::min<int64_t>(R, s1 - x0)),
                   count_co, bias ? bias + g * cout_g + co0 : nullptr, y_row + x0, od * oh * ow);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Weight gradient

// grad_y of (group, block) as [group][block][n][od][oh][ow][CV * V]: the channels of a
// pixel one contiguous vector (zeros past the group's last channel).
float* pack_grad_output(const Conv3dShape& s, const float* grad_y, int cv, int64_t blocks) {
  const int64_t lanes = cv * V, cout_g = s.out_channels_per_group();
  const int64_t pixels = s.out[0] * s.out[1] * s.out[2];
  const int64_t planes = s.groups * blocks * s.batch;
  float* packed = workspace(WorkspaceSlot::transformed_weights, size_t(planes * pixels * lanes));
#pragma omp parallel for num_threads(threads_for(planes * pixels * lanes)) schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t n = p % s.batch, b = p / s.batch % blocks, g = p / (s.batch * blocks);
    float* dst = packed + p * pixels * lanes;
    // V channels x V pixels at a time: V vector loads, one in-register transpose, V
    // vector stores; channels past the group's last are zero vectors.
    for (int64_t c0 = 0; c0 < lanes; c0 += V) {
      const float* src[V];
      for (int l = 0; l < V; ++l) {
        const int64_t co = b * lanes + c0 + l;
        src[l] = co < cout_g ? grad_y + (n * s.out_channels + g * cout_g + co) * pixels : nullptr;
      }
      int64_t i = 0;
      for (; i + V <= pixels; i += V) {
        vec r[V];
        for (int l = 0; l < V; ++l) r[l] = src[l] ? load(src[l] + i) : vec{};
        transpose(r);
        for (int j = 0; j < V; ++j) store(dst + (i + j) * lanes + c0, r[j]);
      }
      for (; i < pixels; ++i)
        for (int l = 0; l < V; ++l) dst[i * lanes + c0 + l] = src[l] ? src[l][i] : 0.0f;
    }
  }
  return packed;
}

// result[t][c] += sum over the pixels of rows [row0, row1) of (n, od, oh) of the packed
// output gradient times the input at tap t: T taps x CV channel vectors in registers.
template <int CV, int T>
void grad_weight_tile(const Conv3dShape& s, const int64_t padded[3], const float* x_channel,
                      int64_t x_batch_stride, const float* gy_block, int64_t row0,
                      int64_t row1, const int64_t* offsets, float* result /* [T][CV*V] */) {
  constexpr int64_t lanes = CV * V;
  const int64_t od = s.out[0], oh = s.out[1], ow = s.out[2], sw = s.stride[2];
  vec acc[T][CV];
  for (int t = 0; t < T; ++t)
    for (int c = 0; c < CV; ++c) acc[t][c] = vec{};
  for (int64_t row = row0; row < row1; ++row) {
    const int64_t h = row % oh, d = row / oh % od, n = row / (oh * od);
    const float* x_row = x_channel + n * x_batch_stride +
                         (d * s.stride[0] * padded[1] + h * s.stride[1]) * padded[2];
    const float* g_row = gy_block + row * ow * lanes;
    for (int64_t i = 0; i < ow; ++i) {
      vec gv[CV];
      for (int c = 0; c < CV; ++c) gv[c] = load(g_row + i * lanes + c * V);
      const float* xi = x_row + i * sw;
#pragma GCC unroll 32
      for (int t = 0; t < T; ++t) {
        const vec xb = broadcast(xi[offsets[t]]);
        for (int c = 0; c < CV; ++c) acc[t][c] += gv[c] * xb;
      }
    }
  }
  for (int t = 0; t < T; ++t)
    for (int c = 0; c < CV; ++c)
      store(result + (t * CV + c) * V, load(result + (t * CV + c) * V) + acc[t][c]);
}

template <int CV, int T>
void grad_weight_taps(int count, const Conv3dShape& s, const int64_t padded[3],
                      const float* x_channel, int64_t x_batch_stride, const float* gy_block,
                      int64_t row0, int64_t row1, const int64_t* offsets, float* result) {
  if constexpr (T > 0) {
    if (count == T)
      grad_weight_tile<CV, T>(s, padded, x_channel, x_batch_stride, gy_block, row0, row1,
                              offsets, result);
    else
      grad_weight_taps<CV, T - 1>(count, s, padded, x_channel, x_batch_stride, gy_block, row0,
                                  row1, offsets, result);
  }
}

template <int CV>
void grad_weight(const Conv3dShape& s, const float* x, const float* grad_y, float* grad_w) {
  constexpr int TT = kGradTaps<CV>;
  constexpr int64_t lanes = CV * V;
  int64_t padded[3];
  const float* xp = padded_input(s, x, padded);
  const int64_t taps = s.kernel[0] * s.kernel[1] * s.kernel[2];
  const Array<int64_t> offsets = tap_offsets(s, padded);
  const int64_t cin_g = s.in_channels_per_group(), cout_g = s.out_channels_per_group();
  const int64_t blocks = (cout_g + lanes - 1) / lanes;
  const float* gy = pack_grad_output(s, grad_y, CV, blocks);
  const int64_t rows = s.batch * s.out[0] * s.out[1];  // (n, od, oh)
  const int64_t pixels = rows * s.out[2];
  const int64_t plane = padded[0] * padded[1] * padded[2];
  // Taps in tiles of equal size (27 = 9 + 9 + 9, not 12 + 12 + 3): no thin last tile.
  const int64_t tap_tiles = (taps + TT - 1) / TT;
  const int64_t tile_taps = (taps + tap_tiles - 1) / tap_tiles;
  const int64_t tasks = s.groups * blocks * cin_g * tap_tiles;
  // The rows split into a fixed number of chunks, summed in order afterwards: enough
  // tasks for any team, and a result that does not depend on the thread count.
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(rows, (64 + tasks - 1) / tasks));
  Array<float> partial(size_t(chunks * s.groups * blocks * cin_g * tap_tiles * TT * lanes));
  const int64_t work = pixels * lanes * cin_g * taps * s.groups * blocks;
  // Each thread takes a contiguous range of (chunk, task) units, chunk-major, and walks
  // its chunks' rows in blocks, running every one of its tasks on a block while the
  // block's output gradient is in cache. The sums of a unit are added block by block, in
  // row order: the same result whatever the team.
  const int64_t units = tasks * chunks;
  const int64_t block_rows = std::max<int64_t>(1, kGradRowBlockBytes / (s.out[2] * lanes * 4));
  const int team = threads_for_tasks(units, work);
#pragma omp parallel num_threads(team)
  {
    int64_t u0, u1;
    split_range(units, omp_get_num_threads(), omp_get_thread_num(), &u0, &u1);
    for (int64_t chunk = u0 / tasks; u0 < u1 && chunk <= (u1 - 1) / tasks; ++chunk) {
      const int64_t first = std::max(u0, chunk * tasks) - chunk * tasks;
      const int64_t last = std::min(u1, (chunk + 1) * tasks) - chunk * tasks;
      int64_t row0, row1;
      split_range(rows, chunks, chunk, &row0, &row1);
      for (int64_t r = row0; r < row1; r += block_rows) {
        const int64_t r_end = std::min(row1, r + block_rows);
        for (int64_t rest = first; rest < last; ++rest) {
          const int64_t tile = rest % tap_tiles, ci = rest / tap_tiles % cin_g;
          const int64_t b = rest / (tap_tiles * cin_g) % blocks;
          const int64_t g = rest / (tap_tiles * cin_g * blocks);
          const int count = int(std::min<int64_t>(tile_taps, taps - tile * tile_taps));
          const float* x_channel = xp + (g * cin_g + ci) * plane;
          const float* gy_block = gy + (g * blocks + b) * pixels * lanes;
          float* result = partial.data() + (chunk * tasks + rest) * TT * lanes;
          grad_weight_taps<CV, TT>(count, s, padded, x_channel, s.in_channels * plane,
                                   gy_block, r, r_end, offsets.data() + tile * tile_taps,
                                   result);
        }
      }
    }
  }
  // grad_w[g * cout_g + co][ci][t]: the chunks' sums in order.
  for (int64_t rest = 0; rest < tasks; ++rest) {
    const int64_t tile = rest % tap_tiles, ci = rest / tap_tiles % cin_g;
    const int64_t b = rest / (tap_tiles * cin_g) % blocks, g = rest / (tap_tiles * cin_g * blocks);
    const int count = int(std::min<int64_t>(tile_taps, taps - tile * tile_taps));
    for (int64_t l = 0; l < lanes; ++l) {
      const int64_t co = b * lanes + l;
      if (co >= cout_g) break;
      float* dst = grad_w + ((g * cout_g + co) * cin_g + ci) * taps + tile * tile_taps;
      for (int t = 0; t < count; ++t) {
        float total = 0.0f;
        for (int64_t chunk = 0; chunk < chunks; ++chunk)
          total += partial[size_t(((chunk * tasks + rest) * TT + t) * lanes + l)];
        dst[t] = total;
      }
    }
  }
}

}  // namespace

void direct3d_forward(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                      float* y) {
  const bool unit = s.stride[2] == 1, narrow = s.out_channels_per_group() <= V;
  if (narrow && unit) forward<1, true>(s, x, w, bias, y);
  else if (narrow) forward<1, false>(s, x, w, bias, y);
  else if (unit) forward<2, true>(s, x, w, bias, y);
  else forward<2, false>(s, x, w, bias, y);
}

void direct3d_grad_weight(const Conv3dShape& s, const float* x, const float* grad_y,
                          float* grad_w) {
  if (s.out_channels_per_group() <= V)
    grad_weight<1>(s, x, grad_y, grad_w);
  else
    grad_weight<2>(s, x, grad_y, grad_w);
}

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
