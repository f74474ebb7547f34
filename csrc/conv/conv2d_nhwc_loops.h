// The channels-last loop nests (conv2d_nhwc.h): every case, any element type. Included by
// the per-ISA float32 file (nhwc_loops) and the portable file (nhwc_direct, float64); the
// functions have internal linkage, so each build keeps its own copy (docs/design.md, "Why
// per-ISA builds").
//
// The innermost loop always runs along contiguous channels of one pixel, which the
// compiler vectorises: output channels of a group (forward, weight gradient), input
// channels of a group (input gradient), or every channel at once for depthwise layers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>

#include "common/geometry.h"
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

template <typename T>
void nhwc_loops_forward_impl(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t c_in = g.in_channels, c_out = g.out_channels;
  const std::unique_ptr<T[]> packed = nhwc_pack_by_output(g, w);
  const T* wp = packed.get();
  const bool depthwise = nhwc_is_depthwise(g);
  const int64_t rows = g.batch * R.out_size;
#pragma omp parallel for num_threads(threads_for(g.batch * g.out_plane() * c_out * cin_g * g.kernel_plane())) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t n = row / R.out_size, i = row % R.out_size;
    const T* image = x + n * R.in_size * C.in_size * c_in;
    for (int64_t j = 0; j < C.out_size; ++j) {
      T* out = y + (row * C.out_size + j) * c_out;
      for (int64_t q = 0; q < c_out; ++q) out[q] = bias ? bias[q] : T(0);
      for (int64_t s = 0; s < R.kernel; ++s) {
        const int64_t iy = R.input_index(i, s);
        if (iy < 0 || iy >= R.in_size) continue;
        for (int64_t t = 0; t < C.kernel; ++t) {
          const int64_t ix = C.input_index(j, t);
          if (ix < 0 || ix >= C.in_size) continue;
          const T* in = image + (iy * C.in_size + ix) * c_in;
          const T* tap = wp + (s * C.kernel + t) * cin_g * c_out;
          if (depthwise) {
            for (int64_t q = 0; q < c_out; ++q) out[q] += in[q] * tap[q];
            continue;
          }
          for (int64_t grp = 0; grp < g.groups; ++grp)
            for (int64_t p = 0; p < cin_g; ++p) {
              const T v = in[grp * cin_g + p];
              const T* wrow = tap + p * c_out + grp * cout_g;
              T* o = out + grp * cout_g;
              for (int64_t q = 0; q < cout_g; ++q) o[q] += v * wrow[q];
            }
        }
      }
    }
  }
}

// Gathers, for every input pixel, the output pixels whose windows hold it: each thread
// owns whole rows of grad_x, so nothing is summed across threads.
template <typename T>
void nhwc_loops_grad_input_impl(const Conv2dGeometry& g, const T* grad_y, const T* w, T* grad_x) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t c_in = g.in_channels, c_out = g.out_channels;
  const std::unique_ptr<T[]> packed = nhwc_pack_by_input(g, w);
  const T* wp = packed.get();
  const bool depthwise = nhwc_is_depthwise(g);
  const int64_t rows = g.batch * R.in_size;
#pragma omp parallel for num_threads(threads_for(g.batch * g.out_plane() * c_out * cin_g * g.kernel_plane())) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t n = row / R.in_size, iy = row % R.in_size;
    const T* gy_image = grad_y + n * R.out_size * C.out_size * c_out;
    for (int64_t ix = 0; ix < C.in_size; ++ix) {
      T* gx = grad_x + (row * C.in_size + ix) * c_in;
      for (int64_t p = 0; p < c_in; ++p) gx[p] = T(0);
      for (int64_t s = 0; s < R.kernel; ++s) {
        const int64_t oy_stride = iy + R.pad_before - s * R.dilation;  // i * stride
        if (oy_stride < 0 || oy_stride % R.stride) continue;
        const int64_t i = oy_stride / R.stride;
        if (i >= R.out_size) continue;
        for (int64_t t = 0; t < C.kernel; ++t) {
          const int64_t ox_stride = ix + C.pad_before - t * C.dilation;
          if (ox_stride < 0 || ox_stride % C.stride) continue;
          const int64_t j = ox_stride / C.stride;
          if (j >= C.out_size) continue;
          const T* gy = gy_image + (i * C.out_size + j) * c_out;
          const T* tap = wp + (s * C.kernel + t) * cout_g * c_in;
          if (depthwise) {
            for (int64_t p = 0; p < c_in; ++p) gx[p] += gy[p] * tap[p];
            continue;
          }
          for (int64_t grp = 0; grp < g.groups; ++grp)
            for (int64_t q = 0; q < cout_g; ++q) {
              const T v = gy[grp * cout_g + q];
              const T* wrow = tap + q * c_in + grp * cin_g;
              T* o = gx + grp * cin_g;
              for (int64_t p = 0; p < cin_g; ++p) o[p] += v * wrow[p];
            }
        }
      }
    }
  }
}

// Each task owns a block of the weight gradient (one tap, one group, a few input channels
// or, depthwise, a block of channels) and sums over every pixel in a fixed order: the
// result does not depend on the thread count.
template <typename T>
void nhwc_loops_grad_weight_impl(const Conv2dGeometry& g, const T* x, const T* grad_y, T* grad_w) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
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
    const int64_t i0 = R.first_inside(s), i1 = R.last_inside(s);
    const int64_t j0 = C.first_inside(t), j1 = C.last_inside(t);
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
        const T* x_row = x + ((n * R.in_size + R.input_index(i, s)) * C.in_size) * c_in;
        const T* gy_row = grad_y + ((n * R.out_size + i) * C.out_size) * c_out;
        for (int64_t j = j0; j < j1; ++j) {
          const T* in = x_row + C.input_index(j, t) * c_in;
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
