// bfloat16 convolution forward with AVX512_BF16 dot products (bf16_dot): the direct
// kernel's register tiles (conv3d_direct.cpp: 16 output channels in the lanes x a segment
// of an output row) on pairs of input channels. Each 32-bit lane of a weight vector holds
// the weights of two input channels for one output channel, the broadcast input the two
// channels' values at one pixel, and vdpbf16ps adds both products to a float32
// accumulator. The bf16 products are exact in float32; only the accumulation rounds.
//
// The Python layer (convpool.bf16_dot) packs the operands: the input as channel pairs
// (N, groups * pairs, D, H, W) of uint32 (two bfloat16), padded already; the weights as
// [group][block of 16 output channels][pair][tap][16] uint32. Conv3dShape counts pairs as
// input channels and carries no padding. Conv2d is a volume of depth 1.
//
// Only the AVX-512 build has the kernel (compiled for AVX512_BF16 by a target attribute);
// its predicate accepts a case only at the AVX-512 level on a CPU that reports
// AVX512_BF16, so no other CPU ever runs it.
#include <cstdint>

#include "conv/conv3d.h"

#ifdef CONVPOOL_PREDICATES_ONLY
namespace convpool {

bool bf16_dot_forward_supports(const Conv3dShape&, int vector_floats) {
  return vector_floats == 16 && __builtin_cpu_supports("avx512bf16");
}

}  // namespace convpool

#else
#include <algorithm>

#include "common/simd_vec.h"
#include "common/threading.h"

namespace convpool::CONVPOOL_ISA {

#if defined(CONVPOOL_ISA_avx512)

namespace {

constexpr int kLanes = 16;
constexpr int kRowPixels = 14;  // 14 accumulators, a weight vector and a broadcast

// result[r][lane] = sum over the pairs and taps of the pair dot product of weight vector
// (pair, tap) and the input pair at pixel r.
template <int R, bool Unit>
__attribute__((target("avx512f,avx512bf16"))) void bf16_tile(
    const uint32_t* x, int64_t pairs, int64_t plane, const int64_t* offsets, int64_t taps,
    int64_t stride, const uint32_t* w, float* result) {
  if constexpr (Unit) stride = 1;
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    const uint32_t* xp = x + p * plane;
    for (int64_t t = 0; t < taps; ++t, w += kLanes) {
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(w);
      const uint32_t* xt = xp + offsets[t];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
        acc[r] = _mm512_dpbf16_ps(acc[r], wv, (__m512bh)_mm512_set1_epi32(int(xt[r * stride])));
    }
  }
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(result + r * kLanes, acc[r]);
}

template <int R, bool Unit>
void bf16_tail(int count, const uint32_t* x, int64_t pairs, int64_t plane,
               const int64_t* offsets, int64_t taps, int64_t stride, const uint32_t* w,
               float* result) {
  if constexpr (R > 0) {
    if (count == R)
      bf16_tile<R, Unit>(x, pairs, plane, offsets, taps, stride, w, result);
    else
      bf16_tail<R - 1, Unit>(count, x, pairs, plane, offsets, taps, stride, w, result);
  }
}

template <bool Unit>
void bf16_forward(const Conv3dShape& s, const uint32_t* x, const uint32_t* w,
                  const float* bias, float* y) {
  constexpr int R = kRowPixels;
  const int64_t taps = s.kernel[0] * s.kernel[1] * s.kernel[2];
  Array<int64_t> offsets{size_t(taps)};
  {
    size_t t = 0;
    for (int64_t a = 0; a < s.kernel[0]; ++a)
      for (int64_t b = 0; b < s.kernel[1]; ++b)
        for (int64_t c = 0; c < s.kernel[2]; ++c)
          offsets[t++] = (a * s.dilation[0] * s.in[1] + b * s.dilation[1]) * s.in[2] +
                         c * s.dilation[2];
  }
  const int64_t pairs = s.in_channels_per_group(), cout_g = s.out_channels_per_group();
  const int64_t blocks = (cout_g + kLanes - 1) / kLanes;
  const int64_t od = s.out[0], oh = s.out[1], ow = s.out[2];
  const int64_t plane = s.in[0] * s.in[1] * s.in[2];
  const int64_t rows = s.batch * s.groups * blocks * od * oh;
  const int64_t work = rows * ow * kLanes * pairs * 2 * taps;
#pragma omp parallel for num_threads(threads_for_tasks(rows, work)) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t h = row % oh, d = row / oh % od, b = row / (oh * od) % blocks;
    const int64_t g = row / (oh * od * blocks) % s.groups, n = row / (oh * od * blocks * s.groups);
    const uint32_t* x_row = x + (n * s.in_channels + g * pairs) * plane +
                            (d * s.stride[0] * s.in[1] + h * s.stride[1]) * s.in[2];
    const uint32_t* w_block = w + (g * blocks + b) * pairs * taps * kLanes;
    const int64_t co0 = b * kLanes, count_co = std::min<int64_t>(kLanes, cout_g - co0);
    float* y_row = y + ((n * s.out_channels + g * cout_g + co0) * od + d) * oh * ow + h * ow;
    alignas(64) float result[R * kLanes];
    for (int64_t x0 = 0; x0 < ow; x0 += R) {
      const int count = int(std::min<int64_t>(R, ow - x0));
      const uint32_t* x_seg = x_row + x0 * s.stride[2];
      if (count == R)
        bf16_tile<R, Unit>(x_seg, pairs, plane, offsets.data(), taps, s.stride[2], w_block,
                           result);
      else
        bf16_tail<R - 1, Unit>(count, x_seg, pairs, plane, offsets.data(), taps, s.stride[2],
                               w_block, result);
      for (int64_t c = 0; c < count_co; ++c) {
        const float add = bias ? bias[g * cout_g + co0 + c] : 0.0f;
        float* out = y_row + c * od * oh * ow + x0;
        for (int r = 0; r < count; ++r) out[r] = result[r * kLanes + c] + add;
      }
    }
  }
}

}  // namespace

void bf16_dot_forward(const Conv3dShape& s, const uint32_t* x, const uint32_t* w,
                      const float* bias, float* y) {
  if (s.stride[2] == 1)
    bf16_forward<true>(s, x, w, bias, y);
  else
    bf16_forward<false>(s, x, w, bias, y);
}

#else

// Never selected below the AVX-512 level (bf16_dot_forward_supports): an entry for the
// registry's per-level table only.
void bf16_dot_forward(const Conv3dShape&, const uint32_t*, const uint32_t*, const float*,
                      float*) {}

#endif

}  // namespace convpool::CONVPOOL_ISA
#endif  // CONVPOOL_PREDICATES_ONLY
