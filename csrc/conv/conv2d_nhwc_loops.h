// The channels-last loop nests (conv2d_nhwc.h): every case and padding mode, any element
// type. Included by the per-ISA float32 file (nhwc_loops) and the portable file
// (nhwc_direct, float64); the functions have internal linkage, so each build keeps its own
// copy (docs/design.md, "Why per-ISA builds").
//
// The innermost loop always runs along contiguous channels of one pixel, which the
// compiler vectorises: output channels of a group (forward, weight gradient), input
// channels of a group (input gradient), or every channel at once for depthwise layers.
// Padded pixels of the non-zero modes are read from (forward, weight gradient) or, for the
// input gradient, gathered into the input pixel the mode repeats (padding_source_index);
// zero padding is skipped.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>

#include "common/geometry.h"
#include "common/padding.h"
#include "common/threading.h"

namespace convpool {
namespace {

// Zero-filled scratch. Not std::vector: its out-of-line members, compiled with one build's
// ISA flags, could be merged by the linker into the other builds (simd_vec.h, Array).
template <typename T>
std::unique_ptr<T[]> nhwc_zeros(int64_t count) {
  return std::unique_ptr<T[]>(new T[size_t(count)]());
}

inline bool nhwc_is_depthwise(const Conv2dGeometry& g) {
  return g.in_channels_per_group() == 1 && g.out_channels_per_group() == 1;
}

// The input position tap k of output o reads on axis a: the pixel the padding mode repeats
// there, or -1 in zero padding.
inline int64_t nhwc_tap_source(const WindowAxis& a, int64_t o, int64_t k, PaddingMode mode) {
  return padding_source_index(a.input_index(o, k), a.in_size, mode);
}

// packed[((s * kw + t) * cin_g + p) * C_out + q] = w[q, p, s, t]: for one tap and one input
// channel of each group, the weights of every output channel, contiguous.
template <typename T>
std::unique_ptr<T[]> nhwc_pack_by_output(const Conv2dGeometry& g, const T* w) {
  const int64_t cin_g = g.in_channels_per_group(), taps = g.kernel_plane();
  std::unique_ptr<T[]> packed = nhwc_zeros<T>(taps * cin_g * g.out_channels);
  for (int64_t q = 0; q < g.out_channels; ++q)
    for (int64_t p = 0; p < cin_g; ++p)
      for (int64_t k = 0; k < taps; ++k)
        packed[size_t((k * cin_g + p) * g.out_channels + q)] = w[(q * cin_g + p) * taps + k];
  return packed;
}

// packed[((s * kw + t) * cout_g + q) * C_in + g * cin_g + p] = w[g * cout_g + q, p, s, t]:
// for one tap and one output channel of each group, the weights of its group's input
// channels, contiguous (the input gradient's view of the kernel).
template <typename T>
std::unique_ptr<T[]> nhwc_pack_by_input(const Conv2dGeometry& g, const T* w) {
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t taps = g.kernel_plane();
  std::unique_ptr<T[]> packed = nhwc_zeros<T>(taps * cout_g * g.in_channels);
  for (int64_t grp = 0; grp < g.groups; ++grp)
    for (int64_t q = 0; q < cout_g; ++q)
      for (int64_t p = 0; p < cin_g; ++p)
        for (int64_t k = 0; k < taps; ++k)
          packed[size_t((k * cout_g + q) * g.in_channels + grp * cin_g + p)] =
              w[((grp * cout_g + q) * cin_g + p) * taps + k];
  return packed;
}

// The channels of one pixel the forward pass and the input gradient both compute: a
// destination pixel `dst` (dst_g channels per group) adds, for one tap, a source pixel
// `src` (src_g channels per group) times that tap's packed matrix ([src channel of a
// group][every destination channel]); depthwise: channel by channel.
struct PixelMap {
  int64_t groups, src_g, dst_g, dst_channels;
  bool depthwise;
};

template <typename T>
inline void nhwc_add_tap(const PixelMap& m, const T* src, const T* tap, T* dst) {
  if (m.depthwise) {
    for (int64_t c = 0; c < m.dst_channels; ++c) dst[c] += src[c] * tap[c];
    return;
  }
  for (int64_t grp = 0; grp < m.groups; ++grp)
    for (int64_t a = 0; a < m.src_g; ++a) {
      const T v = src[grp * m.src_g + a];
      const T* wrow = tap + a * m.dst_channels + grp * m.dst_g;
      T* o = dst + grp * m.dst_g;
      for (int64_t b = 0; b < m.dst_g; ++b) o[b] += v * wrow[b];
    }
}

// Every destination pixel (rows of `images` pictures of dst_h x dst_w pixels), each owned
// by one thread: starts from the bias (or zero), then for_each_tap(n, row, col, add) calls
// add(source pixel, packed tap) for each term, in a fixed order.
template <typename T, typename Taps>
void nhwc_gather(const PixelMap& m, int64_t images, int64_t dst_h, int64_t dst_w, const T* bias,
                 T* dst, int64_t work, Taps&& for_each_tap) {
  const int64_t rows = images * dst_h;
#pragma omp parallel for num_threads(threads_for(work)) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t n = row / dst_h, r = row % dst_h;
    for (int64_t c = 0; c < dst_w; ++c) {
      T* out = dst + (row * dst_w + c) * m.dst_channels;
      for (int64_t q = 0; q < m.dst_channels; ++q) out[q] = bias ? bias[q] : T(0);
      for_each_tap(n, r, c, [&](const T* src, const T* tap) { nhwc_add_tap(m, src, tap, out); });
    }
  }
}

template <typename T>
void nhwc_loops_forward_impl(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const PaddingMode mode = g.padding_mode;
  const int64_t cin_g = g.in_channels_per_group(), c_in = g.in_channels, c_out = g.out_channels;
  const std::unique_ptr<T[]> packed = nhwc_pack_by_output(g, w);
  const T* wp = packed.get();
  const PixelMap m{g.groups, cin_g, g.out_channels_per_group(), c_out, nhwc_is_depthwise(g)};
  nhwc_gather(m, g.batch, R.out_size, C.out_size, bias, y,
              g.batch * g.out_plane() * c_out * cin_g * g.kernel_plane(),
              [&](int64_t n, int64_t i, int64_t j, auto&& add) {
                const T* image = x + n * R.in_size * C.in_size * c_in;
                for (int64_t s = 0; s < R.kernel; ++s) {
                  const int64_t iy = nhwc_tap_source(R, i, s, mode);
                  if (iy < 0) continue;
                  for (int64_t t = 0; t < C.kernel; ++t) {
                    const int64_t ix = nhwc_tap_source(C, j, t, mode);
                    if (ix < 0) continue;
                    add(image + (iy * C.in_size + ix) * c_in, wp + (s * C.kernel + t) * cin_g * c_out);
                  }
                }
              });
}

// For each input position of an axis, the padded positions that read it (itself, and the
// padded positions the mode maps onto it), in increasing order: [first[i], first[i + 1]) of
// `positions`.
struct Readers {
  std::unique_ptr<int64_t[]> first, positions;
};

inline Readers nhwc_readers(const WindowAxis& a, PaddingMode mode) {
  const int64_t lo = -a.pad_before, hi = a.in_size + a.pad_after;
  Readers r{nhwc_zeros<int64_t>(a.in_size + 1), nhwc_zeros<int64_t>(std::max<int64_t>(hi - lo, 1))};
  for (int64_t p = lo; p < hi; ++p) {
    const int64_t source = padding_source_index(p, a.in_size, mode);
    if (source >= 0 && source < a.in_size) ++r.first[size_t(source + 1)];
  }
  for (int64_t i = 0; i < a.in_size; ++i) r.first[size_t(i + 1)] += r.first[size_t(i)];
  std::unique_ptr<int64_t[]> filled = nhwc_zeros<int64_t>(a.in_size);
  for (int64_t p = lo; p < hi; ++p) {
    const int64_t source = padding_source_index(p, a.in_size, mode);
    if (source >= 0 && source < a.in_size)
      r.positions[size_t(r.first[size_t(source)] + filled[size_t(source)]++)] = p;
  }
  return r;
}

// Gathers, for every input pixel, the output pixels whose windows hold it (or hold a padded
// pixel that repeats it): each thread owns whole rows of grad_x, so nothing is summed
// across threads.
template <typename T>
void nhwc_loops_grad_input_impl(const Conv2dGeometry& g, const T* grad_y, const T* w, T* grad_x) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t cout_g = g.out_channels_per_group(), c_in = g.in_channels, c_out = g.out_channels;
  const std::unique_ptr<T[]> packed = nhwc_pack_by_input(g, w);
  const T* wp = packed.get();
  const Readers row_readers = nhwc_readers(R, g.padding_mode);
  const Readers col_readers = nhwc_readers(C, g.padding_mode);
  const PixelMap m{g.groups, cout_g, g.in_channels_per_group(), c_in, nhwc_is_depthwise(g)};
  // output position o whose tap k reads padded position p of axis a, or -1
  auto output_of = [](const WindowAxis& a, int64_t p, int64_t k) -> int64_t {
    const int64_t o_stride = p + a.pad_before - k * a.dilation;
    if (o_stride < 0 || o_stride % a.stride) return -1;
    const int64_t o = o_stride / a.stride;
    return o < a.out_size ? o : -1;
  };
  nhwc_gather(m, g.batch, R.in_size, C.in_size, static_cast<const T*>(nullptr), grad_x,
              g.batch * g.out_plane() * c_out * m.dst_g * g.kernel_plane(),
              [&](int64_t n, int64_t iy, int64_t ix, auto&& add) {
                const T* gy_image = grad_y + n * R.out_size * C.out_size * c_out;
                for (int64_t ry = row_readers.first[size_t(iy)]; ry < row_readers.first[size_t(iy + 1)]; ++ry)
                  for (int64_t rx = col_readers.first[size_t(ix)]; rx < col_readers.first[size_t(ix + 1)]; ++rx) {
                    const int64_t py = row_readers.positions[size_t(ry)];
                    const int64_t px = col_readers.positions[size_t(rx)];
                    for (int64_t s = 0; s < R.kernel; ++s) {
                      const int64_t i = output_of(R, py, s);
                      if (i < 0) continue;
                      for (int64_t t = 0; t < C.kernel; ++t) {
                        const int64_t j = output_of(C, px, t);
                        if (j < 0) continue;
                        add(gy_image + (i * C.out_size + j) * c_out,
                            wp + (s * C.kernel + t) * cout_g * c_in);
                      }
                    }
                  }
              });
}

// Each task owns a block of the weight gradient (one tap, one group, a few input channels
// or, depthwise, a block of channels) and sums over every pixel in a fixed order: the
// result does not depend on the thread count.
template <typename T>
void nhwc_loops_grad_weight_impl(const Conv2dGeometry& g, const T* x, const T* grad_y, T* grad_w) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const PaddingMode mode = g.padding_mode;
  const bool zeros = mode == PaddingMode::zeros;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t c_in = g.in_channels, c_out = g.out_channels, taps = g.kernel_plane();
  const bool depthwise = nhwc_is_depthwise(g);
  // packed as nhwc_pack_by_output: [tap][p][C_out]
  std::unique_ptr<T[]> packed = nhwc_zeros<T>(taps * cin_g * c_out);
  T* acc_all = packed.get();
  constexpr int64_t kInputBlock = 8, kChannelBlock = 256;
  const int64_t blocks = depthwise ? (c_out + kChannelBlock - 1) / kChannelBlock
                                   : g.groups * ((cin_g + kInputBlock - 1) / kInputBlock);
  const int64_t tasks = taps * blocks;
#pragma omp parallel for num_threads(threads_for(g.batch * g.out_plane() * c_out * cin_g * taps)) schedule(dynamic)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t k = task / blocks, block = task % blocks;
    const int64_t s = k / C.kernel, t = k % C.kernel;
    // zero padding: only the outputs whose tap lands inside; otherwise every output
    const int64_t i0 = zeros ? R.first_inside(s) : 0, i1 = zeros ? R.last_inside(s) : R.out_size;
    const int64_t j0 = zeros ? C.first_inside(t) : 0, j1 = zeros ? C.last_inside(t) : C.out_size;
    T* acc = acc_all + k * cin_g * c_out;
    int64_t grp = 0, p0 = 0, p1 = 0, q0 = 0, q1 = 0;
    if (depthwise) {
      q0 = block * kChannelBlock;
      q1 = std::min(c_out, q0 + kChannelBlock);
    } else {
      const int64_t per_group = (cin_g + kInputBlock - 1) / kInputBlock;
      grp = block / per_group;
      p0 = (block % per_group) * kInputBlock;
      p1 = std::min(cin_g, p0 + kInputBlock);
    }
    for (int64_t n = 0; n < g.batch; ++n)
      for (int64_t i = i0; i < i1; ++i) {
        const T* x_row = x + ((n * R.in_size + nhwc_tap_source(R, i, s, mode)) * C.in_size) * c_in;
        const T* gy_row = grad_y + ((n * R.out_size + i) * C.out_size) * c_out;
        for (int64_t j = j0; j < j1; ++j) {
          const int64_t ix = zeros ? C.input_index(j, t) : nhwc_tap_source(C, j, t, mode);
          const T* in = x_row + ix * c_in;
          const T* gy = gy_row + j * c_out;
          if (depthwise) {
            for (int64_t q = q0; q < q1; ++q) acc[q] += in[q] * gy[q];
            continue;
          }
          for (int64_t p = p0; p < p1; ++p) {
            const T v = in[grp * cin_g + p];
            T* a = acc + p * c_out + grp * cout_g;
            const T* gyg = gy + grp * cout_g;
            for (int64_t q = 0; q < cout_g; ++q) a[q] += v * gyg[q];
          }
        }
      }
  }
  for (int64_t q = 0; q < c_out; ++q)
    for (int64_t p = 0; p < cin_g; ++p)
      for (int64_t kk = 0; kk < taps; ++kk)
        grad_w[(q * cin_g + p) * taps + kk] = packed[size_t((kk * cin_g + p) * c_out + q)];
}

}  // namespace
}  // namespace convpool
