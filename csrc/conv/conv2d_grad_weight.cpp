// Gradient of the convolution with respect to its weights.
#include <cmath>
#include <vector>

#include "conv/conv2d.h"
#include "conv/conv2d_direct.h"
#include "conv/direct_taps.h"
#include "common/threading.h"
#include "common/workspace.h"

namespace convpool {

namespace {

// The kh * kw taps of kernel `kernel` (= q * cin_g + p_in_group): sums over the batch and
// the output plane, accumulated row by row in T and added in double, in a fixed order.
// Taps that fall in the zero padding are skipped, never multiplied: a NaN or inf output
// gradient reaches only the taps that read a real pixel with it. In the padding of the
// other modes a tap reads the pixel the padding repeats.
template <typename T>
void grad_weight_kernel(const Conv2dGeometry& g, const T* x, const T* grad_y, int64_t kernel,
                        T* gw) {
  const WindowAxis& R = g.rows;
  const WindowAxis& C = g.cols;
  const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
  const int64_t q = kernel / cin_g, p = (q / cout_g) * cin_g + kernel % cin_g;
  const PaddingMode mode = g.padding_mode;
  for (int64_t s = 0; s < R.kernel; ++s) {
    const TapOutputs rows = tap_outputs(R, s, mode);
    for (int64_t t = 0; t < C.kernel; ++t) {
      double total = 0.0;
      for (int64_t n = 0; n < g.batch; ++n) {
        const T* in = x + (n * g.in_channels + p) * g.in_plane();
        const T* gy = grad_y + (n * g.out_channels + q) * g.out_plane();
        for (int64_t i = rows.first; i < rows.last; ++i) {
          const T* in_row = in + tap_source(R, i, s, mode) * C.in_size;
          const T* gy_row = gy + i * C.out_size;
          T row_sum = T(0);
          for_each_tap_column(C, t, mode,
                              [&](int64_t j, int64_t c) { row_sum += gy_row[j] * in_row[c]; });
          total += static_cast<double>(row_sum);
        }
      }
      gw[s * C.kernel + t] = static_cast<T>(total);
    }
  }
}

// One (q, p) kernel per task, owned by one thread: deterministic whatever the thread count.
template <typename T>
void grad_weight_direct(const Conv2dGeometry& g, const T* x, const T* grad_y, T* grad_w) {
  const int64_t kernels = g.out_channels * g.in_channels_per_group();
#pragma omp parallel for num_threads(threads_for(kernels * g.batch * g.out_plane() * g.kernel_plane())) schedule(static)
  for (int64_t kernel = 0; kernel < kernels; ++kernel)
    grad_weight_kernel(g, x, grad_y, kernel, grad_w + kernel * g.kernel_plane());
}

// The fast paths multiply what the direct sum skips (zero padding, zero-filled vector
// tails, Winograd's transformed tiles, whose every point mixes several pixels) and sum
// in float32 where the direct sum adds rows in double. For finite sums of moderate size
// that changes only rounding; a NaN or inf term, or a float32 overflow, would instead
// reach taps the direct sum leaves finite. Such extra terms can only add non-finite
// values, never remove one, so every kernel with a non-finite tap is recomputed by the
// direct sum, and the result's NaN/inf placement is the direct sum's.
void recompute_non_finite_kernels(const Conv2dGeometry& g, const float* x, const float* grad_y,
                                  float* grad_w) {
  const int64_t kernels = g.out_channels * g.in_channels_per_group(), K = g.kernel_plane();
  std::vector<int64_t> non_finite;
  for (int64_t kernel = 0; kernel < kernels; ++kernel)
    for (int64_t k = 0; k < K; ++k)
      if (!std::isfinite(grad_w[kernel * K + k])) {
        non_finite.push_back(kernel);
        break;
      }
  const int64_t count = static_cast<int64_t>(non_finite.size());
  if (count == 0) return;
#pragma omp parallel for num_threads(threads_for(count * g.batch * g.out_plane() * K)) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    grad_weight_kernel(g, x, grad_y, non_finite[size_t(i)], grad_w + non_finite[size_t(i)] * K);
}

}  // namespace

template <typename T>
void conv2d_grad_weight_direct(const Conv2dGeometry& g, const T* x, const T* grad_y, T* grad_w) {
  grad_weight_direct(g, x, grad_y, grad_w);
}

template void conv2d_grad_weight_direct<float>(const Conv2dGeometry&, const float*, const float*,
                                               float*);
template void conv2d_grad_weight_direct<double>(const Conv2dGeometry&, const double*,
                                                const double*, double*);

void conv2d_grad_weight_repair_non_finite(const Conv2dGeometry& g, const float* x,
                                          const float* grad_y, float* grad_w) {
  recompute_non_finite_kernels(g, x, grad_y, grad_w);
}

}  // namespace convpool
