// Channels-last float32 convolution, register tiles (conv2d_nhwc.h names the
// channels-last implementations).
//
// nhwc_blocked: an output row is a sum over taps (s, t) of X[row pixels, C_in] x
// W[s, t][C_in, C_out]. The weights are packed once per call as [group][s][t][p][q], q
// padded to whole vectors; a register tile of kPixels output pixels x kVectors vectors of
// output channels walks (tap, input channel), broadcasting one input value per pixel
// against a row of packed weights. With zero padding, rows whose windows cross the top or
// bottom edge run fewer taps and columns whose windows cross the left or right edge run
// one pixel at a time with their taps clipped, so padding is never read, copied or
// multiplied; with the other modes, a tap row in the padding reads the row the mode
// repeats, and the edge columns' taps read the pixels it repeats (padded_pixel).
//
// One file, two sections: the `supports` predicates (compiled once, with the vector
// width a parameter) and the kernels (compiled once per instruction set); the registry
// lines name both (registry/registry.cpp, the channels-last lists). Every padding mode:
// zero padding is skipped; with the other modes the pixels whose windows reach into the
// padding read (or, for the input gradient, add to) the input pixel the mode repeats.
#include <cstdint>

#include "common/geometry.h"

#ifdef CONVPOOL_PREDICATES_ONLY
// --- which cases it supports: this section alone is compiled once more, outside the
// --- per-ISA builds (CMakeLists.txt), so that asking costs the same on every CPU -------
namespace convpool {

namespace {

bool one_channel_per_group(const Conv2dGeometry& g) { return g.in_channels_per_group() == 1; }

// The packed weights (the kernel's size, output channels padded to whole tiles of at most
// four vectors) stay
// within what the operands hold.
bool packed_weights_fit(const Conv2dGeometry& g, int64_t padded_channels, int64_t other_channels) {
  return scratch_within_operands(
      g, double(g.groups) * double(g.kernel_plane()) * double(padded_channels) * double(other_channels));
}

int64_t padded(int64_t n, int vector_floats) { return (n + vector_floats - 1) / vector_floats * vector_floats; }

}  // namespace

// Register tiles of output-channel vectors: worth it from half a vector of output channels
// per group and with more than one input channel per group (depthwise layers vectorise
// over channels in nhwc_loops instead).
bool nhwc_blocked_forward_supports(const Conv2dGeometry& g, int vector_floats) {
  const int64_t cout_g = g.out_channels_per_group();
  return !one_channel_per_group(g) && 2 * cout_g >= vector_floats &&
         packed_weights_fit(g, padded(cout_g, 4 * vector_floats), g.in_channels_per_group());
}

// The input gradient runs the forward engine on grad_y, once per stride phase (stride 1
// each), with the input channels of a group as its vectors. Fewer than half a vector of
// input channels (a stem's 3) still runs here when each sums a vector of output channels:
// a partly filled vector beat the loop nests' scalar sums over taps.
bool nhwc_blocked_grad_input_supports(const Conv2dGeometry& g, int vector_floats) {
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  return cout_g > 1 && (2 * cin_g >= vector_floats || cout_g >= vector_floats) &&
         packed_weights_fit(g, padded(cin_g, 4 * vector_floats), cout_g);
}

// Partial sums per task: the weights' size with output channels padded to whole blocks
// of (at most) four vectors.
bool nhwc_blocked_grad_weight_supports(const Conv2dGeometry& g, int vector_floats) {
  const int64_t cout_g = g.out_channels_per_group();
  return !one_channel_per_group(g) && 2 * cout_g >= vector_floats &&
         packed_weights_fit(g, padded(cout_g, 4 * vector_floats), g.in_channels_per_group());
}

}  // namespace convpool

#else
// --- the kernels: compiled once per instruction set -----------------------------------
#include <algorithm>
#include <cstdint>

#include "common/simd_vec.h"
#include "common/threading.h"
#include "conv/conv2d_nhwc_loops.h"
#include "conv/stride_phases.h"

namespace convpool::CONVPOOL_ISA {

namespace {

#if defined(CONVPOOL_ISA_avx512)
constexpr int kPixels = 6, kVectors = 4;  // 24 accumulators of 32 registers
#else
constexpr int kPixels = 6, kVectors = 2;  // 12 accumulators of 16 registers
#endif
static_assert(kPixels == 6, "the narrower tiles are instantiated for 1-5 pixels");
constexpr int64_t kBlock = int64_t(kVectors) * V;  // output channels of one tile

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div_signed(int64_t a, int64_t b) { return -floor_div(-a, b); }

// [first, last) of k in [0, kernel) with 0 <= o * stride - pad + k * dilation < in_size.
void taps_inside(int64_t o, int64_t in_size, int64_t kernel, int64_t stride, int64_t dilation,
                 int64_t pad, int64_t& first, int64_t& last) {
  const int64_t start = o * stride - pad;
  first = std::clamp<int64_t>(ceil_div_signed(-start, dilation), 0, kernel);
  last = std::clamp<int64_t>(floor_div(in_size - 1 - start, dilation) + 1, first, kernel);
}

// One channels-last convolution as the engine sees it: the forward pass, or one stride
// phase of the input gradient (grad_y convolved at stride 1 with the phase's taps of the
// flipped, transposed kernel, whose padding before may be negative). The output's pixels
// and rows may be strided: a phase writes every stride-th pixel of grad_x.
struct Engine {
  int64_t batch, groups, cin_g, cout_g, cout_pad;
  int64_t in_h, in_w, out_h, out_w;
  int64_t kh, kw, sy, sx, dy, dx, top, left;
  int64_t out_pixel_step, out_row_step, out_image_step;  // floats between output pixels, rows, images
  PaddingMode mode;  // the forward pass's; the input gradient's phases read zero padding
  int64_t c_in() const { return groups * cin_g; }
  int64_t c_out() const { return groups * cout_g; }
};

// Where weight (tap k, input channel p, output channel q of group grp) is packed: each
// block of kBlock output channels of a group holds its taps and input channels
// contiguously, [group][q / kBlock][k][p][q % kBlock], so that a task reads one
// contiguous slice (a slice strided through all output channels would use a fraction of
// each cache set). Output channels are padded with zeros to whole blocks (cout_pad).
int64_t pack_index(const Engine& e, int64_t grp, int64_t k, int64_t p, int64_t q) {
  const int64_t taps = e.kh * e.kw;
  return (((grp * (e.cout_pad / kBlock) + q / kBlock) * taps + k) * e.cin_g + p) * kBlock +
         q % kBlock;
}

inline vec load_first(const float* p, int64_t n) {
#if defined(CONVPOOL_ISA_avx512)
  return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p);
#else
  vec v = vec{} ;
  for (int64_t l = 0; l < n; ++l) v[l] = p[l];
  return v;
#endif
}

// Input channels [p0, p1) of a group, the taps they meet and their tile.
struct Chunk {
  int64_t p0, p1;
  bool first;  // the first chunk starts from the bias; later ones add to the output
};

// Output pixels j .. j + P - 1 of row i, channels q0 .. q0 + nq - 1 of group grp
// (B = ceil(nq / V) vectors), over taps [s0, s1) x [t0, t1) (every pixel's taps inside)
// and the input channels of `chunk`.
template <int P, int B>
void tile(const Engine& e, const float* image, const float* wg, const float* bias_g,
          const Chunk& chunk, int64_t i, int64_t j, int64_t s0, int64_t s1, int64_t t0,
          int64_t t1, int64_t grp, int64_t q0, int64_t nq, float* out) {
  vec acc[P][B];
  for (int b = 0; b < B; ++b) {
    const bool full = (b + 1) * V <= nq;
    if (chunk.first) {
      const vec start = bias_g ? load(bias_g + q0 + b * V) : vec{};
      for (int px = 0; px < P; ++px) acc[px][b] = start;
    } else {
      for (int px = 0; px < P; ++px) {
        const float* o = out + px * e.out_pixel_step + b * V;
        acc[px][b] = full ? load(o) : load_first(o, nq - b * V);
      }
    }
  }
  const int64_t c_in = e.c_in(), pixel_step = e.sx * c_in;
  for (int64_t s = s0; s < s1; ++s) {
    // the row itself, or the one a padding mode repeats (taps in zero padding are not run)
    const int64_t iy = padding_source_index(i * e.sy - e.top + s * e.dy, e.in_h, e.mode);
    const float* in_row = image + iy * e.in_w * c_in + grp * e.cin_g;
    for (int64_t t = t0; t < t1; ++t) {
      const float* in = in_row + (j * e.sx - e.left + t * e.dx) * c_in;
      const float* wp = wg + (s * e.kw + t) * e.cin_g * kBlock;
      for (int64_t p = chunk.p0; p < chunk.p1; ++p) {
        vec wv[B];
        for (int b = 0; b < B; ++b) wv[b] = load(wp + p * kBlock + b * V);
        for (int px = 0; px < P; ++px) {
          const vec xv = broadcast(in[px * pixel_step + p]);
          for (int b = 0; b < B; ++b) acc[px][b] += xv * wv[b];
        }
      }
    }
  }
  for (int px = 0; px < P; ++px)
    for (int b = 0; b < B; ++b) {
      float* o = out + px * e.out_pixel_step + b * V;
      if ((b + 1) * V <= nq) store(o, acc[px][b]);
      else store_first(o, acc[px][b], nq - b * V);
    }
}

template <int P>
void tile_vectors(int vectors, const Engine& e, const float* image, const float* wg,
                  const float* bias_g, const Chunk& chunk, int64_t i, int64_t j, int64_t s0,
                  int64_t s1, int64_t t0, int64_t t1, int64_t grp, int64_t q0, int64_t nq,
                  float* out) {
  switch (vectors) {
    case 1: return tile<P, 1>(e, image, wg, bias_g, chunk, i, j, s0, s1, t0, t1, grp, q0, nq, out);
    case 2: return tile<P, 2>(e, image, wg, bias_g, chunk, i, j, s0, s1, t0, t1, grp, q0, nq, out);
#if defined(CONVPOOL_ISA_avx512)
    case 3: return tile<P, 3>(e, image, wg, bias_g, chunk, i, j, s0, s1, t0, t1, grp, q0, nq, out);
    case 4: return tile<P, 4>(e, image, wg, bias_g, chunk, i, j, s0, s1, t0, t1, grp, q0, nq, out);
#endif
    default: return;
  }
}

template <int... Ps>
void tile_pixels(int pixels, int vectors, const Engine& e, const float* image, const float* wg,
                 const float* bias_g, const Chunk& chunk, int64_t i, int64_t j, int64_t s0,
                 int64_t s1, int64_t t0, int64_t t1, int64_t grp, int64_t q0, int64_t nq,
                 float* out) {
  ((pixels == Ps ? tile_vectors<Ps>(vectors, e, image, wg, bias_g, chunk, i, j, s0, s1, t0, t1,
                                    grp, q0, nq, out)
                 : void()), ...);
}

// Output pixel (i, j), at `out`, when a padding mode other than zeros puts some of its taps
// in the padding: each tap reads the input pixel the mode repeats there.
void padded_pixel(const Engine& e, int vectors, const float* image, const float* wg,
                  const float* bias_g, const Chunk& chunk, int64_t i, int64_t j, int64_t grp,
                  int64_t q0, int64_t nq, float* out) {
  vec acc[kVectors];
  for (int b = 0; b < vectors; ++b) {
    if (chunk.first) acc[b] = bias_g ? load(bias_g + q0 + b * V) : vec{};
    else acc[b] = (b + 1) * V <= nq ? load(out + b * V) : load_first(out + b * V, nq - b * V);
  }
  const int64_t c_in = e.c_in();
  for (int64_t s = 0; s < e.kh; ++s) {
    const int64_t iy = padding_source_index(i * e.sy - e.top + s * e.dy, e.in_h, e.mode);
    if (iy < 0) continue;
    for (int64_t t = 0; t < e.kw; ++t) {
      const int64_t ix = padding_source_index(j * e.sx - e.left + t * e.dx, e.in_w, e.mode);
      if (ix < 0) continue;
      const float* in = image + (iy * e.in_w + ix) * c_in + grp * e.cin_g;
      const float* wp = wg + (s * e.kw + t) * e.cin_g * kBlock;
      for (int64_t p = chunk.p0; p < chunk.p1; ++p) {
        const vec xv = broadcast(in[p]);
        for (int b = 0; b < vectors; ++b) acc[b] += xv * load(wp + p * kBlock + b * V);
      }
    }
  }
  for (int b = 0; b < vectors; ++b) {
    if ((b + 1) * V <= nq) store(out + b * V, acc[b]);
    else store_first(out + b * V, acc[b], nq - b * V);
  }
}

// The packed weights a tile reads for one chunk of input channels: kept near 64 KiB so
// that they stay in L2 while a task's rows of pixels pass over them.
constexpr int64_t kChunkWeightFloats = 16384;
// Output pixels per task: a few rows, whose partial sums stay in L2 between chunks.
constexpr int64_t kTaskPixels = 256;

// y = the engine's convolution of x with weights packed by pack_index(); bias packed
// [group][cout_pad] or null. A task owns a block of rows of one image and one
// block of output channels of one group, and runs the input channels in chunks, each
// chunk over all of its rows: the chunk's weights are read from L2, not memory.
void run_engine(const Engine& e, const float* x, const float* packed, const float* bias, float* y) {
  const int64_t block = int64_t(kVectors) * V;
  const int64_t c_out = e.c_out();
  const int64_t kernel_plane = e.kh * e.kw;
  const int64_t chunk_size = std::clamp<int64_t>(kChunkWeightFloats / (kernel_plane * block), 8,
                                                 std::max<int64_t>(e.cin_g, 1));
  const int64_t rows_per_task = std::clamp<int64_t>(kTaskPixels / std::max<int64_t>(e.out_w, 1), 1,
                                                    std::max<int64_t>(e.out_h, 1));
  const int64_t row_blocks = (e.out_h + rows_per_task - 1) / rows_per_task;
  const int64_t q_blocks = (e.cout_g + block - 1) / block;
  const int64_t tasks = e.batch * e.groups * q_blocks * row_blocks;
  const bool padding_mode = e.mode != PaddingMode::zeros;
  // Columns whose every tap lies inside the input: j * sx - left >= 0 and
  // j * sx - left + (kw - 1) * dx <= in_w - 1.
  const int64_t j_lo = std::clamp<int64_t>(ceil_div_signed(e.left, e.sx), 0, e.out_w);
  const int64_t j_hi = std::clamp<int64_t>(
      floor_div(e.in_w - 1 + e.left - (e.kw - 1) * e.dx, e.sx) + 1, j_lo, e.out_w);
#pragma omp parallel for num_threads(threads_for(e.batch * e.out_h * e.out_w * c_out * e.cin_g * kernel_plane)) schedule(static)
  for (int64_t task = 0; task < tasks; ++task) {
    int64_t rest = task;
    const int64_t rb = rest % row_blocks; rest /= row_blocks;
    const int64_t qb = rest % q_blocks; rest /= q_blocks;
    const int64_t grp = rest % e.groups;
    const int64_t n = rest / e.groups;
    const float* image = x + n * e.in_h * e.in_w * e.c_in();
    const float* wg = packed + pack_index(e, grp, 0, 0, qb * block);
    const float* bias_g = bias ? bias + grp * e.cout_pad : nullptr;
    const int64_t q0 = qb * block, nq = std::min(block, e.cout_g - q0);
    const int vectors = int((nq + V - 1) / V);
    const int64_t i_first = rb * rows_per_task, i_last = std::min(e.out_h, i_first + rows_per_task);
    for (int64_t p0 = 0; p0 < std::max<int64_t>(e.cin_g, 1); p0 += chunk_size) {
      const Chunk chunk{p0, std::min(e.cin_g, p0 + chunk_size), p0 == 0};
      for (int64_t i = i_first; i < i_last; ++i) {
        float* out = y + n * e.out_image_step + i * e.out_row_step + grp * e.cout_g + q0;
        int64_t s0 = 0, s1 = e.kh;  // a padding mode: every tap row, read where it repeats
        if (!padding_mode) taps_inside(i, e.in_h, e.kh, e.sy, e.dy, e.top, s0, s1);
        auto edge_pixel = [&](int64_t j) {
          if (padding_mode)
            return padded_pixel(e, vectors, image, wg, bias_g, chunk, i, j, grp, q0, nq,
                                out + j * e.out_pixel_step);
          int64_t t0, t1;
          taps_inside(j, e.in_w, e.kw, e.sx, e.dx, e.left, t0, t1);
          tile_vectors<1>(vectors, e, image, wg, bias_g, chunk, i, j, s0, s1, t0, t1, grp, q0, nq,
                          out + j * e.out_pixel_step);
        };
        for (int64_t j = 0; j < j_lo; ++j) edge_pixel(j);
        int64_t j = j_lo;
        for (; j + kPixels <= j_hi; j += kPixels)
          tile_vectors<kPixels>(vectors, e, image, wg, bias_g, chunk, i, j, s0, s1, 0, e.kw, grp,
                                q0, nq, out + j * e.out_pixel_step);
        if (j < j_hi)  // the last few interior pixels in one narrower tile
          tile_pixels<1, 2, 3, 4, 5>(int(j_hi - j), vectors, e, image, wg, bias_g, chunk, i, j, s0,
                                     s1, 0, e.kw, grp, q0, nq, out + j * e.out_pixel_step);
        for (j = std::max(j_hi, j_lo); j < e.out_w; ++j) edge_pixel(j);
      }
    }
  }
}

int64_t padded_to_blocks(int64_t n) { return (n + kBlock - 1) / kBlock * kBlock; }

}  // namespace

void nhwc_blocked_forward(const Conv2dGeometry& g, const float* x, const float* w,
                          const float* bias, float* y) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const Engine e{g.batch, g.groups, cin_g, cout_g, padded_to_blocks(cout_g),
                 R.in_size, C.in_size, R.out_size, C.out_size,
                 R.kernel, C.kernel, R.stride, C.stride, R.dilation, C.dilation,
                 R.pad_before, C.pad_before,
                 g.out_channels, C.out_size * g.out_channels, g.out_plane() * g.out_channels,
                 g.padding_mode};
  const int64_t taps = g.kernel_plane();
  Array<float> packed(size_t(g.groups * taps * cin_g * e.cout_pad));  // zero tails
  for (int64_t grp = 0; grp < g.groups; ++grp)
    for (int64_t q = 0; q < cout_g; ++q)
      for (int64_t p = 0; p < cin_g; ++p)
        for (int64_t k = 0; k < taps; ++k)
          packed[size_t(pack_index(e, grp, k, p, q))] =
              w[((grp * cout_g + q) * cin_g + p) * taps + k];
  Array<float> packed_bias(bias ? size_t(g.groups * e.cout_pad) : 0);
  if (bias)
    for (int64_t grp = 0; grp < g.groups; ++grp)
      for (int64_t q = 0; q < cout_g; ++q)
        packed_bias[size_t(grp * e.cout_pad + q)] = bias[grp * cout_g + q];
  run_engine(e, x, packed.data(), bias ? packed_bias.data() : nullptr, y);
}

namespace {

// One axis of a stride phase as a stride-1 convolution: input positions phase + a * stride
// receive grad_y[a + offset_m] * w[k_m] over the phase's taps m (stride_phases.h), whose
// kernel indices and offsets both step evenly. Walked with the kernel flipped, tap m' reads
// grad_y[a - before + m' * dilation] with weight index kernel_index[m'].
struct PhaseAxis {
  Array<int64_t> kernel_index;  // of flipped tap m'
  int64_t before = 0, dilation = 1;
  int64_t taps() const { return int64_t(kernel_index.size()); }
};

PhaseAxis phase_axis(const WindowAxis& a, int64_t phase) {
  const Array<PhaseTap> taps = phase_taps(a, phase);
  PhaseAxis axis;
  const int64_t m = int64_t(taps.size());
  for (int64_t i = m - 1; i >= 0; --i) axis.kernel_index.push_back(taps[size_t(i)].kernel_index);
  if (m == 0) return axis;
  axis.before = -taps[size_t(m - 1)].offset;
  if (m > 1) axis.dilation = taps[0].offset - taps[1].offset;
  return axis;
}

}  // namespace

namespace {

// With a padding mode other than zeros, the gradient of each padded pixel goes to the input
// pixel the mode repeats there: computed one padded pixel at a time by the loop nests'
// pixel map (the padding is a thin border) and added in a fixed order, each image by one
// thread.
void add_padding_gradient(const Conv2dGeometry& g, const float* grad_y, const float* w,
                          float* grad_x) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t cout_g = g.out_channels_per_group(), c_in = g.in_channels, c_out = g.out_channels;
  const std::unique_ptr<float[]> packed = nhwc_pack_by_input(g, w);
  const PixelMap m{g.groups, cout_g, g.in_channels_per_group(), c_in, false};
  auto output_of = [](const WindowAxis& a, int64_t p, int64_t k) -> int64_t {
    const int64_t o_stride = p + a.pad_before - k * a.dilation;
    if (o_stride < 0 || o_stride % a.stride) return -1;
    const int64_t o = o_stride / a.stride;
    return o < a.out_size ? o : -1;
  };
  const int64_t border = (R.in_size + R.pad_before + R.pad_after) * (C.in_size + C.pad_before + C.pad_after) -
                         R.in_size * C.in_size;
#pragma omp parallel for num_threads(threads_for(g.batch * border * g.kernel_plane() * c_out * m.dst_g)) schedule(static)
  for (int64_t n = 0; n < g.batch; ++n) {
    const std::unique_ptr<float[]> sum = nhwc_zeros<float>(c_in);
    const float* gy_image = grad_y + n * R.out_size * C.out_size * c_out;
    float* gx_image = grad_x + n * R.in_size * C.in_size * c_in;
    for (int64_t py = -R.pad_before; py < R.in_size + R.pad_after; ++py)
      for (int64_t px = -C.pad_before; px < C.in_size + C.pad_after; ++px) {
        if (py >= 0 && py < R.in_size && px >= 0 && px < C.in_size) continue;
        std::fill_n(sum.get(), c_in, 0.0f);
        for (int64_t s = 0; s < R.kernel; ++s) {
          const int64_t i = output_of(R, py, s);
          if (i < 0) continue;
          for (int64_t t = 0; t < C.kernel; ++t) {
            const int64_t j = output_of(C, px, t);
            if (j < 0) continue;
            nhwc_add_tap(m, gy_image + (i * C.out_size + j) * c_out,
                         packed.get() + (s * C.kernel + t) * cout_g * c_in, sum.get());
          }
        }
        float* gx = gx_image + (padding_source_index(py, R.in_size, g.padding_mode) * C.in_size +
                                padding_source_index(px, C.in_size, g.padding_mode)) * c_in;
        for (int64_t p = 0; p < c_in; ++p) gx[p] += sum[size_t(p)];
      }
  }
}

}  // namespace

// grad_x[iy, ix] = sum over taps of grad_y[(iy + top - s * dy) / sy, (ix + left - t * dx) / sx]
// w[s, t]^T where the divisions are exact. Split by stride phase (iy mod sy, ix mod sx),
// each phase is a stride-1 convolution of grad_y with its own taps of the flipped kernel,
// channel roles exchanged, written to every sy-th row and sx-th pixel of grad_x; a phase
// that no tap reaches is zero. At stride 1 there is one phase and every tap.
void nhwc_blocked_grad_input(const Conv2dGeometry& g, const float* grad_y, const float* w,
                             float* grad_x) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t c_in = g.in_channels, taps = g.kernel_plane(), kw = C.kernel;
  for (int64_t py = 0; py < std::min(R.stride, R.in_size); ++py)
    for (int64_t px = 0; px < std::min(C.stride, C.in_size); ++px) {
      const PhaseAxis rows = phase_axis(R, py), cols = phase_axis(C, px);
      float* phase_x = grad_x + (py * C.in_size + px) * c_in;
      const Engine e{g.batch, g.groups, cout_g, cin_g, padded_to_blocks(cin_g),
                     R.out_size, C.out_size, phase_size(R, py), phase_size(C, px),
                     rows.taps(), cols.taps(), 1, 1, rows.dilation, cols.dilation,
                     rows.before, cols.before,
                     C.stride * c_in, R.stride * C.in_size * c_in, R.in_size * C.in_size * c_in,
                     PaddingMode::zeros};
      if (e.kh == 0 || e.kw == 0) {  // no tap reaches this phase
        for (int64_t n = 0; n < g.batch; ++n)
          for (int64_t a = 0; a < e.out_h; ++a)
            for (int64_t b = 0; b < e.out_w; ++b)
              std::fill_n(phase_x + n * e.out_image_step + a * e.out_row_step + b * e.out_pixel_step,
                          c_in, 0.0f);
        continue;
      }
      Array<float> packed(size_t(g.groups * e.kh * e.kw * cout_g * e.cout_pad));  // zero tails
      for (int64_t grp = 0; grp < g.groups; ++grp)
        for (int64_t q = 0; q < cout_g; ++q)
          for (int64_t p = 0; p < cin_g; ++p)
            for (int64_t ms = 0; ms < e.kh; ++ms)
              for (int64_t mt = 0; mt < e.kw; ++mt)
                packed[size_t(pack_index(e, grp, ms * e.kw + mt, q, p))] =
                    w[((grp * cout_g + q) * cin_g + p) * taps +
                      rows.kernel_index[size_t(ms)] * kw + cols.kernel_index[size_t(mt)]];
      run_engine(e, grad_y, packed.data(), nullptr, phase_x);
    }
  if (g.padding_mode != PaddingMode::zeros) add_padding_gradient(g, grad_y, w, grad_x);
}

namespace {

// Adds to acc (P rows of `block` floats: input channels p0 .. p0 + P - 1, output channels
// q0 .. q0 + nq - 1 of group grp) the products of tap (s, t) over output rows
// [i_begin, i_end) of image n: the tile stays in registers over the rows' pixels. Full:
// nq fills the B vectors. The tail is a template argument, not a test in the pixel loop:
// a branch there between a full and a partial load made the compiler keep the 24
// accumulators in memory, storing each of them at every pixel.
template <int P, int B, bool Full>
void weight_tile(const Conv2dGeometry& g, const float* x, const float* grad_y, int64_t grp,
                 int64_t s, int64_t t, int64_t p0, int64_t q0, int64_t nq, int64_t n,
                 int64_t i_begin, int64_t i_end, float* acc_rows, int64_t block) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t c_in = g.in_channels, c_out = g.out_channels;
  vec acc[P][B];
  for (int pp = 0; pp < P; ++pp)
    for (int b = 0; b < B; ++b) acc[pp][b] = load(acc_rows + pp * block + b * V);
  const int64_t j0 = C.first_inside(t), j1 = C.last_inside(t);
  const int64_t x_step = C.stride * c_in;
  for (int64_t i = i_begin; i < i_end; ++i) {
    const float* in = x + ((n * R.in_size + R.input_index(i, s)) * C.in_size +
                           C.input_index(j0, t)) * c_in + grp * cin_g + p0;
    const float* gy = grad_y + ((n * R.out_size + i) * C.out_size + j0) * c_out + grp * cout_g + q0;
    for (int64_t j = j0; j < j1; ++j, in += x_step, gy += c_out) {
      vec gv[B];
      for (int b = 0; b < B; ++b)
        gv[b] = (Full || b + 1 < B) ? load(gy + b * V) : load_first(gy + b * V, nq - b * V);
      for (int pp = 0; pp < P; ++pp) {
        const vec xv = broadcast(in[pp]);
        for (int b = 0; b < B; ++b) acc[pp][b] += xv * gv[b];
      }
    }
  }
  for (int pp = 0; pp < P; ++pp)
    for (int b = 0; b < B; ++b) store(acc_rows + pp * block + b * V, acc[pp][b]);
}

template <int P>
void weight_tile_vectors(int vectors, const Conv2dGeometry& g, const float* x,
                         const float* grad_y, int64_t grp, int64_t s, int64_t t, int64_t p0,
                         int64_t q0, int64_t nq, int64_t n, int64_t i_begin, int64_t i_end,
                         float* acc_rows, int64_t block) {
  const bool full = nq == vectors * V;
#define CONVPOOL_WEIGHT_TILE(B)                                                                          \
  return full ? weight_tile<P, B, true>(g, x, grad_y, grp, s, t, p0, q0, nq, n, i_begin, i_end, acc_rows, block) \
              : weight_tile<P, B, false>(g, x, grad_y, grp, s, t, p0, q0, nq, n, i_begin, i_end, acc_rows, block)
  switch (vectors) {
    case 1: CONVPOOL_WEIGHT_TILE(1);
    case 2: CONVPOOL_WEIGHT_TILE(2);
#if defined(CONVPOOL_ISA_avx512)
    case 3: CONVPOOL_WEIGHT_TILE(3);
    case 4: CONVPOOL_WEIGHT_TILE(4);
#endif
    default: return;
  }
#undef CONVPOOL_WEIGHT_TILE
}

template <int... Ps>
void weight_tile_any(int pixels, int vectors, const Conv2dGeometry& g, const float* x,
                     const float* grad_y, int64_t grp, int64_t s, int64_t t, int64_t p0,
                     int64_t q0, int64_t nq, int64_t n, int64_t i_begin, int64_t i_end,
                     float* acc_rows, int64_t block) {
  ((pixels == Ps ? weight_tile_vectors<Ps>(vectors, g, x, grad_y, grp, s, t, p0, q0, nq, n,
                                           i_begin, i_end, acc_rows, block)
                 : void()), ...);
}

// As weight_tile, for the pixels of output rows [i_begin, i_end) of image n whose tap
// (s, t) lies in the padding of a mode other than zeros: they read the input pixel the mode
// repeats there. One pixel at a time (the padding is a thin border).
void weight_padded_pixels(const Conv2dGeometry& g, const float* x, const float* grad_y,
                          int64_t grp, int64_t s, int64_t t, int64_t q0, int64_t nq, int vectors,
                          int64_t n, int64_t i_begin, int64_t i_end, float* acc_rows, int64_t block) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t c_in = g.in_channels, c_out = g.out_channels;
  const int64_t is0 = R.first_inside(s), is1 = R.last_inside(s);
  const int64_t js0 = C.first_inside(t), js1 = C.last_inside(t);
  for (int64_t i = i_begin; i < i_end; ++i) {
    const bool row_inside = i >= is0 && i < is1;
    const int64_t iy = padding_source_index(R.input_index(i, s), R.in_size, g.padding_mode);
    for (int64_t j = 0; j < C.out_size; ++j) {
      if (row_inside && j >= js0 && j < js1) continue;  // weight_tile's pixels
      const int64_t ix = padding_source_index(C.input_index(j, t), C.in_size, g.padding_mode);
      const float* in = x + ((n * R.in_size + iy) * C.in_size + ix) * c_in + grp * cin_g;
      const float* gy = grad_y + ((n * R.out_size + i) * C.out_size + j) * c_out + grp * cout_g + q0;
      vec gv[kVectors];
      for (int b = 0; b < vectors; ++b)
        gv[b] = (b + 1) * V <= nq ? load(gy + b * V) : load_first(gy + b * V, nq - b * V);
      for (int64_t p = 0; p < cin_g; ++p) {
        const vec xv = broadcast(in[p]);
        float* a = acc_rows + p * block;
        for (int b = 0; b < vectors; ++b) store(a + b * V, load(a + b * V) + xv * gv[b]);
      }
    }
  }
}

// Output pixels per pass: the rows of x and grad_y they read stay in L2 while every tap,
// output-channel block and input-channel tile of a task adds that chunk's products.
constexpr int64_t kWeightChunkPixels = 128;
// Pixel slices with partial sums of their own: at least this many output pixels each, at
// most kMaxSlices of them, and their partial sums within the scratch rule.
constexpr int64_t kSlicePixels = 256, kMaxSlices = 8;

// The number of pixel slices: fixed by the problem, never by the thread count, so that the
// sums (each slice's in pixel order, then the slices in order) do not depend on it.
int64_t weight_slices(const Conv2dGeometry& g, int64_t partial_floats) {
  const int64_t by_pixels = std::clamp<int64_t>(g.batch * g.out_plane() / kSlicePixels, 1, kMaxSlices);
  const double operands = double(g.batch) * double(g.in_channels) * double(g.in_plane()) +
                          double(g.batch) * double(g.out_channels) * double(g.out_plane());
  const int64_t by_scratch = int64_t((2.0 * operands + double(1 << 18)) / double(partial_floats));
  return std::clamp<int64_t>(by_scratch, 1, by_pixels);
}

}  // namespace

// The weight gradient is a sum over output pixels of x[pixel + tap] (x) grad_y[pixel]. The
// output rows of the batch are cut into a few slices (weight_slices); a task owns one
// slice, one group and one block of kVectors vectors of output channels, and walks its
// rows in chunks: for each chunk, every tap and every tile of kPixels input channels x the
// block adds the chunk's products in registers to the slice's partial sums, so x and
// grad_y are read from memory once per block, not once per tap. The slices' partial sums
// are then added in slice order: the same bits at any thread count.
void nhwc_blocked_grad_weight(const Conv2dGeometry& g, const float* x, const float* grad_y,
                              float* grad_w) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t block = int64_t(kVectors) * V;
  const int64_t q_blocks = (cout_g + block - 1) / block;
  const int64_t taps = g.kernel_plane();
  const int64_t tile_floats = cin_g * block;  // one (group, tap, block) of a partial
  const int64_t partial_floats = g.groups * taps * q_blocks * tile_floats;
  const int64_t slices = weight_slices(g, partial_floats);
  const int64_t rows = g.batch * R.out_size;
  const int64_t chunk_rows = std::max<int64_t>(kWeightChunkPixels / std::max<int64_t>(C.out_size, 1), 1);
  Array<float> partial(size_t(slices * partial_floats));  // zeros
  // partial[((slice * groups + grp) * taps + k) * q_blocks + qb][p][q % block]
  auto tile_at = [&](int64_t slice, int64_t grp, int64_t k, int64_t qb) {
    return partial.data() + (((slice * g.groups + grp) * taps + k) * q_blocks + qb) * tile_floats;
  };
  const int64_t tasks = slices * g.groups * q_blocks;
  const int64_t work = g.batch * g.out_plane() * g.out_channels * cin_g * taps;
#pragma omp parallel for num_threads(threads_for_tasks(tasks, work)) schedule(static)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t qb = task % q_blocks, grp = (task / q_blocks) % g.groups;
    const int64_t slice = task / (q_blocks * g.groups);
    const int64_t q0 = qb * block, nq = std::min(block, cout_g - q0);
    const int vectors = int((nq + V - 1) / V);
    int64_t row_begin, row_end;
    split_range(rows, slices, slice, &row_begin, &row_end);
    for (int64_t r = row_begin; r < row_end;) {
      const int64_t n = r / R.out_size, i_begin = r % R.out_size;
      const int64_t i_end = std::min({R.out_size, i_begin + chunk_rows, i_begin + (row_end - r)});
      for (int64_t k = 0; k < taps; ++k) {
        const int64_t s = k / C.kernel, t = k % C.kernel;
        const int64_t i0 = std::max(i_begin, R.first_inside(s)), i1 = std::min(i_end, R.last_inside(s));
        float* acc = tile_at(slice, grp, k, qb);
        if (i0 < i1 && C.first_inside(t) < C.last_inside(t))
          for (int64_t p0 = 0; p0 < cin_g; p0 += kPixels) {
            const int pixels = int(std::min<int64_t>(kPixels, cin_g - p0));
            weight_tile_any<1, 2, 3, 4, 5, 6>(pixels, vectors, g, x, grad_y, grp, s, t, p0, q0,
                                              nq, n, i0, i1, acc + p0 * block, block);
          }
        if (g.padding_mode != PaddingMode::zeros)
          weight_padded_pixels(g, x, grad_y, grp, s, t, q0, nq, vectors, n, i_begin, i_end, acc,
                               block);
      }
      r += i_end - i_begin;
    }
  }
  const int64_t blocks = g.groups * taps * q_blocks;
#pragma omp parallel for num_threads(threads_for(slices * partial_floats)) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t qb = b % q_blocks, k = (b / q_blocks) % taps, grp = b / (q_blocks * taps);
    const int64_t q0 = qb * block, nq = std::min(block, cout_g - q0);
    for (int64_t p = 0; p < cin_g; ++p)
      for (int64_t l = 0; l < nq; ++l) {
        float sum = 0.0f;
        for (int64_t slice = 0; slice < slices; ++slice)
          sum += tile_at(slice, grp, k, qb)[p * block + l];
        grad_w[((grp * cout_g + q0 + l) * cin_g + p) * taps + k] = sum;
      }
  }
}

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
