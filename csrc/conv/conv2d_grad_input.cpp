// Gradient of the convolution with respect to its input.
#include <cmath>

#include "conv/conv2d.h"
#include "conv/conv2d_direct.h"
#include "conv/direct_taps.h"
#include "common/threading.h"
#include "common/workspace.h"

namespace convpool {

namespace {

// One input-gradient plane (n, p) at a time, so that each thread owns what it writes
// (no atomics, deterministic): every output channel q that reads channel p scatters
// w[q, p, s, t] * grad_y[n, q] back along the rows it read (for a tap in the padding of a
// non-zero mode, onto the pixel that padding repeats).
template <typename T>
void grad_input_direct(const Conv2dGeometry& g, const T* grad_y, const T* w, T* grad_x) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const PaddingMode mode = g.padding_mode;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t planes = g.batch * g.in_channels;
#pragma omp parallel for num_threads(threads_for(planes * g.out_plane() * cout_g * g.kernel_plane())) schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const int64_t n = plane / g.in_channels, p = plane % g.in_channels;
    const int64_t group = p / cin_g, p_in_group = p % cin_g;
    T* gx = grad_x + plane * g.in_plane();
    for (int64_t k = 0; k < g.in_plane(); ++k) gx[k] = T(0);
    for (int64_t qq = 0; qq < cout_g; ++qq) {
      const int64_t q = group * cout_g + qq;
      const T* gy = grad_y + (n * g.out_channels + q) * g.out_plane();
      const T* wk = w + (q * cin_g + p_in_group) * g.kernel_plane();
      for (int64_t s = 0; s < R.kernel; ++s) {
        const TapOutputs rows = tap_outputs(R, s, mode);
        for (int64_t t = 0; t < C.kernel; ++t) {
          const T weight = wk[s * C.kernel + t];
          for (int64_t i = rows.first; i < rows.last; ++i) {
            T* gx_row = gx + tap_source(R, i, s, mode) * C.in_size;
            const T* gy_row = gy + i * C.out_size;
            for_each_tap_column(C, t, mode,
                                [&](int64_t j, int64_t c) { gx_row[c] += weight * gy_row[j]; });
          }
        }
      }
    }
  }
}

// Input-gradient pixel (n, p, r, c) as grad_input_direct computes it: for each output
// channel reading p, each tap whose window lands on (r, c) from an output inside the plane.
float direct_pixel(const Conv2dGeometry& g, const float* grad_y, const float* w, int64_t n,
                   int64_t p, int64_t r, int64_t c) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t group = p / cin_g, p_in_group = p % cin_g;
  float sum = 0.0f;
  for (int64_t qq = 0; qq < cout_g; ++qq) {
    const int64_t q = group * cout_g + qq;
    const float* gy = grad_y + (n * g.out_channels + q) * g.out_plane();
    const float* wk = w + (q * cin_g + p_in_group) * g.kernel_plane();
    for (int64_t s = 0; s < R.kernel; ++s) {
      const int64_t row_shift = r + R.pad_before - s * R.dilation;  // = i * stride
      if (row_shift < 0 || row_shift % R.stride != 0 || row_shift / R.stride >= R.out_size) continue;
      for (int64_t t = 0; t < C.kernel; ++t) {
        const int64_t col_shift = c + C.pad_before - t * C.dilation;
        if (col_shift < 0 || col_shift % C.stride != 0 || col_shift / C.stride >= C.out_size) continue;
        sum += wk[s * C.kernel + t] * gy[(row_shift / R.stride) * C.out_size + col_shift / C.stride];
      }
    }
  }
  return sum;
}

// As for the forward pass (conv2d_forward.cpp): the blocked and plane paths multiply the
// zero margins of the output gradient by every weight, so only a non-finite weight can put
// a NaN where the direct sum has none; then the non-finite pixels are recomputed.
void recompute_non_finite_pixels(const Conv2dGeometry& g, const float* grad_y, const float* w,
                                 float* grad_x) {
  // Only the direct loops take padding other than zeros (every fast input gradient's
  // predicate refuses it): their result is already the direct sum.
  if (!g.zero_padded()) return;
  // All-finite pixels need nothing either; the smaller of the two is scanned first.
  const int64_t weights = g.out_channels * g.in_channels_per_group() * g.kernel_plane();
  const int64_t pixels = g.batch * g.in_channels * g.in_plane();
  if (pixels <= weights && all_finite(grad_x, pixels)) return;
  if (all_finite(w, weights)) return;
  const int64_t planes = g.batch * g.in_channels;
#pragma omp parallel for num_threads(threads_for(planes * g.in_plane())) schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane) {
    float* gx = grad_x + plane * g.in_plane();
    for (int64_t k = 0; k < g.in_plane(); ++k)
      if (!std::isfinite(gx[k]))
        gx[k] = direct_pixel(g, grad_y, w, plane / g.in_channels, plane % g.in_channels,
                             k / g.cols.in_size, k % g.cols.in_size);
  }
}

}  // namespace

template <typename T>
void conv2d_grad_input_direct(const Conv2dGeometry& g, const T* grad_y, const T* w, T* grad_x) {
  grad_input_direct(g, grad_y, w, grad_x);
}

template void conv2d_grad_input_direct<float>(const Conv2dGeometry&, const float*, const float*,
                                              float*);
template void conv2d_grad_input_direct<double>(const Conv2dGeometry&, const double*,
                                               const double*, double*);

void conv2d_grad_input_repair_non_finite(const Conv2dGeometry& g, const float* grad_y,
                                         const float* w, float* grad_x) {
  recompute_non_finite_pixels(g, grad_y, w, grad_x);
}

}  // namespace convpool
